"""Kafka clients, created only where they are used (a relay or consumer process, or a
gunicorn worker after the fork), and topic creation."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from .config import kafka_options_from_env

log = logging.getLogger(__name__)


def producer(bootstrap: str, **overrides: Any) -> KafkaProducer:
    options = {
        "bootstrap_servers": bootstrap,
        "acks": "all",
        "enable_idempotence": True,  # no duplicates from the producer's own retries
        "max_in_flight_requests_per_connection": 5,  # order kept per partition with idempotence
        "retries": 5,
        "linger_ms": 5,
        "max_block_ms": 5000,  # a send() while the broker is down fails fast; the relay retries
        # a relay started while the broker is away retries (and stops) sooner
        "bootstrap_timeout_ms": 10000,
        "request_timeout_ms": 10000,
        "client_id": "rapport-relay",
        # never let a send create the topic with the broker's default partition count: a topic
        # that later shows more partitions moves streams to other partitions (found by the
        # fault suite on the local broker); topics are created by ensure_topics
        "allow_auto_create_topics": False,
    }
    options.update(kafka_options_from_env())  # TLS / SASL (deploy/README.md)
    options.update(overrides)
    return KafkaProducer(**options)


def consumer(bootstrap: str, **overrides: Any) -> KafkaConsumer:
    options = {
        "bootstrap_servers": bootstrap,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_poll_records": 200,
        "session_timeout_ms": 10000,
        "heartbeat_interval_ms": 3000,
        "allow_auto_create_topics": False,  # see producer()
        # the local broker ignores a fetch's byte limits and answers with every record from
        # the offset asked: a rebuild's first fetch of a 1M-event topic was one 678 MB frame,
        # which kafka-python refused (its limit: 100 MB), dropped and asked for again, for
        # good (bench/README.md, gaps). Real Kafka caps the answer at fetch_max_bytes (50 MB).
        "receive_message_max_bytes": 1 << 30,
    }
    options.update(kafka_options_from_env())
    options.update(overrides)
    return KafkaConsumer(**options)


def finish_unfinished_join(consumer: KafkaConsumer) -> bool:
    """Rejoin when kafka-python 3.0.12 has dropped the end of a join: True if it had.

    When a poll's time runs out between JoinGroup and SyncGroup, kafka-python leaves the
    join running and lets the next poll wait for it. If the join was for a change of the
    topics' partitions the leader noticed (not a rejoin the broker asked for), the join's
    end clears that need. Then no later poll waits for the join: its assignment is never
    taken up, the rebalance listener never hears of it, and the consumer reads nothing
    more until it is restarted, while the broker counts it as holding every partition. The
    runner's short polls (`poll(timeout_ms=0)` once something held back is due) met this
    right after a runner's first assignment, and its projections stopped (CI, session 35:
    two tests waited 15-20 s for a runner holding nothing).

    The sign: a join that has ended, that no poll has taken up, and no rejoin needed. Then
    this asks for a rejoin, and the next poll joins again (without revoking again: the
    listener heard of the revocation when the join began)."""
    coordinator = getattr(consumer, "_coordinator", None)
    join = getattr(coordinator, "_join_task", None)
    if coordinator is None or join is None or not join.is_done or coordinator.need_rejoin():
        return False
    log.info(
        "group %s: a join ended without its assignment taken up; joining again",
        coordinator.group_id,
    )
    coordinator.request_rejoin()
    return True


def _admin(bootstrap: str, **overrides: Any) -> KafkaAdminClient:
    options = {
        "bootstrap_servers": bootstrap,
        "client_id": "rapport-admin",
        "request_timeout_ms": 10000,
    }
    options.update(kafka_options_from_env())
    options.update(overrides)
    return KafkaAdminClient(**options)


def drop_topics(bootstrap: str, prefix: str) -> list[str]:
    """Delete every topic whose name starts with `prefix` (a bench section's or a scratch
    run's own), and return their names. The local broker keeps all it holds in one JSON file
    written again each second it changes, so what earlier runs left costs it CPU on every
    later write (bench/README.md, "Gaps of the local servers")."""
    if not prefix:
        raise ValueError("a prefix is needed: this deletes every topic it matches")
    admin = _admin(bootstrap, request_timeout_ms=30000)
    try:
        topics = sorted(t for t in admin.list_topics() if t.startswith(prefix))
        if topics:
            admin.delete_topics(topics, timeout_ms=30000)
        return topics
    finally:
        admin.close()


def ensure_topics(bootstrap: str, topics: Iterable[str], partitions: int) -> None:
    """Create topics that do not exist yet (idempotent)."""
    admin = _admin(bootstrap)
    try:
        existing = set(admin.list_topics())
        missing = [NewTopic(t, partitions, 1) for t in topics if t not in existing]
        if missing:
            try:
                admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass
            except KafkaError as err:  # raced with another process creating them
                if "TOPIC_ALREADY_EXISTS" not in repr(err).upper():
                    raise
    finally:
        admin.close()
