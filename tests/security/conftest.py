"""Attacks against the real stack (Kafka, Redis, the services as processes): each test here
failed on ccc5dda, before trusted producers, bounded batches and safe defaults."""
