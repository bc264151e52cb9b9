"""Converters from the public datasets in ``../shared/data`` to canonical interaction JSONL."""
