"""The normalizer worker.

Run: ``realconnect worker normalizer`` (or ``python -m services.normalizer.app``).
"""

from __future__ import annotations

from pathlib import Path

import faust

from services.common.dedupe import EventDedupe
from services.common.logging import configure_logging
from services.common.redis import Keys, new_redis
from services.common.settings import Settings
from services.common.worker import new_faust_app, run_worker
from services.normalizer import agents
from services.normalizer.directory import Directory


def create_app(settings: Settings) -> faust.App:
    app = new_faust_app(
        settings,
        "normalizer",
        store="memory",  # the identities global table is small and rebuilt from its topic
        data_dir=Path(settings.normalizer.data_dir),
        web_port=settings.normalizer.web_port,
    )
    redis = new_redis(settings)
    keys = Keys(settings)
    agents.register(
        app,
        settings,
        redis,
        Directory(redis, keys),
        EventDedupe(redis, keys, window_s=settings.ingest.event_dedupe_days * 86400),
    )
    return app


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level)
    run_worker(create_app(settings), settings.log_level, settings.gc_thresholds)


if __name__ == "__main__":
    main()
