"""A faust transport whose producer is idempotent with ``acks=all``.

faust-streaming enables idempotence only inside transactions (exactly-once mode); in
at-least-once mode a producer retry can then duplicate a changelog record or an output
message. Its consumer carries the fixes of ``services.common.faust_fixes``. Registered as
the ``ikafka://`` scheme through the ``faust.transports`` entry point.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

from services.common.faust_fixes import Consumer


class IdempotentProducer(faust_aiokafka.Producer):
    def _settings_extra(self) -> Mapping[str, Any]:
        return {**super()._settings_extra(), "acks": "all", "enable_idempotence": True}


class Transport(faust_aiokafka.Transport):
    Producer = IdempotentProducer
    Consumer = Consumer  # services.common.faust_fixes
