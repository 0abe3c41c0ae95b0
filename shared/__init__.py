"""Rapport's kernel: events, event store, outbox relay, consumers and projections,
Flask helpers, staff identity and configuration. Every service uses these once."""
