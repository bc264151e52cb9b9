"""Connectors: small processes that read a platform that does not push webhooks (Bluesky's
Jetstream, Mastodon's streaming API, Discord's gateway, Reddit's listings) and forward each
platform payload, unchanged, signed, to ingest's ``POST /v1/sources/{source}/events``.

Everything after ingest is the path every webhook takes. A connector stores its position in
the platform's stream (a Jetstream cursor, a Mastodon id, a Discord session and sequence, a
Reddit fullname) in Redis only after ingest answered, so a crash repeats, never skips; what
is repeated is dropped by ingest's event-id dedupe.

``core``: forwarding, positions, backoff and the per-connector metrics; one module per
platform; ``backfill`` reads history through the same clients.
"""
