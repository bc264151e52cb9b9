"""Who is in a group conversation (a Slack multi-party DM), for the normalizer to turn one
message into an exchange with each other member.

Two sources, kept apart in Redis: the members the payloads show (each author, the people a
delivery was for; 30 days, like the directory) and, when the platform's API token is
configured, the members the platform lists (``conversations.members`` through slack_sdk,
with its rate-limit and connection retries; cached a day). The listed members win when
both are known: the learnt ones miss whoever has not written yet.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Final

import structlog
from redis.asyncio import Redis
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from services.common.redis import Keys
from services.common.settings import Settings
from services.normalizer.directory import TTL_S

log = structlog.get_logger(__name__)

#: A conversation's members as the platform listed them are asked again after a day.
LISTED_TTL_S: Final = 86_400
#: After a failed look-up the API is not asked about that conversation again for this long
#: (the learnt members are used meanwhile): a broken token never costs a call per message.
RETRY_AFTER_FAIL_S: Final = 300.0
#: At most this many members are read of one conversation (a Slack group DM has up to 9).
MAX_MEMBERS: Final = 1_000

#: conversation key -> the members' handles, or None when the platform could not say
Lookup = Callable[[str], Awaitable[list[str] | None]]


class SlackMembers:
    """``conversations.members`` for ``members:<team>:<channel>``, with the bot token
    (scope ``mpim:read``)."""

    def __init__(self, token: str, base_url: str | None = None, timeout_s: int = 10) -> None:
        self.client = AsyncWebClient(
            token=token,
            base_url=base_url or "https://slack.com/api/",
            timeout=timeout_s,
            retry_handlers=[
                AsyncConnectionErrorRetryHandler(max_retry_count=2),
                AsyncRateLimitErrorRetryHandler(max_retry_count=2),  # waits its Retry-After
                AsyncServerErrorRetryHandler(max_retry_count=2),
            ],
        )

    async def __call__(self, conversation: str) -> list[str] | None:
        _, team, channel = conversation.split(":", 2)
        users: list[str] = []
        try:
            async for page in await self.client.conversations_members(channel=channel, limit=200):
                users += [u for u in page.get("members", []) if isinstance(u, str)]
                if len(users) >= MAX_MEMBERS:
                    break
        except SlackApiError as exc:  # not_in_channel, missing_scope, invalid_auth...
            log.warning("members_lookup_refused", error=exc.response.get("error"))
            return None
        except (SlackClientError, OSError, TimeoutError) as exc:
            log.warning("members_lookup_failed", error=f"{type(exc).__name__}: {exc}")
            return None
        return [f"slack:{team}:{u}" for u in users[:MAX_MEMBERS]]


def lookups(settings: Settings) -> dict[str, Lookup]:
    """The platforms whose API can list a conversation's members, as configured."""
    found: dict[str, Lookup] = {}
    slack = settings.sources.get("slack")
    if slack is not None and slack.api_token is not None:
        found["slack"] = SlackMembers(slack.api_token.get_secret_value(), slack.api_url)
    return found


class Members:
    def __init__(self, redis: Redis, keys: Keys, lookups: Mapping[str, Lookup]) -> None:
        self._redis, self._keys, self._lookups = redis, keys, lookups
        self._failed: dict[str, float] = {}  # conversation -> when the API may be asked again

    async def learn(self, source: str, seen: Mapping[str, Iterable[str]]) -> None:
        """Add the members a payload showed."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for conversation, handles in seen.items():
                if handles := list(handles):
                    key = self._keys.members(source, conversation)
                    pipe.sadd(key, *handles)
                    pipe.expire(key, TTL_S)
            await pipe.execute()

    async def of(self, source: str, conversations: Iterable[str]) -> dict[str, set[str]]:
        """Each conversation's members: as listed by the platform (asked now if the API is
        configured and the list is not cached), else as learnt."""
        out: dict[str, set[str]] = {}
        for conversation in dict.fromkeys(conversations):
            listed = await self._listed(source, conversation)
            if listed:
                out[conversation] = listed
                continue
            learnt = await self._redis.smembers(self._keys.members(source, conversation))
            out[conversation] = {m.decode() if isinstance(m, bytes) else m for m in learnt}
        return out

    async def _listed(self, source: str, conversation: str) -> set[str]:
        key = self._keys.members(source, conversation, listed=True)
        cached = await self._redis.smembers(key)
        if cached:
            return {m.decode() if isinstance(m, bytes) else m for m in cached}
        lookup = self._lookups.get(source)
        if lookup is None or self._failed.get(conversation, 0.0) > time.monotonic():
            return set()
        found = await lookup(conversation)
        if not found:
            if len(self._failed) > 10_000:  # bounded: old entries have expired anyway
                self._failed.clear()
            self._failed[conversation] = time.monotonic() + RETRY_AFTER_FAIL_S
            return set()
        self._failed.pop(conversation, None)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.sadd(key, *found)
            pipe.expire(key, LISTED_TTL_S)
            await pipe.execute()
        log.info("members_listed", source=source, members=len(found))
        return set(found)
