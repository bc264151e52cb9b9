"""Accounts that are automated although the platform marks them only by name or behaviour
(pure). A bot's message is kept and weighs nothing (``actor_bot``); a message *to* a bot is
not an exchange between people and is left out.

Platforms that flag bots in the payload (Discord ``bot``, Mastodon ``bot``, GitHub ``type:
Bot``, Slack ``bot_id``) are read by their adapters. The rest are these: each platform's
built-in accounts, GitHub's reserved ``[bot]`` suffix, and a per-deployment list operators
edit through ``/v1/automated-accounts`` (kept in Redis). An account that is a bot only by its
behaviour and is on no list cannot be told apart: that limit is documented.
"""

from __future__ import annotations

from typing import Final

#: built-in accounts of the platforms, as source-qualified handles
BUILT_IN: Final = frozenset(
    {
        "reddit:u/automoderator",  # Reddit's moderation bot, in every subreddit
        "reddit:u/reddit",  # Reddit's own announcements
        "github:dependabot",
        "github:github-actions",
        "github:copilot",
    }
)


def is_automated(handle: str, listed: frozenset[str] | set[str] = frozenset()) -> bool:
    """Whether ``handle`` (source-qualified) is a known automated account."""
    if handle in BUILT_IN or handle in listed:
        return True
    if handle.startswith("github:") and handle.endswith("[bot]"):
        return True  # GitHub reserves the suffix for apps
    return handle.startswith("slack:") and handle.endswith(":USLACKBOT")  # Slackbot
