"""The versions of faust-streaming and aiokafka whose private parts realconnect relies on.

Several modules reach past the public API of these two libraries, each for a reason given
where it does so:

- ``services/common/faust_fixes.py``: faust's recovery, consumer (its ``_committed_offset``,
  ``_paused_partitions``, ``_buffered_partitions``) and partition assignor
  (``_perform_assignment``, ``_global_table_standby_assignments``, and the aiokafka client
  under the consumer thread), for three races that stall or skip input partitions
  (faust-streaming #596, #606, and never-committed partitions after a failover) and an
  assignment made while a restarted broker's metadata lacks the topics;
- ``services/common/faust_transport.py``: the ``ikafka://`` transport (an idempotent,
  ``acks=all`` producer outside transactions);
- ``services/common/rocksdb_store.py``: faust's rocksdb store with one memory cap per worker;
- ``services/common/worker.py``: the stall watchdog reads the consumer's assignment and
  committed offsets;
- ``services/common/rocksdb_store.py`` (``partition_databases``): a table's rocksdb database
  per partition (``_db_for_partition``), which the matcher reads and writes in batches;
- ``services/common/kafka.py`` (``known_brokers``, ``wait_caught_up``): aiokafka's client
  metadata.

Private parts change without notice. ``tests/unit/test_versions.py`` fails when the installed
version of either library is not the one these were read against, and when it is not the one
``requirements.lock`` pins: read each module above against the new release, then update
``CHECKED_AGAINST`` (and ``make lock``).
"""

from __future__ import annotations

from typing import Final

CHECKED_AGAINST: Final = {"faust-streaming": "0.15.3", "aiokafka": "0.14.0"}
