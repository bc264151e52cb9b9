"""Wait until Kafka answers a metadata request, or Redis answers PING.

Usage: python deploy/wait_ready.py kafka|redis [--timeout SECONDS]
Reads REALCONNECT_KAFKA__BOOTSTRAP_SERVERS and REALCONNECT_REDIS__URL.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from services.common.settings import Settings


async def kafka_ready(settings: Settings) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka.bootstrap_servers, request_timeout_ms=5000
    )
    await admin.start()
    try:
        await admin.list_topics()
    finally:
        await admin.close()


async def redis_ready(settings: Settings) -> None:
    from services.common.redis import new_redis

    r = new_redis(settings)
    try:
        await r.ping()
    finally:
        await r.aclose()


async def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["kafka", "redis"])
    p.add_argument("--timeout", type=float, default=60)
    args = p.parse_args()
    settings = Settings()
    check = kafka_ready if args.what == "kafka" else redis_ready
    deadline = time.monotonic() + args.timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            await check(settings)
            return 0
        except Exception as exc:
            last = exc
            await asyncio.sleep(0.5)
    print(f"{args.what} not ready after {args.timeout:.0f} s: {last!r}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
