"""No id can reach another key: person ids are escaped inside Redis keys (pure)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.common.redis import Keys
from services.common.settings import Settings

KEYS = Keys(Settings(namespace="ns"))
PER_PERSON = ("feed", "feed_items", "feed_events", "about", "sent", "identities_of", "tokens_of")


def test_an_id_cannot_name_another_persons_key() -> None:
    assert KEYS.feed("alice:items") != KEYS.feed_items("alice")
    assert KEYS.feed("alice:events") != KEYS.feed_events("alice")
    assert KEYS.feed("alice").endswith(":feed:alice")  # ordinary ids keep their keys


@given(a=st.text(min_size=1, max_size=20), b=st.text(min_size=1, max_size=20))
def test_different_people_never_share_a_key(a: str, b: str) -> None:
    keys_a = {getattr(KEYS, k)(a) for k in PER_PERSON}
    keys_b = {getattr(KEYS, k)(b) for k in PER_PERSON}
    assert len(keys_a) == len(PER_PERSON)
    if a != b:
        assert not keys_a & keys_b


def test_the_forms_a_forgotten_name_takes() -> None:
    from services.feeds.routes import name_forms

    forms = name_forms("f:ann", ["mastodon:@ann@x.social", "reddit:u/Ann_R"])
    assert {"ann@x.social", "@ann@x.social", "ann", "Ann_R", "f:ann"} <= forms
