"""A rocksdb table store whose memory is bounded per worker, not per partition database.

faust's rocksdb store opens one database per table partition, each with its own block
cache and memtables, and leaves index and filter blocks outside any cache. A worker's
memory then grows with the partitions it holds and with the data stored: the index and
filter blocks of every SST file stay resident, so RSS climbs with the number of pairs.

This store gives every database of the worker process **one** LRU cache, which holds data
blocks, index and filter blocks (``cache_index_and_filter_blocks``) and, through a write
buffer manager, is charged for the memtables too: rocksdb's memory is capped by that one
figure however many pairs are stored. Registered as the ``rocksdb-bounded://`` scheme
through the ``faust.stores`` entry point; the table option ``memory_mb`` sets the cap
(``REALCONNECT_MATCHER__ROCKSDB_MEMORY_MB`` for the matcher's pair table).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import rocksdict
from faust.stores import rocksdb as faust_rocksdb

#: the cap when a table names none (global tables: identities, profiles)
DEFAULT_MEMORY_MB = 64
#: share of the cap the memtables may take before they are flushed
MEMTABLE_SHARE = 0.25

_shared: dict[int, tuple[rocksdict.Cache, rocksdict.WriteBufferManager]] = {}
_lock = threading.Lock()


def shared_memory(memory_mb: int) -> tuple[rocksdict.Cache, rocksdict.WriteBufferManager]:
    """The process's cache and write buffer manager for this cap (one pair per cap)."""
    with _lock:
        if memory_mb not in _shared:
            cache = rocksdict.Cache(memory_mb * 2**20)
            memtables = int(memory_mb * 2**20 * MEMTABLE_SHARE)
            wbm = rocksdict.WriteBufferManager.new_write_buffer_manager_with_cache(
                memtables, False, cache
            )
            _shared[memory_mb] = (cache, wbm)
        return _shared[memory_mb]


class BoundedRocksDBOptions(faust_rocksdb.RocksDBOptions):
    """faust's options, with the block cache and memtables shared by every database."""

    def __init__(self, *, memory_mb: int = DEFAULT_MEMORY_MB, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.memory_mb = memory_mb

    def as_options(self) -> rocksdict.Options:
        cache, write_buffers = shared_memory(self.memory_mb)
        options = rocksdict.Options(raw_mode=True)
        options.create_if_missing(True)
        if self.max_open_files is not None:
            options.set_max_open_files(self.max_open_files)
        options.set_write_buffer_size(self.write_buffer_size)
        options.set_max_write_buffer_number(self.max_write_buffer_number)
        options.set_target_file_size_base(self.target_file_size_base)
        options.set_write_buffer_manager(write_buffers)
        table = rocksdict.BlockBasedOptions()
        table.set_bloom_filter(self.bloom_filter_size, block_based=True)
        table.set_block_cache(cache)
        table.set_cache_index_and_filter_blocks(True)
        # the newest files' index and filter blocks are read on every miss: keep them
        table.set_pin_l0_filter_and_index_blocks_in_cache(True)
        table.set_index_type(rocksdict.BlockBasedIndexType.binary_search())
        options.set_block_based_table_factory(table)
        return options


class Store(faust_rocksdb.Store):
    """faust's rocksdb store (rocksdict driver) on :class:`BoundedRocksDBOptions`."""

    def __init__(
        self, url: Any, app: Any, table: Any, *, options: dict[str, Any] | None = None, **kw: Any
    ) -> None:
        opts = dict(options or {})
        memory_mb = int(opts.pop("memory_mb", DEFAULT_MEMORY_MB))
        super().__init__(url, app, table, options=opts, driver="rocksdict", **kw)
        db_opts = {k: v for k, v in opts.items() if k not in ("read_only", "driver")}
        self.rocksdb_options = BoundedRocksDBOptions(memory_mb=memory_mb, **db_opts)


def partition_databases(store: Any) -> Callable[[int], Any] | None:
    """A function from a partition to its rocksdb database in a faust table's store, through
    faust's private ``_db_for_partition`` (faust-streaming 0.15.3, ``faust/stores/rocksdb.py``;
    it opens the database of a partition on first use), or None for a store without one (the
    memory store of tests). The matcher reads and writes its pair states there directly: one
    rocksdb get per look-up and one ``WriteBatch`` per partition per batch, without faust's
    per-key dispatch."""
    db_for: Callable[[int], Any] | None = getattr(store, "_db_for_partition", None)
    return db_for
