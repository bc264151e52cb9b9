"""Topic names. Agents and routes use these constants, never string literals.

Every name is prefixed with ``REALCONNECT_NAMESPACE`` at runtime by
``services.common.kafka.Topics`` so that test runs never see each other's data.
"""

from typing import Final

INTERACTIONS: Final = "interactions"
#: Verified raw payloads, one topic per source: ``interactions.raw.<source>``.
RAW_PREFIX: Final = "interactions.raw."
RAW_SOURCES: Final = (
    "generic",
    "phone",
    "mastodon",
    "bluesky",
    "reddit",
    "slack",
    "discord",
    "github",
)
PEOPLE_PROFILES: Final = "people.profiles"
PEOPLE_IDENTITIES: Final = "people.identities"
#: preferences and consent, key person id
PEOPLE_CONSENT: Final = "people.consent"
#: hashed bearer tokens, key token hash
PEOPLE_TOKENS: Final = "people.tokens"
#: people who asked to be forgotten, key sha256(person id): the suppression list
PEOPLE_FORGOTTEN: Final = "people.forgotten"
#: every feed item in its latest state, key "person|item": the source feeds are rebuilt from
FEEDS: Final = "feeds"
#: outbound webhook deliveries still to make, key person id
WEBHOOKS: Final = "notifications.webhooks"
#: webhook deliveries whose attempt failed, to try again after ``not_before``, key person id
WEBHOOKS_RETRY: Final = "notifications.webhooks.retry"
#: chat messages still to send (a DM with answer buttons on Slack or Discord), key person id
CHAT: Final = "notifications.chat"
#: chat messages whose attempt failed (a 429, a platform outage), to try again after
#: ``not_before``, key person id
CHAT_RETRY: Final = "notifications.chat.retry"
#: emails still to send (new items, and meetup invites), key person id
EMAILS: Final = "notifications.email"
#: deliveries held for later (quiet hours, a pause, the weekly cap), key suggestion id, in the
#: partition of the suggestion: the source held deliveries are rebuilt from
HELD: Final = "notifications.held"


#: Compacted: the latest record per key is the state (a tombstone deletes it).
COMPACTED: Final = (
    PEOPLE_PROFILES,
    PEOPLE_IDENTITIES,
    PEOPLE_CONSENT,
    PEOPLE_TOKENS,
    PEOPLE_FORGOTTEN,
    FEEDS,
    HELD,
)

INTERACTIONS_DLQ: Final = "interactions.dlq"
SUGGESTIONS: Final = "meetup.suggestions"
#: Answers to suggestions (accepted, declined, snoozed, met), keyed by pair.
FEEDBACK: Final = "meetup.feedback"
#: The matcher's own event-time ticks, one per partition, so that buffered events are decided
#: in the partition's context (faust writes table changes only from a stream).
MATCHER_TICKS: Final = "matcher.ticks"
#: Meaningful exchanges per person (arrays of ``[person, partner, weight, epoch s]``, sent by
#: the matcher to the partition of the person), which its circle stage folds into each
#: person's circle (services/matcher/circles.py).
PERSON_ACTIVITY: Final = "person.activity"
#: Group meetup suggestions (schemas/suggestions.py ``GroupSuggestion``), keyed by group id.
GROUPS: Final = "meetup.groups"

SUGGESTIONS_DLQ: Final = "notifications.dlq"

#: Topics the stack creates up front (faust creates its own changelog topics).
ALL: Final = (
    INTERACTIONS,
    INTERACTIONS_DLQ,
    SUGGESTIONS,
    SUGGESTIONS_DLQ,
    FEEDBACK,
    MATCHER_TICKS,
    PERSON_ACTIVITY,
    GROUPS,
    WEBHOOKS,
    WEBHOOKS_RETRY,
    EMAILS,
    CHAT,
    CHAT_RETRY,
    *COMPACTED,
    *(RAW_PREFIX + s for s in RAW_SOURCES),
)
