"""The urgent lane rests on the risk alerts' own bell where chimes are heard (issue 14): a
risk answer wakes it at once however long its rest, and the planner's batches (bookings,
reminders, every other message) no longer wake it."""

from __future__ import annotations

import time
from dataclasses import replace

from services.notifications.application.config import NotifyConfig
from services.notifications.projections import projections
from services.notifications.workers.dispatcher import Dispatcher
from shared import chime
from shared.consumer import ProjectionRunner, projection_store

from .conftest import LEAD_EMAIL, wait


class CountingLane(Dispatcher):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.looks = 0

    def step(self, batch: int = 20, stop=None) -> int:
        self.looks += 1
        return super().step(batch, stop)


def test_a_risk_answer_wakes_the_resting_lane_and_a_booking_does_not(
    nsettings, feed, mail, book, workers, tmp_path, monkeypatch
):
    monkeypatch.setenv(chime.ENV, str(tmp_path / "wake"))
    monkeypatch.setenv("RAPPORT_CHANGE_STREAMS", "0")
    feed.therapist(email="dr.a@practice.test")
    feed.client()
    workers.start(*feed.relays(), *[ProjectionRunner(nsettings, p).run for p in projections()])
    therapists = projection_store(nsettings, projections()[0]).reader("therapists")
    wait(lambda: therapists.find_one({"_id": "t1"}), message="the therapist in the directory")
    config = replace(NotifyConfig.from_env(nsettings), idle_rest_seconds=120.0)
    lane = CountingLane(nsettings, config, name="urgent", urgent_only=True)
    workers.start(lane.run)
    wait(lambda: lane.looks >= 1, message="the lane's first look")
    time.sleep(1.0)  # it found nothing and rests: 120 s unless its bell rings

    looks = lane.looks
    feed.booked()  # the planner plans a confirmation and reminders: not the lane's bell
    wait(lambda: book.count_documents({"kind": "confirmation"}), message="the confirmation")
    time.sleep(3.0)
    assert lane.looks == looks, "a booking woke the urgent lane"

    asked = time.monotonic()
    feed.risk()
    wait(lambda: mail.to(LEAD_EMAIL) and mail.to("dr.a@practice.test"), message="the alerts")
    assert time.monotonic() - asked < 60, "the lane waited for its rest, not its bell"
    assert lane.looks > looks
