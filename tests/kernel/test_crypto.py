"""Crypto-shredding against the real store and broker: personal fields are sealed per client
in the events collection and on the topic; destroying the key leaves placeholders everywhere
while the non-personal facts stay."""

import json
from datetime import UTC, date, datetime

import pytest
from cryptography.exceptions import InvalidTag

import shared.contracts  # noqa: F401  (registers the event types)
from shared.config import ConfigError, Settings
from shared.consumer import ProjectionRunner, projection_store, rebuild
from shared.crypto import DISPOSED, KeyDisposed, cipher_for
from shared.directory import ClientDirectory
from shared.events import NewEvent, registry
from shared.eventstore import EventStore
from shared.mongo import client
from shared.outbox import OutboxRelay
from testkit.kernel import META
from testkit.plugin import eventually, running

from .test_outbox import read_topic

EMMA = {
    "client_id": "c-emma",
    "given_name": "Emma",
    "family_name": "Whitfield",
    "date_of_birth": date(1981, 3, 14),
    "email": "emma@example.org",
    "phone": "07700900123",
    "preferred_modality": "video",
    "reminder_channels": ["email", "sms"],
    "therapist_id": "t-1",
    "referral_source": "GP",
    "gp": {"name": "Dr Patel", "practice": "Vinters Park"},
    "nhs_number": "9434765919",
}
FORMULATION = {
    "client_id": "c-emma",
    "revision": 1,
    "problem_areas": ["role_dispute"],
    "formulation": "Dispute with husband after new job",
    "goals": ["Share chores"],
    "inventory": [
        {
            "name": "Mark",
            "relationship": "husband",
            "closeness": 1,
            "good": "kind",
            "hard": "does not help at home",
            "unilateral_partner": True,
        }
    ],
}
PLAINTEXTS = (
    "Emma",
    "Whitfield",
    "emma@example.org",
    "07700900123",
    "Dr Patel",
    "9434765919",
    "Mark",
    "husband",
    "Share chores",
    "1981-03-14",
)


def records_store(settings):
    store = EventStore(
        client(settings.mongo_uri),
        settings.database("records"),
        registry,
        cipher=cipher_for(settings),
    )
    store.ensure_indexes()
    return store


def test_personal_fields_are_sealed_at_rest_and_open_for_readers(settings):
    store = records_store(settings)
    store.append(
        "client-c-emma",
        0,
        [NewEvent("ClientRegistered", EMMA), NewEvent("FormulationRecorded", FORMULATION)],
        META,
    )
    raw = json.dumps(list(store.events.find({}, {"data": 1})), default=str)
    for text in PLAINTEXTS:
        assert text not in raw, f"{text} readable in the events collection"
    assert "t-1" in raw  # non-personal facts stay readable
    assert "role_dispute" not in raw  # the problem area is clinical: sealed (issue 15)
    events = store.load("client-c-emma")
    assert events[0].data["given_name"] == "Emma"
    assert events[0].data["date_of_birth"] == date(1981, 3, 14)
    assert events[1].data["inventory"][0]["name"] == "Mark"


def test_disposal_leaves_placeholders_in_events_topic_and_rebuilt_projection(settings):
    store = records_store(settings)
    store.append(
        "client-c-emma",
        0,
        [NewEvent("ClientRegistered", EMMA), NewEvent("FormulationRecorded", FORMULATION)],
        META,
    )
    OutboxRelay(store, settings.kafka_bootstrap, settings.topic("records")).drain()
    directory = ClientDirectory("kernel")
    runner = ProjectionRunner(settings, directory)
    with running(runner.run):
        eventually(
            lambda: (
                projection_store(settings, directory).reader("clients").find_one({"_id": "c-emma"})
            )
        )
    assert (
        projection_store(settings, directory).reader("clients").find_one()["given_name"] == "Emma"
    )

    assert cipher_for(settings).keys.destroy("c-emma") is True
    events = store.load("client-c-emma")
    assert events[0].data["given_name"] == DISPOSED and "date_of_birth" not in events[0].data
    assert events[0].data["therapist_id"] == "t-1"  # the facts that are not personal stay
    assert events[1].data["problem_areas"] == []  # sealed clinical list: gone, not guessed
    assert events[1].data["inventory"][0]["name"] == DISPOSED
    assert events[1].data["inventory"][0]["closeness"] == 1

    on_topic = json.dumps([r for _, r in read_topic(settings, settings.topic("records"))])
    for text in PLAINTEXTS:
        assert text not in on_topic, f"{text} readable on the topic"

    rebuild(settings, directory)
    doc = projection_store(settings, directory).reader("clients").find_one({"_id": "c-emma"})
    assert doc["given_name"] == DISPOSED and doc["email"] == DISPOSED
    assert doc["problem_areas"] == [] and doc["therapist_id"] == "t-1"
    with pytest.raises(KeyDisposed):
        store.append(
            "client-c-emma",
            2,
            [NewEvent("FormulationRecorded", {**FORMULATION, "revision": 2})],
            META,
        )


def test_a_ciphertext_moved_to_another_client_does_not_open(settings):
    store = records_store(settings)
    store.append("client-c-emma", 0, [NewEvent("ClientRegistered", EMMA)], META)
    store.append(
        "client-c-john",
        0,
        [NewEvent("ClientRegistered", {**EMMA, "client_id": "c-john", "given_name": "John"})],
        META,
    )
    emma = store.events.find_one({"stream_id": "client-c-emma"})
    store.events.update_one(
        {"stream_id": "client-c-john"},
        {"$set": {"data.given_name": {**emma["data"]["given_name"], "kid": "c-john"}}},
    )
    with pytest.raises(InvalidTag):
        store.load("client-c-john")


def test_demo_keys_are_refused_outside_demo_mode():
    with pytest.raises(ConfigError):
        Settings(demo_mode=False, token_secret="x" * 40).check()
    Settings(
        demo_mode=False,
        token_secret="x" * 40,
        master_key="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    ).check()


def test_a_shredded_text_limited_to_set_values_reads_absent_not_as_the_placeholder(settings):
    """A course outcome is one of a few words and sealed: once shredded, "[disposed]" is not
    one of them, so it is left out (as a number is) and the event still loads; before, the
    whole record failed to load, every read of a disposed client with a completed course a
    500 (issue 17, found by the subject access export)."""
    store = records_store(settings)
    completed = {
        "client_id": "c-emma",
        "therapist_id": "t-1",
        "ended": "therapist",
        "outcome": "improved",
        "outcome_summary": "Sleeping better",
        "sessions_attended": 16,
        "completed_at": datetime(2026, 11, 1, 10, tzinfo=UTC),
        "by": "t-user",
    }
    store.append("client-c-emma", 0, [NewEvent("CourseCompleted", completed)], META)
    cipher_for(settings).keys.destroy("c-emma")
    [event] = store.load("client-c-emma")
    assert "outcome" not in event.data
    assert event.data["outcome_summary"] == DISPOSED
