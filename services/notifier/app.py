"""The notification worker.

Run: ``realconnect worker notifier`` (or ``python -m services.notifier.app``).
"""

from __future__ import annotations

import faust

from services.common.kafka import Topics
from services.common.logging import configure_logging
from services.common.redis import Keys, new_redis
from services.common.settings import Settings
from services.common.worker import add_stall_watchdog, new_faust_app, run_worker
from services.notifier import agents
from services.notifier.store import FeedStore


def create_app(settings: Settings) -> faust.App:
    app = new_faust_app(
        settings,
        "notifier",
        store="memory",  # the notifier keeps no table: Redis is its only state
        data_dir=settings.notifier.data_dir,
        web_port=settings.notifier.web_port,
    )
    store = FeedStore(new_redis(settings), Keys(settings), cap=settings.notifier.feed_cap)
    agents.register(app, settings, store)
    t = Topics(settings)
    add_stall_watchdog(
        app,
        {t.suggestions},
        settings.kafka.stall_timeout_s,
        settings.kafka.bootstrap_servers,
    )
    return app


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level)
    run_worker(create_app(settings), settings.log_level, settings.gc_thresholds)


if __name__ == "__main__":
    main()
