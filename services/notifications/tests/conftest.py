"""Service-tier fixtures: a real SMTP server (aiosmtpd), a fake SMS provider and a small
stand-in for measures' link endpoint, each on a free 127.0.0.1 port; other services' events
appended to their own stores and published by their real relays."""

from __future__ import annotations

import json
import secrets
import threading
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from services.notifications.app import create_app
from services.notifications.devmail import MailSink
from services.notifications.devsms import SmsSink
from services.notifications.workers.dispatcher import Dispatcher
from shared.auth import AuthError, verify_token
from shared.events import Actor, NewEvent, registry
from shared.eventstore import EventStore, Metadata
from shared.mongo import client as mongo_client
from shared.run import make_relay
from testkit.plugin import service_workers
from testkit.procs import free_port

LEAD_EMAIL = "lead@practice.test"


@pytest.fixture(autouse=True)
def no_default_quiet_hours(monkeypatch):
    # the planner reads the environment; tests run at any hour, so no practice-wide quiet hours
    monkeypatch.setenv("RAPPORT_QUIET_HOURS", "off")


@pytest.fixture
def mail():
    sink = MailSink(free_port()).start()
    yield sink
    sink.stop()


@pytest.fixture
def sms():
    sink = SmsSink(free_port()).start()
    yield sink
    sink.stop()


class MeasuresStandIn:
    """`POST /questionnaire-requests/{id}/link` as measures will answer it: a fresh link
    per call for a valid service token; 410 for a withdrawn request."""

    def __init__(self, secret: str):
        self.secret, self.withdrawn, self.issued = secret, set(), []
        self.port = free_port()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                parts = self.path.strip("/").split("/")
                if len(parts) != 3 or parts[0] != "questionnaire-requests" or parts[2] != "link":
                    return self._answer(404, {})
                try:
                    identity = verify_token(
                        stand_in.secret, self.headers.get("Authorization", "")[7:]
                    )
                except AuthError:
                    return self._answer(401, {})
                if identity.role != "service":
                    return self._answer(403, {})
                if parts[1] in stand_in.withdrawn:
                    return self._answer(410, {})
                url = f"https://forms.test/q/{secrets.token_urlsafe(16)}"
                stand_in.issued.append((parts[1], url))
                expires = datetime.now(UTC) + timedelta(days=2)
                self._answer(200, {"url": url, "expires_at": expires.isoformat()})

            def _answer(self, status, body):
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def measures(settings):
    stand_in = MeasuresStandIn(settings.token_secret)
    yield stand_in
    stand_in.close()


@pytest.fixture
def nsettings(settings, mail, sms, measures):
    """Settings for the notifications service under test: fast polling and retries."""
    return settings.with_(
        service_urls={**settings.service_urls, "measures": measures.url},
        extra={
            "notifications": {
                "smtp_port": mail.port,
                "sms_url": f"http://127.0.0.1:{sms.port}/messages",
                "lead_email": LEAD_EMAIL,
                "poll_seconds": 0.1,
                "backoff_seconds": 0.3,
                "max_attempts": 4,
                "smtp_timeout": 2.0,
                "lease_seconds": 30.0,
                "quiet_hours": "off",
                "portal_url": "https://portal.practice.test/",
            }
        },
    )


class Feed:
    """Appends other services' events to their own stores (their relays publish them)."""

    def __init__(self, settings):
        self.settings = settings
        self.stores = {  # each on its service's store (measures' is a store of its own)
            name: EventStore(
                mongo_client(settings.mongo_uri_of(name)), settings.database(name), registry
            )
            for name in ("scheduling", "records", "measures")
        }
        for store in self.stores.values():
            store.ensure_indexes()

    def relays(self):
        return [make_relay(self.settings, name).run for name in self.stores]

    def __call__(self, service: str, stream: str, type_: str, **data):
        meta = Metadata(actor=Actor("reception-user", "admin"), correlation_id=str(uuid.uuid4()))
        store = self.stores[service]
        return store.append(stream, None, [NewEvent(type_, data)], meta)[0]

    # the usual facts, with defaults
    def therapist(self, tid="t1", email="t1@practice.test"):
        self(
            "scheduling",
            f"therapist-{tid}",
            "TherapistRegistered",
            therapist_id=tid,
            name="Dr A",
            email=email,
            phone=None,
            modalities=["video"],
            rooms=["Room 1"],
        )

    def client(self, cid="c1", tid="t1", channels=("email", "sms"), email=None, phone=None):
        self(
            "records",
            f"client-{cid}",
            "ClientRegistered",
            client_id=cid,
            given_name="Emma",
            family_name="Example",
            date_of_birth="1981-04-01",
            email=email or f"{cid}@client.test",
            phone=phone or f"+4477009{abs(hash(cid)) % 100000:05d}",
            preferred_modality="video",
            reminder_channels=list(channels),
            therapist_id=tid,
            referral_source="self",
            gp=None,
            nhs_number=None,
        )

    def booked(self, sid="s1", cid="c1", tid="t1", starts=None, **extra):
        starts = starts or datetime.now(UTC) + timedelta(days=3)
        data = {
            "session_id": sid,
            "client_id": cid,
            "therapist_id": tid,
            "starts_at": starts,
            "ends_at": starts + timedelta(minutes=50),
            "kind": "treatment",
            "modality": "video",
            "room": None,
            "course_id": None,
            "number": None,
            "video_link": "https://meet.test/room-s1",
        }
        data.update(extra)
        return self("scheduling", f"session-{sid}", "SessionBooked", **data)

    def rescheduled(self, starts, moved, sid="s1", cid="c1", tid="t1", **extra):
        """scheduling's SessionRescheduled of `sid` from `starts` to `moved` (by video, the
        client asked, unless `extra` says otherwise)."""
        data = {
            "session_id": sid,
            "client_id": cid,
            "therapist_id": tid,
            "starts_at": moved,
            "ends_at": moved + timedelta(minutes=50),
            "previous_starts_at": starts,
            "modality": "video",
            "room": None,
            "reason": "client asked",
        }
        data.update(extra)
        return self("scheduling", f"session-{sid}", "SessionRescheduled", **data)

    def risk(self, aid="a1", cid="c1", tid="t1", instrument="PHQ-9", item=9, answer=2, at=None):
        """A risk answer (measures' RiskIndicated): PHQ-9 item 9 unless told otherwise."""
        return self(
            "measures",
            f"alert-{aid}",
            "RiskIndicated",
            alert_id=aid,
            client_id=cid,
            therapist_id=tid,
            response_id="r1",
            instrument=instrument,
            item=item,
            answer=answer,
            indicated_at=at or datetime.now(UTC),
        )


@pytest.fixture
def feed(settings):
    return Feed(settings)


@pytest.fixture
def api(nsettings):
    return create_app(nsettings).test_client()


@pytest.fixture
def book(nsettings):
    return mongo_client(nsettings.mongo_uri_of("notifications"))[
        nsettings.database("notifications")
    ]["messages"]


@pytest.fixture
def running_service(nsettings, feed, workers):
    """The notifications service's relay, planner and dispatcher, and the source relays."""
    workers.start(*feed.relays(), *service_workers(nsettings, "notifications"))
    return workers


def notification_events(settings, key: str) -> list:
    store = EventStore(
        mongo_client(settings.mongo_uri_of("notifications")),
        settings.database("notifications"),
        registry,
    )
    return [e.type for e in store.load(f"notification-{key}")]


__all__ = ["Dispatcher", "LEAD_EMAIL", "notification_events"]


def wait(check, timeout: float = 45.0, **kwargs):
    """`eventually`, patient enough for a shared two-core machine under load."""
    from testkit.plugin import eventually

    return eventually(check, timeout=timeout, **kwargs)
