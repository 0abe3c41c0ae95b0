"""The service's background loops.

`CourseCompleter`: when session 16 of a course is attended (scheduling's SessionAttended,
queued by the `course_ends` projection), the course is completed (`CourseCompleted`, ended
by the final session; the therapist adds the outcome). Idempotent: the record refuses a
session that already completed a course, so a second run or a rebuilt queue changes
nothing."""

from __future__ import annotations

import logging
import threading

from shared.config import Settings
from shared.crypto import KeyDisposed
from shared.domain import DomainError
from shared.events import Actor, utcnow
from shared.eventstore import Metadata
from shared.projections import ProjectionStore
from shared.wakeup import work_loop

from .application import Application

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


def make_completer(settings: Settings) -> CourseCompleter:
    from shared.web import ServiceContext

    from .projections import ClientSummaries, CourseEnds

    ctx = ServiceContext("records", settings)
    records = Application(ctx.store, ctx.projection(ClientSummaries()))
    return CourseCompleter(records, ctx.projection(CourseEnds()))
