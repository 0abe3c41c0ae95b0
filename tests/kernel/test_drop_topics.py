"""`shared.kafka.drop_topics` against the real local broker: a bench section's topics go
when the section ends, and no one else's."""

import pytest
from kafka import KafkaAdminClient

from shared import kafka as kafka_clients


def _topics(bootstrap: str) -> set[str]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return set(admin.list_topics())
    finally:
        admin.close()


def test_only_the_prefixed_topics_are_deleted(settings):
    mine = [settings.topic("scheduling"), settings.topic("records")]
    other = settings.topic_prefix.replace("rapport.", "other.") + "scheduling"
    kafka_clients.ensure_topics(settings.kafka_bootstrap, [*mine, other], 1)
    producer = kafka_clients.producer(settings.kafka_bootstrap)
    for topic in (*mine, other):
        producer.send(topic, b"x").get(timeout=10)
    producer.close()

    dropped = kafka_clients.drop_topics(settings.kafka_bootstrap, settings.topic_prefix)

    assert dropped == sorted(mine)
    left = _topics(settings.kafka_bootstrap)
    assert not left & set(mine), left
    assert other in left
    assert kafka_clients.drop_topics(settings.kafka_bootstrap, other) == [other]
    assert kafka_clients.drop_topics(settings.kafka_bootstrap, settings.topic_prefix) == []


def test_an_empty_prefix_is_refused(settings):
    with pytest.raises(ValueError, match="prefix"):
        kafka_clients.drop_topics(settings.kafka_bootstrap, "")
