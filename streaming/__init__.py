"""Kafka: the broker (embedded or external), topic admin, producers, and the ingest to bronze."""
