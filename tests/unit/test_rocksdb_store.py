"""The matcher's pair table lives in the bounded rocksdb store: every partition database of
a worker shares one cache, which holds index and filter blocks and is charged for memtables.
(RSS against the pair count is measured by ``make bench-memory``.)"""

from __future__ import annotations

from pathlib import Path

import rocksdict

from services.common import rocksdb_store
from services.common.settings import MatcherSettings, Settings
from services.matcher.app import create_app


def test_the_matcher_pair_table_uses_the_bounded_store_with_the_configured_cap(
    tmp_path: Path,
) -> None:
    settings = Settings(
        namespace="unit",
        matcher=MatcherSettings(data_dir=tmp_path, rocksdb_memory_mb=48),
    )
    app = create_app(settings)
    store = app.tables["pairs"].data
    assert isinstance(store, rocksdb_store.Store)
    assert isinstance(store.rocksdb_options, rocksdb_store.BoundedRocksDBOptions)
    assert store.rocksdb_options.memory_mb == 48
    assert (
        store.rocksdb_options.write_buffer_size == settings.matcher.rocksdb_write_buffer_mb * 2**20
    )


def test_partition_databases_share_one_cache_that_holds_index_and_filter_blocks(
    tmp_path: Path,
) -> None:
    options = rocksdb_store.BoundedRocksDBOptions(memory_mb=16)
    cache, write_buffers = rocksdb_store.shared_memory(16)
    assert rocksdb_store.shared_memory(16)[0] is cache  # one per process and cap
    dbs = [options.open(tmp_path / f"p{i}") for i in range(2)]
    before = cache.get_usage()
    for i, db in enumerate(dbs):
        for k in range(5_000):
            db[f"{i}:{k:06d}".encode()] = b"x" * 100
    # the memtables are charged to the shared cache while they fill
    assert write_buffers.get_usage() > 0
    assert cache.get_usage() > before
    for db in dbs:
        db.flush()
        assert db[b"0:000001" if db is dbs[0] else b"1:004999"] == b"x" * 100
    for i in range(2):
        text = next((tmp_path / f"p{i}").glob("OPTIONS-*")).read_text()
        assert "cache_index_and_filter_blocks=true" in text
        assert "pin_l0_filter_and_index_blocks_in_cache=true" in text
    for db in dbs:
        db.close()
    assert isinstance(cache, rocksdict.Cache)
