"""The measures service's own loop: it turns read-model changes into events.

- a pending plan (a session booked, moved or cancelled) becomes `QuestionnaireRequested`
  (request id derived from the session id) or `QuestionnaireWithdrawn`;
- a pending episode (its outcome changed) becomes `OutcomeUpdated`.
Each append goes through a decider with the expected stream version, so doing the same work
twice (a crash before the flag was cleared, a redelivered event, a rebuilt projection) adds
nothing. The flag is cleared only if the document did not change meanwhile (`rev`)."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from pymongo import UpdateOne

from shared.consumer import projection_store
from shared.crypto import KeyDisposed, cipher_for
from shared.domain import DomainError
from shared.events import Actor, registry, utcnow
from shared.eventstore import EventStore, Metadata
from shared.mongo import client as mongo_client
from shared.wakeup import IDLE_REST, work_loop

from . import domain
from .application import Application
from .projections import MeasuresBoard, QuestionnairePlans

log = logging.getLogger(__name__)
ACTOR = Actor.system("measures-reactor")
# the requests and outcomes of one step decided side by side, so that their appends wait
# together and go in a few transactions (shared.eventstore: `_AppendLock.together`), not one
# each: at the flows bench's pace (fifty bookings a second) the reactor's appends, one by one,
# held the measures append lock that a client's completion and risk answer wait for (issue 14)
REACTOR_THREADS = 8


class Reactor:
    def __init__(self, settings, interval: float = 0.2, idle_rest: float = IDLE_REST):
        self.settings, self.interval, self.idle_rest = settings, interval, idle_rest
        self.store = EventStore(
            mongo_client(settings.mongo_uri_of("measures")),
            settings.database("measures"),
            registry,
            cipher=cipher_for(settings),
        )
        self.application = Application(self.store)
        self.plans = projection_store(settings, QuestionnairePlans())
        self.board = projection_store(settings, MeasuresBoard())
        self._pool: ThreadPoolExecutor | None = None

    def run(self, stop: threading.Event) -> None:
        """Act on pending plans and outcomes; idle, rest until a measures projection applies
        something (shared.wakeup) or `idle_rest` passes (`interval` without change streams)."""
        self.store.ensure_indexes()
        work_loop(
            self.store,
            self.step,
            stop,
            name="measures reactor",
            interval=self.interval,
            idle_rest=self.idle_rest,
        )

    def step(self) -> int:
        plans = self.plans.reader("plans")
        episodes = self.board.reader("episodes")
        found = [(plans, self._plan, p) for p in plans.find({"pending": True}).limit(50)]
        found += [(episodes, self._outcome, e) for e in episodes.find({"pending": True}).limit(50)]
        if not found:
            return 0
        if self._pool is None:
            self._pool = ThreadPoolExecutor(REACTOR_THREADS, thread_name_prefix="reactor")
        futures = [self._pool.submit(self._guard, work, doc) for _, work, doc in found]
        failed: BaseException | None = None
        cleared: dict[str, tuple] = {}  # the flags of the work done, if the document is unchanged
        for (reader, _, doc), future in zip(found, futures, strict=True):
            error = future.exception()
            if error is not None:
                failed = failed or error  # its flag stays: the next step tries it again
                continue
            _, updates = cleared.setdefault(reader.full_name, (reader, []))
            updates.append(
                UpdateOne({"_id": doc["_id"], "rev": doc["rev"]}, {"$set": {"pending": False}})
            )
        for reader, updates in cleared.values():
            reader.bulk_write(updates, ordered=False)
        if failed is not None:
            raise failed
        return len(found)

    @staticmethod
    def _guard(work, doc) -> None:
        try:
            work(doc)
        except DomainError as err:  # a rule refused it: nothing to retry
            log.error("reactor: %s refused: %s", doc["_id"], err.detail)
        except KeyDisposed:  # the client was disposed of: nothing of theirs may be written again
            log.info("reactor: %s skipped, its client has been disposed of", doc["_id"])

    def _plan(self, plan: dict) -> None:
        request_id = domain.request_id_for(plan["_id"])
        meta = Metadata(
            ACTOR, correlation_id=f"session:{plan['_id']}", causation_id=plan.get("last_event_id")
        )
        if plan["status"] == "cancelled":
            self.application.withdraw_questionnaire(
                request_id, domain.WithdrawQuestionnaire("session cancelled"), meta
            )
            return
        command = domain.RequestQuestionnaire(
            request_id=request_id,
            client_id=plan["client_id"],
            therapist_id=plan["therapist_id"],
            session_id=plan["_id"],
            instruments=self.application.instruments_for(plan["client_id"]),
            starts_at=plan["starts_at"],
            ends_at=plan["ends_at"],
            now=utcnow(),
            course_id=plan.get("course_id"),
            session_number=plan.get("number"),
        )
        self.application.request_questionnaire(command, meta)

    def _outcome(self, episode: dict) -> None:
        o = episode["outcome"]
        data = {
            "client_id": episode["client_id"],
            "therapist_id": episode["therapist_id"],
            "episode_id": episode["_id"],
            **o,
            "first_measured_at": episode.get("first_measured_at"),
            "last_measured_at": episode.get("last_measured_at"),
        }
        meta = Metadata(ACTOR, correlation_id=f"episode:{episode['_id']}")
        self.application.publish_outcome(episode["_id"], domain.PublishOutcome(data), meta)


def workers(settings) -> list:
    return [Reactor(settings).run]
