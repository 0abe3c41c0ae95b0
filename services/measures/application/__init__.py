"""The measures service's Application: one method per command. Each loads its stream once,
runs the caller's `check` (an access rule) on that state, decides, and appends with the
expected version, deciding again on a concurrent write. Completing a questionnaire appends
the completion and its risk alerts in one transaction (several streams), with any extra
write (the link's single use) in the same transaction. `links.py` keeps the questionnaire
links, which are credentials and so never events."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pymongo.client_session import ClientSession

from shared.application import Command, CommandHandler, Outcome, run_together
from shared.domain import Conflict, DomainError, fold
from shared.events import Event
from shared.eventstore import ConcurrencyError, EventStore, Metadata, StreamAppend

from .. import domain

Check = Callable[[Any], None] | None
Also = Callable[[ClientSession], None] | None


class Application:
    def __init__(self, store: EventStore):
        self.store = store

    # -- reads of the service's own streams (always current) -----------------------------
    def request_state(self, request_id: str) -> domain.RequestState:
        return self._state(domain.QuestionnaireRequestDecider(), domain.request_stream(request_id))

    def instruments_for(self, client_id: str) -> tuple[str, ...]:
        return self.instruments_for_all([client_id])[client_id]

    def instruments_for_all(self, client_ids: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """`instruments_for` of several clients, their streams read in one query."""
        streams = {domain.instruments_stream(c): c for c in client_ids}
        histories, decider = self.store.load_many(list(streams)), domain.InstrumentSetDecider()
        return {c: fold(decider, histories[s]) or domain.DEFAULT_SET for s, c in streams.items()}

    def recorded_completion(self, response_id: str, request_id: str | None) -> list[Event]:
        """The completion (and its risk alerts) a response id already produced, or []: a
        double-submitted form is answered with what the first submission stored."""
        stream = (
            domain.request_stream(request_id) if request_id else domain.response_stream(response_id)
        )
        done = [
            e
            for e in self.store.load(stream)
            if e.type == "QuestionnaireCompleted" and e.data["response_id"] == response_id
        ]
        if not done:
            return []
        alerts = [
            self.store.load(domain.alert_stream(alert_id))[:1]
            for alert_id, _ in domain.risk_events(done[0])
        ]
        return done + [a[0] for a in alerts if a]

    # -- commands ----------------------------------------------------------------------------
    def complete_request(
        self,
        request_id: str,
        command: domain.CompleteQuestionnaire,
        meta: Metadata,
        *,
        check: Check = None,
        also: Also = None,
    ) -> list[Event]:
        return self._complete(
            domain.request_stream(request_id),
            domain.QuestionnaireRequestDecider(),
            command,
            meta,
            check,
            also,
        )

    def record_response(self, command: domain.CompleteQuestionnaire, meta: Metadata) -> list[Event]:
        return self._complete(
            domain.response_stream(command.response_id),
            domain.ResponseDecider(),
            command,
            meta,
            None,
            None,
        )

    def acknowledge_risk(
        self, alert_id: str, command: domain.AcknowledgeRisk, meta: Metadata, *, check: Check
    ) -> Outcome:
        return self._run(
            domain.RiskAlertDecider(), domain.alert_stream(alert_id), command, meta, check
        )

    def set_instruments(self, command: domain.SetInstruments, meta: Metadata) -> Outcome:
        stream = domain.instruments_stream(command.client_id)
        return self._run(domain.InstrumentSetDecider(), stream, command, meta)

    def request_questionnaire(
        self, command: domain.RequestQuestionnaire, meta: Metadata
    ) -> Outcome:
        stream = domain.request_stream(command.request_id)
        return self._run(domain.QuestionnaireRequestDecider(), stream, command, meta)

    def resend_questionnaire(
        self,
        request_id: str,
        command: domain.ResendQuestionnaire,
        meta: Metadata,
        *,
        check: Check,
    ) -> Outcome:
        stream = domain.request_stream(request_id)
        return self._run(domain.QuestionnaireRequestDecider(), stream, command, meta, check)

    # -- the reactor's ------------------------------------------------------------------------
    def act(self, command: Command) -> Outcome:
        """One command of the reactor's (a questionnaire requested or withdrawn, an outcome
        published), decided again if its stream moved."""
        return self._run(command.decider, command.stream_id, command.command, command.meta)

    def act_together(self, commands: Sequence[Command]) -> list[DomainError | None]:
        """Several, in one transaction (shared.application.run_together)."""
        return run_together(self.store, commands)

    # -- how ---------------------------------------------------------------------------------
    def _state(self, decider, stream_id: str):
        return CommandHandler(self.store, decider).state(stream_id)[0]

    def _run(
        self, decider, stream_id: str, command, meta: Metadata, check: Check = None
    ) -> Outcome:
        return CommandHandler(self.store, decider).run(stream_id, command, meta, check=check)

    def _complete(
        self, stream_id: str, decider, command, meta: Metadata, check: Check, also: Also
    ) -> list[Event]:
        """The completion on its stream and each risk alert on its own, atomically."""
        for _ in range(3):
            history = self.store.load(stream_id)
            state = fold(decider, history)
            if check is not None:
                check(state)
            [completed] = decider.decide(state, command)
            appends = [StreamAppend(stream_id, len(history), [completed])]
            appends += [
                StreamAppend(domain.alert_stream(alert_id), 0, [event])
                for alert_id, event in domain.risk_events(completed)
            ]
            try:
                return self.store.append_streams(appends, meta, also=also)
            except ConcurrencyError:
                continue  # someone completed it meanwhile: deciding again gives the Conflict
        raise Conflict("the questionnaire changed while you were saving; try again")
