"""The rate limit's buckets (pure), worked by hand: rate 1/s, burst 2."""

from __future__ import annotations

from services.common.http_server import client_key
from services.common.rate_limit import Buckets


def test_a_bucket_spends_its_burst_then_refills_at_the_rate() -> None:
    b = Buckets(rate=1.0, burst=2.0)
    assert b.take("a", 0.0) == 0.0
    assert b.take("a", 0.0) == 0.0
    assert b.take("a", 0.0) == 1.0  # empty: one token in a second
    assert b.take("a", 0.5) == 0.5
    assert b.take("a", 1.0) == 0.0  # refilled by one


def test_a_full_table_drops_refilled_buckets_oldest_first() -> None:
    b = Buckets(rate=1.0, burst=2.0, max_callers=2)
    b.take("a", 0.0)
    b.take("b", 1.0)
    # at t=1.5: a (1 token at 0) is full again at 1.0, b (1 token at 1.0) only at 2.0
    assert b.take("c", 1.5) == 0.0
    assert len(b) == 2
    assert b.take("b", 1.5) == 0.0  # b was kept: 1.5 tokens, takes one
    assert b.take("b", 1.5) == 1.0 - 0.5  # and is nearly empty now, as before


def test_a_flood_of_new_callers_cannot_flush_a_spent_bucket() -> None:
    b = Buckets(rate=1.0, burst=2.0, max_callers=3)
    b.take("victim", 0.0)
    b.take("victim", 0.0)  # spent
    for i in range(2):
        assert b.take(f"flood{i}", 0.1) == 0.0
    # the table is full of buckets in use: newcomers are refused, nobody is dropped
    for i in range(2, 100):
        assert b.take(f"flood{i}", 0.2) > 0
    assert len(b) == 3
    assert b.take("victim", 0.2) > 0  # still spent: the flood reset nothing


def test_ipv6_callers_count_by_their_slash_64() -> None:
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::9")
    assert client_key("2001:db8:1:2::1") != client_key("2001:db8:1:3::1")
    assert client_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert client_key("192.0.2.7") == "192.0.2.7"
