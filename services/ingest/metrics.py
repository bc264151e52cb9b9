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
