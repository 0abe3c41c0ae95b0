"""Helpers for the service tests: other services' events published through their real
store and outbox relay onto their topics, as scheduling and records would."""

from datetime import UTC, datetime, timedelta

import pytest

from services.measures.app import create_app
from shared.crypto import cipher_for
from shared.events import Actor, NewEvent, registry
from shared.eventstore import EventStore, Metadata
from shared.mongo import client as mongo_client
from shared.run import make_relay

META = Metadata(Actor("tester", "admin"), correlation_id="test")


def now():
    return datetime.now(UTC).replace(microsecond=0)


class Upstream:
    """Appends events to another service's store and relays them to its topic."""

    def __init__(self, settings, service):
        self.store = EventStore(
            mongo_client(settings.mongo_uri_of(service)),
            settings.database(service),
            registry,
            cipher=cipher_for(settings),
        )
        self.store.ensure_indexes()
        self.relay = make_relay(settings, service)

    def publish(self, stream_id, *events):
        self.store.append(stream_id, None, list(events), META)
        self.relay.drain()


def register_client(records, client_id, therapist_id, given_name="Emma", areas=None):
    records.publish(
        f"client-{client_id}",
        NewEvent(
            "ClientRegistered",
            {
                "client_id": client_id,
                "given_name": given_name,
                "family_name": "Test",
                "date_of_birth": datetime(1981, 4, 2).date(),
                "email": None,
                "phone": None,
                "preferred_modality": "video",
                "reminder_channels": ["email"],
                "therapist_id": therapist_id,
                "referral_source": "GP",
            },
        ),
    )
    if areas:
        records.publish(
            f"client-{client_id}",
            NewEvent(
                "FormulationRecorded",
                {
                    "client_id": client_id,
                    "revision": 1,
                    "problem_areas": areas,
                    "formulation": "f",
                    "inventory": [],
                    "goals": [],
                },
            ),
        )


def session_facts(session_id, client_id, therapist_id, starts_at):
    return {
        "session_id": session_id,
        "client_id": client_id,
        "therapist_id": therapist_id,
        "starts_at": starts_at,
        "ends_at": starts_at + timedelta(minutes=50),
    }


def booked(session_id, client_id, therapist_id, starts_at, course_id=None, number=None):
    return NewEvent(
        "SessionBooked",
        {
            **session_facts(session_id, client_id, therapist_id, starts_at),
            "kind": "treatment",
            "modality": "video",
            "room": None,
            "course_id": course_id,
            "number": number,
            "video_link": None,
        },
    )


@pytest.fixture
def app(settings):
    s = settings.with_(
        extra={"measures_public_url": "https://measures.example", "link_rate": (40, 600)}
    )
    return create_app(s)
