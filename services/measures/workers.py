"""The measures service's own loop: it turns read-model changes into events.

- a pending plan (a session booked, moved or cancelled) becomes `QuestionnaireRequested`
  (request id derived from the session id) or `QuestionnaireWithdrawn`;
- a pending episode (its outcome changed) becomes `OutcomeUpdated`.
What one step finds is appended in one transaction (shared.application.run_together). Each
append goes through a decider with the expected stream version, so doing the same work
twice (a crash before the flag was cleared, a redelivered event, a rebuilt projection) adds
nothing. The flag is cleared only if the document did not change meanwhile (`rev`)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from functools import partial

from pymongo import UpdateOne

from shared.application import Command
from shared.consumer import projection_store
from shared.crypto import KeyDisposed, cipher_for
from shared.domain import DomainError
from shared.events import Actor, registry, utcnow
from shared.eventstore import ConcurrencyError, EventStore, Metadata
from shared.mongo import client as mongo_client
from shared.mongo import write_together
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
        plans = self.plans.reader("plans")
        pending = list(plans.find({"pending": True}).limit(50))
        if pending:
            # each client's instrument set read once a step, all in one query: a course books
            # sixteen sessions of one client at once (issue 14)
            chosen = self.application.instruments_for_all(
                {p["client_id"] for p in pending if p["status"] != "cancelled"}
            )
            self._together(pending, partial(self._plan, chosen=chosen))
        episodes = self.board.reader("episodes")
        changed = list(episodes.find({"pending": True}).limit(50))
        self._together(changed, self._outcome)
        for collection, docs in ((plans, pending), (episodes, changed)):
            if docs:  # cleared only where the document did not change meanwhile (`rev`)
                write_together(
                    collection,
                    [
                        UpdateOne({"_id": d["_id"], "rev": d["rev"]}, {"$set": {"pending": False}})
                        for d in docs
                    ],
                )
        return len(pending) + len(changed)

    def _together(self, docs: list[dict], command_of: Callable[[dict], Command]) -> None:
        """The documents' commands appended in one transaction (Application.act_together);
        when a stream moved meanwhile or a client's key is gone, each on its own.

        One by one, each request was a transaction of its own, holding measures' append lock
        that the clients' completions and risk answers wait for, and under a busy hour's
        load the reactor, one append among many waiting for that lock, fell behind: in the
        flows bench (fifty bookings a second) it had requested about one questionnaire in
        ten by the end of the load, and a request came 25-29 s (p50) after its booking
        (issue 14, session 28). Together, a step's requests are three of the store's round
        trips."""
        if not docs:
            return
        commands = [command_of(d) for d in docs]
        try:
            refused = self.application.act_together(commands)
        except (ConcurrencyError, KeyDisposed):
            for doc, command in zip(docs, commands, strict=True):
                self._guard(lambda _doc, c=command: self.application.act(c), doc)
            return
        for doc, err in zip(docs, refused, strict=True):
            if err is not None:  # a rule refused it: nothing to retry
                log.error("reactor: %s refused: %s", doc["_id"], err.detail)

    @staticmethod
    def _guard(work, doc) -> None:
        try:
            work(doc)
        except DomainError as err:  # a rule refused it: nothing to retry
            log.error("reactor: %s refused: %s", doc["_id"], err.detail)
        except KeyDisposed:  # the client was disposed of: nothing of theirs may be written again
            log.info("reactor: %s skipped, its client has been disposed of", doc["_id"])

    @staticmethod
    def _plan(plan: dict, chosen: dict[str, tuple[str, ...]]) -> Command:
        """The plan's request: withdrawn when its session was cancelled, else requested."""
        request_id = domain.request_id_for(plan["_id"])
        meta = Metadata(
            ACTOR, correlation_id=f"session:{plan['_id']}", causation_id=plan.get("last_event_id")
        )
        command: object
        if plan["status"] == "cancelled":
            command = domain.WithdrawQuestionnaire("session cancelled")
        else:
            command = domain.RequestQuestionnaire(
                request_id=request_id,
                client_id=plan["client_id"],
                therapist_id=plan["therapist_id"],
                session_id=plan["_id"],
                instruments=chosen[plan["client_id"]],
                starts_at=plan["starts_at"],
                ends_at=plan["ends_at"],
                now=utcnow(),
                course_id=plan.get("course_id"),
                session_number=plan.get("number"),
            )
        decider = domain.QuestionnaireRequestDecider()
        return Command(decider, domain.request_stream(request_id), command, meta)

    @staticmethod
    def _outcome(episode: dict) -> Command:
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
        stream = domain.outcome_stream(episode["_id"])
        return Command(domain.OutcomeDecider(), stream, domain.PublishOutcome(data), meta)


def workers(settings) -> list:
    return [Reactor(settings).run]
