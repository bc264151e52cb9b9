"""Ingest: authenticated HTTP in, canonical interactions onto Kafka keyed by pair."""
