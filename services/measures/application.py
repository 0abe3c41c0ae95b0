"""Command handlers: load a stream, decide, append with the expected version. Completing a
questionnaire appends the completion and its risk alerts in one transaction (several streams),
with any extra write (the link's single use) in the same transaction."""

from __future__ import annotations

from collections.abc import Callable

from pymongo.client_session import ClientSession

from shared.application import CommandHandler
from shared.domain import Conflict, fold
from shared.events import Event
from shared.eventstore import ConcurrencyError, EventStore, Metadata, StreamAppend

from . import domain
from .instruments import DEFAULT_SET


def _complete(
    store: EventStore,
    stream_id: str,
    decider,
    command,
    meta: Metadata,
    also: Callable[[ClientSession], None] | None,
) -> list[Event]:
    for _ in range(3):
        history = store.load(stream_id)
        [completed] = decider.decide(fold(decider, history), command)
        appends = [StreamAppend(stream_id, len(history), [completed])]
        appends += [
            StreamAppend(domain.alert_stream(alert_id), 0, [event])
            for alert_id, event in domain.risk_events(completed)
        ]
        try:
            return store.append_streams(appends, meta, also=also)
        except ConcurrencyError:
            continue  # someone completed it meanwhile: deciding again gives the Conflict
    raise Conflict("the questionnaire changed while you were saving; try again")


def complete_request(
    store: EventStore,
    request_id: str,
    command: domain.CompleteQuestionnaire,
    meta: Metadata,
    also=None,
) -> list[Event]:
    return _complete(
        store,
        domain.request_stream(request_id),
        domain.QuestionnaireRequestDecider(),
        command,
        meta,
        also,
    )


def record_response(
    store: EventStore, command: domain.CompleteQuestionnaire, meta: Metadata
) -> list[Event]:
    return _complete(
        store,
        domain.response_stream(command.response_id),
        domain.ResponseDecider(),
        command,
        meta,
        None,
    )


def request_state(store: EventStore, request_id: str) -> domain.RequestState:
    return CommandHandler(store, domain.QuestionnaireRequestDecider()).state(
        domain.request_stream(request_id)
    )[0]


def acknowledge_risk(
    store: EventStore, alert_id: str, command: domain.AcknowledgeRisk, meta: Metadata
) -> list[Event]:
    return CommandHandler(store, domain.RiskAlertDecider()).execute(
        domain.alert_stream(alert_id), command, meta
    )


def alert_state(store: EventStore, alert_id: str) -> dict:
    return CommandHandler(store, domain.RiskAlertDecider()).state(domain.alert_stream(alert_id))[0]


def set_instruments(
    store: EventStore, command: domain.SetInstruments, meta: Metadata
) -> list[Event]:
    return CommandHandler(store, domain.InstrumentSetDecider()).execute(
        domain.instruments_stream(command.client_id), command, meta
    )


def instruments_for(store: EventStore, client_id: str) -> tuple[str, ...]:
    chosen = CommandHandler(store, domain.InstrumentSetDecider()).state(
        domain.instruments_stream(client_id)
    )[0]
    return chosen or DEFAULT_SET


def plan_request(
    store: EventStore, command: domain.RequestQuestionnaire, meta: Metadata
) -> list[Event]:
    return CommandHandler(store, domain.QuestionnaireRequestDecider()).execute(
        domain.request_stream(command.request_id), command, meta
    )


def resend_request(
    store: EventStore, request_id: str, command: domain.ResendQuestionnaire, meta: Metadata
) -> list[Event]:
    return CommandHandler(store, domain.QuestionnaireRequestDecider()).execute(
        domain.request_stream(request_id), command, meta
    )


def recorded_completion(store: EventStore, response_id: str, request_id: str | None) -> list[Event]:
    """The completion (and its risk alerts) a response id already produced, or []: a
    double-submitted form is answered with what the first submission stored."""
    stream = (
        domain.request_stream(request_id) if request_id else domain.response_stream(response_id)
    )
    done = [
        e
        for e in store.load(stream)
        if e.type == "QuestionnaireCompleted" and e.data["response_id"] == response_id
    ]
    if not done:
        return []
    alerts = [
        store.load(domain.alert_stream(alert_id))[:1] for alert_id, _ in domain.risk_events(done[0])
    ]
    return done + [a[0] for a in alerts if a]


def withdraw_request(
    store: EventStore, request_id: str, reason: str, meta: Metadata
) -> list[Event]:
    return CommandHandler(store, domain.QuestionnaireRequestDecider()).execute(
        domain.request_stream(request_id), domain.WithdrawQuestionnaire(reason), meta
    )


def publish_outcome(store: EventStore, episode_id: str, data: dict, meta: Metadata) -> list[Event]:
    return CommandHandler(store, domain.OutcomeDecider()).execute(
        domain.outcome_stream(episode_id), domain.PublishOutcome(data), meta
    )
