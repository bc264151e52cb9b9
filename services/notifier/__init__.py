"""The notifier: suggestion -> feed items (pure policy), written idempotently to Redis."""
