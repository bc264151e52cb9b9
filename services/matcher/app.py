"""The matcher worker.

Run: ``realconnect worker matcher`` (or ``python -m services.matcher.app``).
"""

from __future__ import annotations

import faust

from services.common.kafka import Topics
from services.common.logging import configure_logging
from services.common.redis import new_redis
from services.common.settings import Settings
from services.common.worker import add_stall_watchdog, new_faust_app, run_worker
from services.matcher import agents


def create_app(settings: Settings) -> faust.App:
    app = new_faust_app(
        settings,
        "matcher",
        store=settings.matcher.store,
        data_dir=settings.matcher.data_dir,
        web_port=settings.matcher.web_port,
        standby_replicas=settings.matcher.standby_replicas,
    )
    agents.register(app, settings, new_redis(settings))
    t = Topics(settings)
    add_stall_watchdog(
        app,
        {t.interactions, t.ticks},
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
