"""Fixtures for scheduling's service tests: the app on the real local store, a clock the
test can move past a session's start, and clients registered the way records does it
(records' events in records' own store, then applied by scheduling's directory)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest

from services.scheduling.app import create_app
from services.scheduling.domain import diary
from services.scheduling.projections import directory
from shared.events import Actor, NewEvent, utcnow
from shared.eventstore import Metadata
from shared.outbox import message_from_document
from shared.projections import Record
from shared.web import ServiceContext

RECEPTION = Metadata(actor=Actor("reception-user", "admin"), correlation_id="test")
WORKING_WEEK = [{"weekday": d, "start": "09:00", "end": "17:00"} for d in range(5)]


class Clock:
    """Real time, plus an offset a test can move forward."""

    def __init__(self):
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return utcnow() + self.offset

    def move_past(self, moment: datetime) -> None:
        self.offset = moment - utcnow() + timedelta(minutes=5)


def monday(weeks_ahead: int = 3) -> date:
    today = diary.local(utcnow()).date()
    return today + timedelta(days=7 * weeks_ahead - today.weekday())


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """A practice wall-clock time as UTC."""
    return diary.to_utc(day, time(hour, minute))


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def app(settings, clock):
    return create_app(settings, clock=clock)


@pytest.fixture
def client(app):
    return app.test_client()


def records_store(settings):
    return ServiceContext("records", settings).store


def register_client(settings, client_id: str, therapist_id: str, given="Emma", family="Stone"):
    records_store(settings).append(
        f"client-{client_id}",
        0,
        [
            NewEvent(
                "ClientRegistered",
                {
                    "client_id": client_id,
                    "given_name": given,
                    "family_name": family,
                    "date_of_birth": date(1981, 3, 2),
                    "email": f"{client_id}@example.test",
                    "phone": None,
                    "preferred_modality": "video",
                    "reminder_channels": ["email"],
                    "therapist_id": therapist_id,
                    "referral_source": "self",
                    "gp": None,
                    "nhs_number": None,
                },
            )
        ],
        RECEPTION,
    )


def discharge_client(settings, client_id: str, therapist_id: str, cancel_boosters=None):
    store = records_store(settings)
    stream = f"client-{client_id}"
    store.append(
        stream,
        store.stream_version(stream),
        [
            NewEvent(
                "ClientDischarged",
                {
                    "client_id": client_id,
                    "therapist_id": therapist_id,
                    "reason": "course completed",
                    "outcome_summary": "recovered",
                    "discharged_at": utcnow(),
                    **({} if cancel_boosters is None else {"cancel_boosters": cancel_boosters}),
                },
            )
        ],
        RECEPTION,
    )


def apply_records_directly(settings, projection=None) -> None:
    """Feed records' stored events to scheduling's client directory (or another of its
    projections) through the kernel's projection code, without the broker: for tests about
    booking rather than messaging."""
    store = records_store(settings)
    projection = ServiceContext("scheduling", settings).projection(projection or directory())
    docs = list(store.events.find().sort("position", 1))
    records = [Record("records-direct", 0, d["position"], message_from_document(d)) for d in docs]
    projection.apply(records, projection.active_generation())


@pytest.fixture
def therapist(client, auth_header):
    """Therapist t1 (video and face-to-face in Room 1), working Monday-Friday 09:00-17:00."""

    def make(therapist_id="t1", name="Ann Therapist", rooms=("Room 1",), exceptions=()):
        r = client.post(
            "/therapists",
            headers=auth_header("admin"),
            json={
                "therapist_id": therapist_id,
                "name": name,
                "email": f"{therapist_id}@rapport.test",
                "modalities": ["video", "face_to_face", "telephone"],
                "rooms": list(rooms),
            },
        )
        assert r.status_code == 201, r.json
        r = client.put(
            f"/therapists/{therapist_id}/availability",
            headers=auth_header("therapist", therapist_id=therapist_id),
            json={"weekly_hours": WORKING_WEEK, "exceptions": list(exceptions)},
        )
        assert r.status_code == 200, r.json
        return therapist_id

    return make
