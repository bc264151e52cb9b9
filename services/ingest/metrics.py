"""Prometheus metrics of the ingest service."""

from __future__ import annotations

from prometheus_client import Counter

INGESTED = Counter(
    "realconnect_interactions_ingested_total",
    "Interactions accepted and acknowledged by Kafka.",
    ["source", "kind"],
)
REJECTED = Counter(
    "realconnect_ingest_rejections_total", "Requests rejected, by reason.", ["reason"]
)
WEBHOOKS = Counter(
    "realconnect_webhook_deliveries_total", "Verified deliveries stored on Kafka.", ["source"]
)
IGNORED = Counter(
    "realconnect_webhook_ignored_total",
    "Authentic, well-formed deliveries of a kind realconnect does not read: answered 202, "
    "not stored.",
    ["source", "kind"],
)
