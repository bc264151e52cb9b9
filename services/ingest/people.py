"""The people API (admin): profiles and cross-platform identities, on compacted topics.

``PUT /v1/people/{person_id}`` writes the profile to ``people.profiles`` (key: person id);
``PUT /v1/people/{person_id}/identities/{source}`` links a handle on a source to the person
on ``people.identities`` (key: the source-qualified handle, e.g. ``mastodon:@ann@example.social``).
The normalizer reads identities into a faust global table, so interactions between linked
handles are attributed to person ids.
"""

from __future__ import annotations

from typing import Annotated, Any
from zoneinfo import available_timezones

import orjson
from aiokafka.errors import KafkaError
from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from schemas.text import shown_safely
from services.common.admin import admin
from services.common.kafka import ProducerSlot, produce
from services.common.paths import PersonPath
from services.common.problems import Problem
from services.common.redis import Keys
from services.common.settings import Settings
from services.sources import SOURCES, SourceName
from services.sources.automated import BUILT_IN

router = APIRouter()
_ZONES = frozenset(available_timezones())


class Profile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    display_name: Annotated[str, Field(max_length=200), AfterValidator(shown_safely)] | None = None
    city: Annotated[str, Field(max_length=200), AfterValidator(shown_safely)] | None = None
    time_zone: Annotated[str, Field(max_length=64, examples=["Europe/Lisbon"])] | None = None

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, v: str | None) -> str | None:
        if v is not None and v not in _ZONES:
            raise ValueError("not an IANA time zone name")
        return v


class StoredProfile(Profile):
    person_id: str


class IdentityIn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    handle: Annotated[
        str,
        Field(
            min_length=1,
            max_length=512,
            pattern=r"^[^|\x00-\x1f\x7f]+$",
            examples=["@ann@example.social"],
        ),
        AfterValidator(shown_safely),
    ]


class Identity(BaseModel):
    person_id: str
    source: str
    handle: str  # source-qualified, as the normalizer sees it


async def _send(request: Request, topic: str, key: str, value: bytes) -> None:
    try:
        producer: ProducerSlot = request.app.state.producer
        await producer.acknowledged(produce(producer, topic, key.encode(), value))
    except KafkaError as exc:
        raise Problem(
            503, "Kafka unavailable", "Not stored; retry.", headers={"Retry-After": "1"}
        ) from exc


_AUTH: dict[int | str, dict[str, Any]] = {
    400: {"description": "Body that is not JSON (problem+json)"},
    401: {"description": "Missing or wrong admin token (problem+json)"},
    422: {"description": "Invalid body (problem+json)"},
    503: {"description": "Kafka did not acknowledge; retry (problem+json)"},
}


@router.put(
    "/v1/people/{person_id}",
    response_model=StoredProfile,
    responses=_AUTH,
    dependencies=[Depends(admin("people"))],
    summary="Create or replace a person's profile",
)
async def put_profile(request: Request, person_id: PersonPath, profile: Profile) -> StoredProfile:
    stored = StoredProfile(person_id=person_id, **profile.model_dump())
    await _send(
        request, request.app.state.topics.profiles, person_id, stored.model_dump_json().encode()
    )
    # the name people see each other by (the page, emails, invites), after Kafka took it
    names = Keys(settings_of(request)).names
    if stored.display_name:
        await request.app.state.redis.hset(names, person_id, stored.display_name)
    else:
        await request.app.state.redis.hdel(names, person_id)
    return stored


@router.put(
    "/v1/people/{person_id}/identities/{source}",
    response_model=Identity,
    responses={**_AUTH, 404: {"description": "Unknown source (problem+json)"}},
    dependencies=[Depends(admin("people"))],
    summary="Link a person's handle on a source",
)
async def put_identity(
    request: Request,
    person_id: PersonPath,
    source: Annotated[SourceName, Path()],
    body: IdentityIn,
) -> Identity:
    spec = SOURCES.get(source)
    if spec is None or source == "generic":
        raise Problem(404, "Unknown source", f"No source {source!r}.")
    identity = Identity(person_id=person_id, source=source, handle=spec.qualify(body.handle))
    keys = Keys(settings_of(request))
    await request.app.state.redis.sadd(keys.identities_of(person_id), identity.handle)
    await request.app.state.redis.hset(keys.linked, identity.handle, person_id)
    await _send(
        request,
        request.app.state.topics.identities,
        identity.handle,
        orjson.dumps(identity.model_dump()),
    )
    return identity


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


class AutomatedAccounts(BaseModel):
    #: the operators' list (source-qualified handles)
    listed: list[str]
    #: each platform's built-in automated accounts, always applied
    built_in: list[str]


@router.get(
    "/v1/automated-accounts",
    response_model=AutomatedAccounts,
    responses=_AUTH,
    dependencies=[Depends(admin("people"))],
    summary="Accounts treated as automated (their messages weigh nothing; messages to them "
    "are not exchanges)",
)
async def list_automated(request: Request) -> AutomatedAccounts:
    members = await request.app.state.redis.smembers(Keys(settings_of(request)).automated)
    listed = sorted(m.decode() if isinstance(m, bytes) else m for m in members)
    return AutomatedAccounts(listed=listed, built_in=sorted(BUILT_IN))


async def _automated_handle(source: str, body: IdentityIn) -> str:
    spec = SOURCES.get(source)
    if spec is None or source == "generic":
        raise Problem(404, "Unknown source", f"No source {source!r}.")
    return spec.qualify(body.handle)


@router.put(
    "/v1/automated-accounts/{source}",
    response_model=AutomatedAccounts,
    responses={**_AUTH, 404: {"description": "Unknown source (problem+json)"}},
    dependencies=[Depends(admin("people"))],
    summary="Mark a handle on a source as an automated account (a bot the platform does not flag)",
)
async def put_automated(
    request: Request, source: Annotated[SourceName, Path()], body: IdentityIn
) -> AutomatedAccounts:
    handle = await _automated_handle(source, body)
    await request.app.state.redis.sadd(Keys(settings_of(request)).automated, handle)
    return await list_automated(request)


@router.delete(
    "/v1/automated-accounts/{source}",
    response_model=AutomatedAccounts,
    responses={**_AUTH, 404: {"description": "Unknown source (problem+json)"}},
    dependencies=[Depends(admin("people"))],
    summary="Take a handle off the list of automated accounts",
)
async def delete_automated(
    request: Request,
    source: Annotated[SourceName, Path()],
    handle: Annotated[
        str,
        Query(min_length=1, max_length=512, pattern=r"^[^|\x00-\x1f\x7f]+$"),
        AfterValidator(shown_safely),
    ],
) -> AutomatedAccounts:
    handle = await _automated_handle(source, IdentityIn(handle=handle))
    await request.app.state.redis.srem(Keys(settings_of(request)).automated, handle)
    return await list_automated(request)
