"""The service's background loops.

`EnquirySweeper`: an enquiry that never became a client is disposed of when its retention
ends, a year after its last step (domain/enquiry.py, RETENTION), without anyone asking.

`CourseCompleter`: when session 16 of a course is attended (scheduling's SessionAttended,
queued by the `course_ends` projection), the course is completed (`CourseCompleted`, ended
by the final session; the therapist adds the outcome). Idempotent: the record refuses a
session that already completed a course, so a second run or a rebuilt queue changes
nothing."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

from shared.config import Settings
from shared.crypto import KeyDisposed, KeyStore, cipher_for
from shared.domain import DomainError
from shared.events import Actor, utcnow
from shared.eventstore import Metadata
from shared.projections import ProjectionStore
from shared.wakeup import work_loop

from .application import Application
from .domain.enquiry import RETENTION

log = logging.getLogger(__name__)


class CourseCompleter:
    def __init__(self, records: Application, queue: ProjectionStore, *, interval: float = 0.5):
        self.records, self.queue, self.interval = records, queue, interval

    def step(self) -> int:
        """Complete the courses whose final session was attended; returns how many."""
        done = 0
        jobs = self.queue.reader("course_ends")
        for job in list(jobs.find({"status": "pending"}).limit(50)):
            if not self.records.attendance_known(job["_id"]):
                continue  # the count of sessions attended would miss the final one: later
            meta = Metadata(
                actor=Actor.system("records.course"),
                correlation_id=f"course-end-{job['_id']}",
                causation_id=job["_id"],
            )
            try:
                self.records.complete_at_final_session(
                    job["client_id"], job["_id"], job["attended_at"], meta
                )
                outcome, done = "completed", done + 1
            except (DomainError, KeyDisposed) as err:
                # already completed (by the therapist, or this job before), discharged,
                # disposed of, or not registered here: nothing to record
                outcome = f"skipped: {err}"
            jobs.update_one(
                {"_id": job["_id"]},
                {"$set": {"status": "done", "outcome": outcome, "done_at": utcnow()}},
            )
        return done

    def run(self, stop: threading.Event) -> None:
        # a failed job stays pending and is tried again on the next round
        work_loop(
            self.records.store,
            self.step,
            stop,
            name="course completer",
            interval=self.interval,
            again_when_busy=False,
        )


class EnquirySweeper:
    """Disposes of the enquiries whose retention has ended. The inbox projection only names
    candidates: the enquiry's own stream decides (a converted one, or one that moved since,
    is refused and left alone), so a stale or rebuilt inbox can never dispose early."""

    OPEN = ("received", "offered", "waiting", "declined")  # never registered, not disposed

    def __init__(
        self,
        records: Application,
        inbox: ProjectionStore,
        keys: KeyStore,
        *,
        interval: float = 3600.0,
        clock: Callable[[], datetime] = utcnow,
    ):
        self.records, self.inbox, self.keys = records, inbox, keys
        self.interval, self.clock = interval, clock
        self._next_round = 0.0

    BATCH = 50

    def step(self) -> int:
        """Dispose of up to BATCH enquiries past retention; returns how many. The projections
        bell wakes the loop on every apply, but retention ends with time, not with a write:
        a round runs once per `interval` (or at once again while a full batch was found)."""
        if time.monotonic() < self._next_round:
            return 0
        now = self.clock()
        cutoff = now - RETENTION
        due = self.inbox.reader("enquiries").find(
            {"status": {"$in": list(self.OPEN)}, "last_step_at": {"$lte": cutoff}}, {"_id": 1}
        )
        found = list(due.limit(self.BATCH))
        done = 0
        for doc in found:
            meta = Metadata(
                actor=Actor.system("records.retention"),
                correlation_id=f"enquiry-retention-{doc['_id']}",
            )
            try:
                self.records.dispose_enquiry(doc["_id"], now, meta, self.keys)
                done += 1
            except DomainError as err:  # kept (moved since, or registered): nothing to do
                log.info("enquiry %s kept: %s", doc["_id"], err)
        if done < self.BATCH:  # a full batch may have left more: the loop runs again at once
            self._next_round = time.monotonic() + self.interval
        return done

    def run(self, stop: threading.Event) -> None:
        work_loop(
            self.records.store,
            self.step,
            stop,
            name="enquiry sweeper",
            interval=self.interval,
            idle_rest=self.interval,
        )


def make_sweeper(settings: Settings) -> EnquirySweeper:
    """Once an hour unless `Settings.extra["records"]["enquiry_sweep_seconds"]` says (tests)."""
    from shared.web import ServiceContext

    from .projections import ClientSummaries, EnquiryInbox

    ctx = ServiceContext("records", settings)
    records = Application(ctx.store, ctx.projection(ClientSummaries()))
    every = float((settings.extra or {}).get("records", {}).get("enquiry_sweep_seconds", 3600))
    return EnquirySweeper(
        records, ctx.projection(EnquiryInbox()), cipher_for(settings).keys, interval=every
    )


def make_completer(settings: Settings) -> CourseCompleter:
    from shared.web import ServiceContext

    from .projections import ClientSummaries, CourseEnds

    ctx = ServiceContext("records", settings)
    records = Application(ctx.store, ctx.projection(ClientSummaries()))
    return CourseCompleter(records, ctx.projection(CourseEnds()))
