from __future__ import annotations

from datetime import UTC, datetime

from services.normalizer.normalize import to_interactions
from services.sources.base import Draft, Extraction

AT = datetime(2026, 3, 1, tzinfo=UTC)


def draft(actor: str, target: str | None = None, ref: str | None = None, n: int = 0) -> Draft:
    return Draft(
        event_id=f"e{n}",
        kind="reply",
        actor=actor,
        target=target,
        target_ref=ref,
        occurred_at=AT,
        text="hi there",
    )


def test_linked_handles_become_person_ids_and_unlinked_stay_qualified() -> None:
    links = {"mastodon:@ann@x.social": "ann", "mastodon:@ben@y.social": "ben"}
    ex = Extraction(
        drafts=[
            draft("mastodon:@ann@x.social", "mastodon:@ben@y.social", n=1),
            draft("mastodon:@ann@x.social", "mastodon:@cat@z.social", n=2),
        ]
    )
    out = to_interactions("mastodon", ex, {}, links.get)
    assert [(i.actor, i.target) for i in out.interactions] == [
        ("ann", "ben"),
        ("ann", "mastodon:@cat@z.social"),
    ]
    assert out.interactions[0].key == "ann|ben"
    assert out.interactions[0].source == "mastodon"


def test_refs_resolve_through_the_directory_or_stay_unresolved() -> None:
    ex = Extraction(
        drafts=[
            draft("reddit:u/a", ref="thing:t1_x", n=1),
            draft("reddit:u/a", ref="thing:t1_y", n=2),
        ]
    )
    out = to_interactions("reddit", ex, {"thing:t1_x": "reddit:u/b"}, lambda h: None)
    assert [(i.actor, i.target) for i in out.interactions] == [("reddit:u/a", "reddit:u/b")]
    assert [d.target_ref for d in out.unresolved] == ["thing:t1_y"]


def test_two_linked_accounts_of_one_person_are_not_a_pair() -> None:
    links = {"slack:T:U1": "ann", "mastodon:@ann@x": "ann"}
    ex = Extraction(drafts=[draft("slack:T:U1", "slack:T:U2", n=1)])
    out = to_interactions("slack", ex, {}, {**links, "slack:T:U2": "ann"}.get)
    assert out.interactions == [] and out.same_person == 1


def test_each_interaction_knows_how_many_people_its_action_addressed() -> None:
    from services.sources.base import event_id

    drafts = [
        Draft(
            event_id=event_id("at://did:x/app.bsky.feed.post/k1", kind, t),
            kind=kind,
            actor="bluesky:did:x",
            target=t,
            occurred_at=AT,
        )
        for kind, t in [
            ("reply", "bluesky:did:y"),
            ("mention", "bluesky:did:z"),
            ("mention", "bluesky:did:w"),
        ]
    ]
    drafts.append(
        Draft(
            event_id=event_id("at://did:x/app.bsky.feed.post/k2", "mention", "bluesky:did:y"),
            kind="mention",
            actor="bluesky:did:x",
            target="bluesky:did:y",
            occurred_at=AT,
        )
    )
    out = to_interactions("bluesky", Extraction(drafts=drafts), {}, lambda h: None)
    assert [i.recipients for i in out.interactions] == [3, 3, 3, 1]


def test_a_draft_that_is_no_valid_interaction_is_set_apart_and_the_rest_kept() -> None:
    """Found by the fuzzer: a handle with a newline passed a platform's payload model and
    made the whole delivery fail."""
    ex = Extraction(
        drafts=[
            draft("reddit:u/ann", "reddit:u/ben", n=1),
            draft("reddit:u/ann", "reddit:u/evil\nname", n=2),
            draft("reddit:u/ann", "reddit:u/a|b", n=3),
        ]
    )
    out = to_interactions("reddit", ex, {}, lambda _h: None)
    assert [i.event_id for i in out.interactions] == ["e1"]
    assert [d.event_id for d, _ in out.invalid] == ["e2", "e3"]
    assert all("pattern" in error for _, error in out.invalid)
