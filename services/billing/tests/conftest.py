"""Fixtures for billing's service tests: the app on the real local store with a clock the
test sets, clients registered as records does it, and the diary written as scheduling does
it (scheduling's events in scheduling's own store, published by its relay)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.billing.app import create_app
from shared.events import Actor, NewEvent
from shared.eventstore import Metadata
from shared.run import make_relay
from shared.web import ServiceContext
from testkit.plugin import eventually, service_workers

STAFF = Metadata(actor=Actor("reception-user", "admin"), correlation_id="test")
THERAPIST = "t1"


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock():
    return Clock(datetime(2026, 2, 16, 9, tzinfo=UTC))


@pytest.fixture
def client(settings, clock):
    return create_app(settings, clock=clock).test_client()


def register_client(settings, client_id: str, given="Emma", family="Stone"):
    ServiceContext("records", settings).store.append(
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
                    "therapist_id": THERAPIST,
                    "referral_source": "self",
                    "gp": None,
                    "nhs_number": None,
                },
            )
        ],
        STAFF,
    )


class Diary:
    """Scheduling's events for one client's sessions, written to scheduling's store."""

    def __init__(self, settings, client_id: str):
        self.store = ServiceContext("scheduling", settings).store
        self.client_id = client_id

    def facts(self, session_id: str, starts_at: datetime) -> dict:
        return {
            "session_id": session_id,
            "client_id": self.client_id,
            "therapist_id": THERAPIST,
            "starts_at": starts_at,
            "ends_at": starts_at + timedelta(minutes=50),
        }

    def _append(self, session_id: str, event: NewEvent) -> None:
        stream = f"session-{session_id}"
        self.store.append(stream, self.store.stream_version(stream), [event], STAFF)

    def book(self, session_id, starts_at, kind="treatment", modality="video", number=None):
        data = {
            **self.facts(session_id, starts_at),
            "kind": kind,
            "modality": modality,
            "room": None,
            "course_id": "course-1",
            "number": number,
            "video_link": None,
        }
        self._append(session_id, NewEvent("SessionBooked", data))

    def attend(self, session_id, starts_at, kind="treatment"):
        data = {**self.facts(session_id, starts_at), "kind": kind}
        self._append(session_id, NewEvent("SessionAttended", data, occurred_at=starts_at))

    def miss(self, session_id, starts_at, kind="treatment"):
        data = {**self.facts(session_id, starts_at), "kind": kind}
        self._append(session_id, NewEvent("SessionMissed", data, occurred_at=starts_at))

    def cancel(self, session_id, starts_at, at: datetime, by="client"):
        data = {
            **self.facts(session_id, starts_at),
            "by": by,
            "reason": "unwell",
            "late": starts_at - at < timedelta(hours=24),
        }
        self._append(session_id, NewEvent("SessionCancelled", data, occurred_at=at))

    def course(self, first: datetime, count=16, late=(), dna=()) -> list[str]:
        """A weekly course: sessions in `late` cancelled by the client 3 hours before, those
        in `dna` not attended, the others attended."""
        ids = []
        for n in range(1, count + 1):
            sid, start = f"{self.client_id}-s{n}", first + timedelta(weeks=n - 1)
            self.book(sid, start, number=n)
            if n in late:
                self.cancel(sid, start, start - timedelta(hours=3))
            elif n in dna:
                self.miss(sid, start)
            else:
                self.attend(sid, start)
            ids.append(sid)
        return ids


@pytest.fixture
def running(settings, workers):
    """Scheduling's and records' relays, and billing's relay, projections and charge worker."""
    workers.start(
        make_relay(settings, "scheduling").run,
        make_relay(settings, "records").run,
        *service_workers(settings, "billing"),
    )
    return workers


def fees_body(effective_from="2026-01-01", treatment=9000, **extra):
    return {
        "effective_from": effective_from,
        "currency": "GBP",
        "prices": [
            {"kind": "assessment", "amount": 12000},
            {"kind": "treatment", "amount": treatment},
            {"kind": "booster", "amount": 8000},
        ],
        "notice_hours": 24,
        "late_cancellation": {"charge": "full_fee"},
        "did_not_attend": {"charge": "fixed", "amount": 4500},
        **extra,
    }


def wait_for_client(client, headers, client_id):
    eventually(
        lambda: client.get(f"/clients/{client_id}/balance", headers=headers).status_code == 200,
        message=f"client {client_id} in billing's directory",
    )


def charges_of(client, headers, client_id, count):
    return eventually(
        lambda: (lambda r: r.json["charges"] if len(r.json.get("charges", [])) >= count else None)(
            client.get(f"/clients/{client_id}/charges", headers=headers)
        ),
        timeout=60,
        message=f"{count} charges for {client_id}",
    )
