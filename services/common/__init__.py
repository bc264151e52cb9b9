"""Shared adapters and configuration. No domain rules live here."""
