"""The notifications dispatcher SIGKILLed in the middle of sending risk alerts and restarted:
each alert email reaches the SMTP server once, and each notification records one
NotificationSent. The dispatcher's documented window (SMTP accepted, "sent" not yet
recorded) may resend the messages in flight at the kill, with the same Message-ID: those it
had claimed and not recorded, at most one batch (it sends a batch side by side and records
its "sent" together: services/notifications/README.md, exactly once)."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import UTC, datetime

import pytest

from services.notifications.devmail import MailSink
from services.notifications.domain.deciders import message_id
from services.notifications.workers.dispatcher import Dispatcher
from shared.events import NewEvent
from shared.mongo import client as mongo_client
from shared.run import make_relay
from shared.web import ServiceContext
from testkit.faults import RECEPTION, release_dead_transactions
from testkit.plugin import eventually
from testkit.procs import PYTHON, Proc, free_port, settings_env, worker

from .conftest import LOCAL_ONLY

pytestmark = pytest.mark.slow
ALERTS = 10
LEAD = "lead@faults.test"


class SlowSink(MailSink):
    """An SMTP server that takes a moment per message, so a kill lands mid-send."""

    def received(self, recipients, message, raw) -> None:
        time.sleep(0.15)
        super().received(recipients, message, raw)


def feed(settings) -> None:
    ServiceContext("scheduling", settings).store.append(
        "therapist-t1",
        0,
        [
            NewEvent(
                "TherapistRegistered",
                {
                    "therapist_id": "t1",
                    "name": "Dr A",
                    "email": "t1@faults.test",
                    "phone": None,
                    "modalities": ["video"],
                    "rooms": [],
                },
            )
        ],
        RECEPTION,
    )
    measures = ServiceContext("measures", settings).store
    now = datetime.now(UTC)
    for i in range(ALERTS):
        measures.append(
            f"alert-a{i}",
            0,
            [
                NewEvent(
                    "RiskIndicated",
                    {
                        "alert_id": f"a{i}",
                        "client_id": f"c{i}",
                        "therapist_id": "t1",
                        "response_id": f"r{i}",
                        "instrument": "PHQ-9",
                        "item": 9,
                        "answer": 1,
                        "indicated_at": now,
                    },
                )
            ],
            RECEPTION,
        )
    for service in ("scheduling", "measures"):
        make_relay(settings, service).drain(timeout=120)


class Planned:
    """Risk alerts planned into the notifications book by its planner (a process), a slow
    SMTP sink, and dispatchers as processes of their own (`dispatcher(name)`)."""

    def __init__(self, settings, procs):
        self.settings, self.procs = settings, procs
        self.sink = SlowSink(free_port()).start()
        self.env = {
            "RAPPORT_SMTP_PORT": str(self.sink.port),
            "RAPPORT_QUIET_HOURS": "off",
            "RAPPORT_CLINICAL_LEAD_EMAIL": LEAD,
            "FAULTS_NOTIFY": json.dumps(
                {
                    "smtp_port": self.sink.port,
                    "lead_email": LEAD,
                    "quiet_hours": "off",
                    "poll_seconds": 0.1,
                    "lease_seconds": 5,
                }
            ),
        }
        database = settings.database("notifications")
        self.book = mongo_client(settings.mongo_uri_of("notifications"))[database]["messages"]
        try:
            self._plan()
        except BaseException:
            self.sink.stop()
            raise

    def _plan(self) -> None:
        settings, procs = self.settings, self.procs
        feed(settings)
        procs.add(
            worker(
                settings,
                "consume",
                "notifications",
                "--projection",
                "planner",
                "--projection",
                "risk_alerts",  # risk alerts are planned by a projection of their own
                log_dir=procs.log_dir,
                env=self.env,
            )
        )
        eventually(
            lambda: self.book.count_documents({}) == ALERTS * 4,
            timeout=120,
            message="the planner booked two emails and two inbox entries per alert",
        )

    def dispatcher(self, name: str) -> Proc:
        proc = Proc(
            name,
            [PYTHON, "-m", "tests.faults.dispatcher_proc"],
            settings_env(self.settings, **self.env),
            self.procs.log_dir,
        )
        return self.procs.add(proc)

    def in_flight(self) -> set[str]:
        """Claimed and not recorded sent: the only messages that may go twice."""
        return {message_id(d["_id"]) for d in self.book.find({"status": "sending"}, {"_id": 1})}

    def all_sent(self) -> None:
        eventually(
            lambda: self.book.count_documents({"status": {"$ne": "sent"}}) == 0,
            timeout=180,
            message="every message recorded as sent",
        )
        time.sleep(2.0)  # a duplicate would arrive now

    def each_once(self, in_flight: set[str]) -> None:
        ids = Counter(m["Message-ID"] for _, m in self.sink.messages)
        assert len(ids) == ALERTS * 2, "every alert email reached the SMTP server"
        twice = {mid for mid, n in ids.items() if n > 1}
        assert max(ids.values()) <= 2, f"a message went more than twice: {ids}"
        assert twice <= in_flight, f"only messages in flight at the kill may go twice: {ids}"
        assert len(in_flight) <= Dispatcher.BATCH, in_flight
        to_lead = self.sink.to(LEAD)
        assert len(to_lead) >= ALERTS and len({m["Message-ID"] for m in to_lead}) == ALERTS
        store = ServiceContext("notifications", self.settings).store
        sent = Counter(
            d["stream_id"]
            for d in store.events.find({"type": "NotificationSent"}, {"stream_id": 1})
        )
        assert len(sent) == ALERTS * 4 and set(sent.values()) == {1}, "one NotificationSent each"


def test_dispatcher_killed_mid_send_and_restarted_sends_each_message_once(settings, procs):
    planned = Planned(settings, procs)
    try:
        first = planned.dispatcher("dispatcher-1")
        eventually(lambda: len(planned.sink.messages) >= 4, timeout=120, message="some mail went")
        first.kill()
        assert len(planned.sink.messages) < ALERTS * 2, "killed mid-way"
        in_flight = planned.in_flight()
        release_dead_transactions(settings)
        planned.dispatcher("dispatcher-2")
        planned.all_sent()
    finally:
        planned.sink.stop()
    planned.each_once(in_flight)


@LOCAL_ONLY
def test_notifications_own_store_killed_mid_send_and_restarted_sends_each_message_once(
    settings, procs, servers_restored
):
    """Notifications' database on its own local store (deploy/local/infra.py), SIGKILLed
    while the dispatcher sends risk alerts, and started again: the dispatcher keeps going
    once it answers, every alert email reaches the SMTP server, only the messages claimed and
    not recorded at the kill may go twice (the same window as a dispatcher's kill, with the
    same Message-ID), and each notification records one NotificationSent."""
    assert settings.mongo_uri_of("notifications") != settings.mongo_uri, "its own store"
    local = servers_restored
    planned = Planned(settings, procs)
    try:
        planned.dispatcher("dispatcher")
        eventually(lambda: len(planned.sink.messages) >= 4, timeout=120, message="some mail went")
        local.kill("store-notifications")  # SIGKILL, mid-send
        assert len(planned.sink.messages) < ALERTS * 2, "killed mid-way"
        time.sleep(2)
        local.start("store-notifications")
        in_flight = planned.in_flight()  # claimed before the kill: durable (--sync-on-commit)
        planned.all_sent()
    finally:
        planned.sink.stop()
    planned.each_once(in_flight)
