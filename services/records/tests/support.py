"""Builders for the service tests: the seed's two clients (clinical.md) and scheduling's
events, published the way scheduling publishes them (its own store + outbox relay)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from shared.events import Actor, NewEvent, registry
from shared.eventstore import EventStore, Metadata
from shared.mongo import client as mongo_client
from shared.outbox import OutboxRelay

T1, T2 = "therapist-1", "therapist-2"

EMMA = {
    "given_name": "Emma",
    "family_name": "Clarke",
    "date_of_birth": "1981-05-14",
    "email": "emma.clarke@example.org",
    "phone": "07700 900461",
    "preferred_modality": "video",
    "reminder_channels": ["email", "sms"],
    "therapist_id": T1,
    "referral_source": "GP",
    "gp": {"name": "Dr Patel", "practice": "Vinters Park Surgery, Maidstone"},
    "nhs_number": "943 476 5919",
}
JOHN = {
    "given_name": "John",
    "family_name": "Hughes",
    "date_of_birth": "1958-02-03",
    "email": "john.hughes@example.org",
    "phone": None,
    "preferred_modality": "face_to_face",
    "reminder_channels": ["email"],
    "therapist_id": T2,
    "referral_source": "self (enquiry)",
}
EMMA_ASSESSMENT = {
    "presenting_difficulties": "Low mood since starting a new job as a care assistant; "
    "overeating, poor sleep, irritability",
    "conditions": ["depression"],
    "goals": ["feel like myself again", "more help at home"],
    "risk_summary": "No thoughts of self-harm; protective factors: her three children",
}
EMMA_FORMULATION = {
    "problem_areas": ["role_dispute"],
    "formulation": "Depression linked to a non-reciprocal role expectation with her husband "
    "since the new job",
    "inventory": [
        {
            "name": "Mark",
            "relationship": "husband",
            "closeness": 1,
            "good": "loyal",
            "hard": "expects her to run the house",
            "unilateral_partner": True,
        },
        {
            "name": "Sue",
            "relationship": "sister",
            "closeness": 2,
            "good": "listens",
            "hard": "lives far away",
            "unilateral_partner": False,
        },
    ],
    "goals": ["negotiate the housework", "say what she needs without a row"],
}
JOHN_FORMULATION = {
    "problem_areas": ["grief"],
    "formulation": "Complicated bereavement after his wife's death five months ago",
    "inventory": [
        {
            "name": "Margaret",
            "relationship": "late wife",
            "closeness": 1,
            "good": "42 years together",
            "hard": "the long illness",
            "unilateral_partner": False,
        }
    ],
    "goals": ["take up tennis again", "see friends weekly"],
}


class Scheduling:
    """Publishes scheduling events to the test's scheduling topic."""

    def __init__(self, settings):
        self.store = EventStore(
            mongo_client(settings.mongo_uri), settings.database("scheduling"), registry
        )
        self.store.ensure_indexes()
        self.relay = OutboxRelay(
            self.store,
            settings.kafka_bootstrap,
            settings.topic("scheduling"),
            partitions=settings.topic_partitions,
        )
        self.meta = Metadata(Actor("reception-user", "admin"), "corr-scheduling")
        self.start = datetime.now(UTC).replace(microsecond=0) - timedelta(weeks=6)

    def facts(
        self,
        client_id: str,
        therapist_id: str,
        number: int,
        session_id: str | None = None,
        start: datetime | None = None,
    ) -> dict:
        starts = start or self.start + timedelta(weeks=number - 1)
        return {
            "session_id": session_id or f"s-{client_id[:8]}-{number}",
            "client_id": client_id,
            "therapist_id": therapist_id,
            "starts_at": starts,
            "ends_at": starts + timedelta(minutes=50),
        }

    def book(self, facts: dict, number: int, kind: str = "treatment") -> None:
        self._append(
            facts["session_id"],
            NewEvent(
                "SessionBooked",
                {
                    **facts,
                    "kind": kind,
                    "modality": "video",
                    "room": None,
                    "course_id": None,
                    "number": number,
                    "video_link": None,
                },
            ),
        )

    def attend(self, facts: dict, kind: str = "treatment") -> None:
        self._append(facts["session_id"], NewEvent("SessionAttended", {**facts, "kind": kind}))

    def _append(self, stream_id: str, event: NewEvent) -> None:
        self.store.append(stream_id, self.store.stream_version(stream_id), [event], self.meta)

    def publish(self) -> None:
        self.relay.drain()


def new_session_id() -> str:
    return f"s-{uuid.uuid4().hex[:12]}"


def known_session(
    settings, client_id: str, therapist_id: str = T1, session_id: str | None = None
) -> str:
    """A session of the client as records knows it once scheduling's SessionBooked has been
    consumed, applied straight to records' projection (the real handler on the real store,
    no broker) for tests whose subject is not the consumer. Returns the session id."""
    from services.records.projections import ClientSummaries
    from shared.consumer import projection_store
    from shared.events import Event, new_id, utcnow
    from shared.projections import Record

    sid = session_id or new_session_id()
    now = utcnow()
    event = Event(
        event_id=new_id(),
        type="SessionBooked",
        schema_version=registry.current_version("SessionBooked"),
        stream_id=sid,
        stream_version=1,
        occurred_at=now,
        recorded_at=now,
        actor=Actor("reception-user", "admin"),
        correlation_id="test-session",
        causation_id=None,
        data={
            "session_id": sid,
            "client_id": client_id,
            "therapist_id": therapist_id,
            "starts_at": now,
            "ends_at": now + timedelta(minutes=50),
            "kind": "treatment",
            "modality": "video",
            "room": None,
            "course_id": None,
            "number": 1,
            "video_link": None,
        },
    )
    store = projection_store(settings, ClientSummaries())
    store.apply(
        [Record(settings.topic("scheduling"), 0, -1, registry.to_message(event))],
        store.active_generation(),
        track_offsets=False,
    )
    return sid
