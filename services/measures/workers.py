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
from functools import partial

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
        done = 0
        plans = self.plans.reader("plans")
        # each client's instruments read once a step: a course books sixteen sessions of one
        # client at once, and each plan read the client's instrument set again (issue 14)
        chosen: dict[str, tuple[str, ...]] = {}
        for plan in list(plans.find({"pending": True}).limit(50)):
            self._guard(partial(self._plan, chosen=chosen), plan)
            plans.update_one({"_id": plan["_id"], "rev": plan["rev"]}, {"$set": {"pending": False}})
            done += 1
        episodes = self.board.reader("episodes")
        for episode in list(episodes.find({"pending": True}).limit(50)):
            self._guard(self._outcome, episode)
            episodes.update_one(
                {"_id": episode["_id"], "rev": episode["rev"]}, {"$set": {"pending": False}}
            )
            done += 1
        return done

    @staticmethod
    def _guard(work, doc) -> None:
        try:
            work(doc)
        except DomainError as err:  # a rule refused it: nothing to retry
            log.error("reactor: %s refused: %s", doc["_id"], err.detail)
        except KeyDisposed:  # the client was disposed of: nothing of theirs may be written again
            log.info("reactor: %s skipped, its client has been disposed of", doc["_id"])

    def _plan(self, plan: dict, chosen: dict[str, tuple[str, ...]]) -> None:
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
            instruments=self._instruments(plan["client_id"], chosen),
            starts_at=plan["starts_at"],
            ends_at=plan["ends_at"],
            now=utcnow(),
            course_id=plan.get("course_id"),
            session_number=plan.get("number"),
        )
        self.application.request_questionnaire(command, meta)

    def _instruments(self, client_id: str, chosen: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
        if client_id not in chosen:
            chosen[client_id] = self.application.instruments_for(client_id)
        return chosen[client_id]

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
