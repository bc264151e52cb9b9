"""A matcher worker whose group assignor assigns nobody anything: the state faust's assignor
left a matcher in after a broker restart (``services/common/faust_fixes.py``, fix 4), made
on purpose, for ``test_worker_idle_watch.py``. Run with ``python -m``; settings from the
environment, as ``realconnect worker matcher``."""

from __future__ import annotations

from typing import Any

from faust.assignor.client_assignment import ClientAssignment
from faust.assignor.partition_assignor import PartitionAssignor

from services.matcher import app

_protocol_assignments = PartitionAssignor._protocol_assignments


def _nothing(self: Any, assignments: Any, *args: Any) -> Any:
    empty = {client: ClientAssignment(actives={}, standbys={}) for client in assignments}
    return _protocol_assignments(self, empty, *args)


PartitionAssignor._protocol_assignments = _nothing  # type: ignore[method-assign,assignment]

if __name__ == "__main__":
    app.main()
