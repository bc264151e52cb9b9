"""The operator console: live counts read from Kafka offsets and Redis."""
