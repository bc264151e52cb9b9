"""The canonical interaction: one exchange between two people on one source.

Wire format (one JSON object per line in files; the body of ``POST /v1/interactions``)::

    {"source": str, "event_id": str,
     "kind": "like"|"share"|"comment"|"reply"|"mention"|"message"|"call",
     "actor": str, "target": str, "occurred_at": ISO-8601 with offset, "text": str|null,
     "duration_s": number|null, "thread_id": str|null, "in_reply_to": str|null}
"""

from __future__ import annotations

from typing import Annotated, Final, Literal, get_args

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    model_validator,
)

from schemas.text import shown_safely

#: ``in_person``: a recorded face-to-face meeting (e.g. from a contact log): such a pair
#: already meets and needs no suggestion.
InteractionKind = Literal[
    "like", "share", "comment", "reply", "mention", "message", "call", "in_person"
]

INTERACTION_KINDS: Final[tuple[str, ...]] = get_args(InteractionKind)

#: Pair keys are "a|b", so a person id may not contain "|"; control characters are refused
#: too, and so are invisible, direction-changing and look-alike characters (schemas.text).
PERSON_ID_PATTERN: Final = r"^[^|\x00-\x1f\x7f]+$"
PersonId = Annotated[
    str,
    Field(min_length=1, max_length=256, pattern=PERSON_ID_PATTERN),
    AfterValidator(shown_safely),
]
Identifier = Annotated[str, Field(min_length=1, max_length=256)]

MAX_TEXT_CHARS: Final = 20_000


def pair_key(a: str, b: str) -> str:
    """The unordered pair as a Kafka key: the two ids sorted, joined by "|"."""
    return f"{a}|{b}" if a <= b else f"{b}|{a}"


class Interaction(BaseModel):
    """One interaction between ``actor`` and ``target``, at event time ``occurred_at``."""

    # Inbound from HTTP and files: a tolerant reader (unknown fields are ignored), but frozen.
    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=False)

    #: the version of this format (a record written before formats carried one reads as 1;
    #: a change a reader of the last version could not read takes the next number)
    v: Literal[1] = 1

    source: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
    event_id: Identifier
    kind: InteractionKind
    actor: PersonId
    target: PersonId
    # strict: an ISO-8601 string with an offset, as the schema says (no bare epoch numbers)
    occurred_at: Annotated[AwareDatetime, Field(strict=True)]

    text: Annotated[str, Field(max_length=MAX_TEXT_CHARS)] | None = None
    # strict: "62" is not a duration (the schema says number, so a string is refused)
    duration_s: Annotated[float, Field(ge=0, le=7 * 24 * 3600, strict=True)] | None = None

    thread_id: Identifier | None = None
    in_reply_to: Identifier | None = None
    #: Optional: how many people the same action addressed (a post mentioning five people
    #: gives five interactions with ``recipients=5``).
    recipients: Annotated[int, Field(ge=1, le=100_000, strict=True)] | None = None
    #: Optional: the actor's audience on the platform (followers), when the platform says.
    audience: Annotated[int, Field(ge=0, le=10**10, strict=True)] | None = None
    #: The platform marks the actor as automated (Mastodon ``bot``, Discord ``bot``, GitHub
    #: ``type: Bot``, Slack ``bot_id``): the exchange is not between two people, weight 0.
    actor_bot: Annotated[bool, Field(strict=True)] = False
    #: How meaningful the exchange is, in [0, 1] (``services/matcher/scoring.py``), scored
    #: where the event enters ``interactions`` (the normalizer; ingest for the generic
    #: source), which then drops ``text``: the topic carries this score, never the message.
    #: Whatever a sender puts here is scored again from the text at that point.
    weight: Annotated[float, Field(ge=0, le=1, strict=True)] | None = None

    @model_validator(mode="after")
    def _two_people(self) -> Interaction:
        if self.actor == self.target:
            raise ValueError("actor and target must be two different people")
        return self

    @property
    def pair(self) -> tuple[str, str]:
        a, b = sorted((self.actor, self.target))
        return a, b

    @property
    def key(self) -> str:
        return pair_key(self.actor, self.target)


INTERACTION_ADAPTER: Final = TypeAdapter(Interaction)
INTERACTION_LIST_ADAPTER: Final = TypeAdapter(list[Interaction])
