"""The service's background loops.

`CourseCompleter`: when session 16 of a course is attended (scheduling's SessionAttended,
queued by the `course_ends` projection), the course is completed (`CourseCompleted`, ended
by the final session; the therapist adds the outcome). Idempotent: the record refuses a
session that already completed a course, so a second run or a rebuilt queue changes
nothing."""

from __future__ import annotations

import logging
import threading

from pymongo.errors import PyMongoError

from shared.config import Settings
from shared.crypto import KeyDisposed
from shared.domain import DomainError
from shared.events import Actor, utcnow
from shared.eventstore import Metadata
from shared.projections import ProjectionStore
from shared.wakeup import projections_bell

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
        store = self.records.store
        bell = projections_bell(store.mongo, store.db.name, name="course completer")
        try:
            while not stop.is_set():
                ticket = bell.ticket()
                try:
                    self.step()
                except PyMongoError as err:
                    log.warning("course completer: store unavailable (%s)", err)
                except Exception:  # a bug must not stop the loop: the job stays pending
                    log.exception("course completer: a job failed; retrying")
                bell.wait(ticket, 2.0 if bell.watching else self.interval, stop)
        finally:
            bell.close()


def make_completer(settings: Settings) -> CourseCompleter:
    from shared.web import ServiceContext

    from .projections import ClientSummaries, CourseEnds

    ctx = ServiceContext("records", settings)
    records = Application(ctx.store, ctx.projection(ClientSummaries()))
    return CourseCompleter(records, ctx.projection(CourseEnds()))
