"""The service's background loops.

When records discharges a client, their future sessions are cancelled by the practice
(architecture.md, "Typical flows"). The `discharges` projection queues the discharge; this
loop issues the cancellations. Booster sessions are the client's choice: they are cancelled
only when staff said so on the discharge (`cancel_boosters`; records refuses a discharge
with boosters booked until they do), never silently. It is idempotent: a session already
cancelled is skipped (the decider refuses a second cancellation and claims are gone), so
running twice, or two workers at once, never cancels twice."""

from __future__ import annotations

import logging
import threading

from shared.config import Settings
from shared.crypto import KeyDisposed
from shared.domain import DomainError
from shared.events import Actor, utcnow
from shared.eventstore import Metadata
from shared.projections import ProjectionStore
from shared.wakeup import IDLE_REST, work_loop

from .application import Application
from .domain.session import BOOKED, CancelSession
from .projections import Discharges

log = logging.getLogger(__name__)
REASON = "discharged"


class DischargeCanceller:
    def __init__(
        self,
        scheduling: Application,
        queue: ProjectionStore,
        *,
        interval: float = 0.5,
        idle_rest: float = IDLE_REST,
    ):
        self.scheduling, self.queue, self.interval, self.idle_rest = (
            scheduling,
            queue,
            interval,
            idle_rest,
        )

    def step(self) -> int:
        """Work through every pending discharge; returns the sessions cancelled."""
        cancelled = 0
        for job in list(self.queue.reader("discharges").find({"status": "pending"}).limit(50)):
            outcome = "cancelled"
            try:
                cancelled += self._cancel_future(
                    job["client_id"], job["_id"], boosters=bool(job.get("cancel_boosters"))
                )
            except KeyDisposed:
                # the record was disposed of (retention) before the discharge was worked
                # through: nothing of theirs can be written, and nothing needs cancelling
                log.info(
                    "discharge of %s: the client was disposed of; nothing to cancel",
                    job["client_id"],
                )
                outcome = "client disposed of"
            self.queue.reader("discharges").update_one(
                {"_id": job["_id"]},
                {"$set": {"status": "done", "outcome": outcome, "done_at": utcnow()}},
            )
        return cancelled

    def _cancel_future(self, client_id: str, cause: str | None, *, boosters: bool = False) -> int:
        meta = Metadata(
            actor=Actor.system("scheduling.discharge"),
            correlation_id=f"discharge-{client_id}",
            causation_id=cause,
        )
        now = self.scheduling.clock()
        done = 0
        for session_id in self.scheduling.future_sessions(client_id):
            loaded = self.scheduling.session(session_id)
            state = loaded[0]
            if state.status != BOOKED or state.facts["starts_at"] <= now:
                continue  # already cancelled, or under way: a therapist decides those
            if state.facts["kind"] == "booster" and not boosters:
                log.info("discharge of %s: booster %s kept (not confirmed)", client_id, session_id)
                continue
            try:
                # the state just read serves the first attempt: the stream is read once
                self.scheduling.run_session(
                    session_id,
                    lambda s: CancelSession("practice", REASON, self.scheduling.clock()),
                    meta,
                    loaded=loaded,
                )
                done += 1
            except DomainError as err:  # a concurrent worker got there first
                log.info(
                    "discharge of %s: session %s not cancelled: %s", client_id, session_id, err
                )
        return done

    def run(self, stop: threading.Event) -> None:
        """Cancel what discharges left; idle, rest until a scheduling projection applies
        something (a discharge reaches the queue: shared.wakeup) or `idle_rest` passes."""
        # a failed discharge stays pending and is tried again on the next round
        work_loop(
            self.scheduling.store,
            self.step,
            stop,
            name="discharge canceller",
            interval=self.interval,
            idle_rest=self.idle_rest,
            again_when_busy=False,
        )


def make_canceller(settings: Settings, clock=utcnow) -> DischargeCanceller:
    from shared.web import ServiceContext

    from .application import claims
    from .projections import directory

    ctx = ServiceContext("scheduling", settings)
    claims.ensure_indexes(ctx.db[claims.COLLECTION])
    scheduling = Application(ctx.store, ctx.projection(directory()), clock=clock)
    return DischargeCanceller(scheduling, ctx.projection(Discharges()))
