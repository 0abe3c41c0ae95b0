"""Questionnaires (pure: no Flask, no pymongo).

- QuestionnaireRequestDecider: a pre-session request, from requested to completed or
  withdrawn; "a score is computed exactly once": completing twice is a conflict.
- ResponseDecider: answers entered by staff without a request (one stream per response).
- InstrumentSetDecider: the questionnaires a client is asked before each session.
Completing one scores it by each instrument's rule and raises a risk alert per risk item
answered above 0 or left blank (alerts.py follows them up).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta

from shared.domain import Conflict, Invalid, NotFound
from shared.events import NewEvent

from .commands import (
    CompleteQuestionnaire,
    RequestQuestionnaire,
    ResendQuestionnaire,
    SetInstruments,
    WithdrawQuestionnaire,
)
from .instruments import INSTRUMENTS
from .scoring import answer_errors, risk_items, score
from .streams import alert_id_for, evolve_by

# Questionnaires go out this long before the session (or at once when booked later).
REQUEST_LEAD = timedelta(hours=48)
# a second resend this soon is most likely the same press twice
RESEND_PAUSE = timedelta(minutes=2)


# -- questionnaire requests ----------------------------------------------------------------
@dataclass(frozen=True)
class RequestState:
    status: str = "none"  # none | requested | completed | withdrawn
    data: dict = field(default_factory=dict)


def scored_answers(answers: dict) -> list[dict]:
    """Validate and score each instrument by its published rule, the same for the client's
    link and for staff (Invalid names the first bad item; the API names them all first)."""
    if not answers:
        raise Invalid("answer at least one questionnaire", field="answers")
    scores = []
    for code, values in answers.items():
        if code not in INSTRUMENTS:
            raise Invalid(f"unknown instrument {code}", field=f"answers.{code}")
        errors = answer_errors(code, values)
        if errors:
            item, why = sorted(errors.items())[0]
            raise Invalid(f"{code} item {item}: {why}", field=f"answers.{code}.{item}")
        scores.append(score(code, values).as_event())
    return scores


def completion(command: CompleteQuestionnaire, request_id: str | None) -> NewEvent:
    scores = scored_answers(command.answers)
    return NewEvent(
        "QuestionnaireCompleted",
        {
            "response_id": command.response_id,
            "request_id": request_id,
            "client_id": command.client_id,
            "therapist_id": command.therapist_id,
            "session_id": command.session_id,
            "completed_at": command.now,
            "source": command.source,
            "scores": scores,
            "course_id": command.course_id,
            "session_number": command.session_number,
        },
    )


def risk_events(completed: NewEvent) -> list[tuple[str, NewEvent]]:
    """[(alert_id, RiskIndicated)] for each risk item answered above 0 or left unanswered
    (answer None); appended in the same transaction as the completion, each on its own alert
    stream."""
    d = completed.data
    out = []
    for s in d["scores"]:
        for item, answer in risk_items(s["instrument"], s["answers"]):
            alert_id = alert_id_for(d["response_id"], s["instrument"], item)
            out.append(
                (
                    alert_id,
                    NewEvent(
                        "RiskIndicated",
                        {
                            "alert_id": alert_id,
                            "client_id": d["client_id"],
                            "therapist_id": d["therapist_id"],
                            "response_id": d["response_id"],
                            "instrument": s["instrument"],
                            "item": item,
                            "answer": answer,
                            "unanswered": answer is None,
                            "indicated_at": d["completed_at"],
                        },
                    ),
                )
            )
    return out


class QuestionnaireRequestDecider:
    def initial_state(self) -> RequestState:
        return RequestState()

    def evolve(self, state: RequestState, event) -> RequestState:
        return evolve_by(_REQUEST_EVOLVE, state, event)

    def decide(self, state: RequestState, command) -> list[NewEvent]:
        return _REQUEST_DECIDE[type(command)](state, command)


def _request(state: RequestState, c: RequestQuestionnaire) -> list[NewEvent]:
    if state.status in ("completed", "withdrawn"):
        return []
    if state.status == "requested" and state.data.get("session_starts_at") == c.starts_at:
        return []  # the same booking delivered again
    if c.now >= c.ends_at:
        return []  # the session is over: asking now would help nobody
    return [
        NewEvent(
            "QuestionnaireRequested",
            {
                "request_id": c.request_id,
                "client_id": c.client_id,
                "therapist_id": c.therapist_id,
                "session_id": c.session_id,
                "instruments": list(c.instruments),
                "due_at": max(c.now, c.starts_at - REQUEST_LEAD),
                "session_starts_at": c.starts_at,
                "expires_at": c.ends_at,
                "course_id": c.course_id,
                "session_number": c.session_number,
            },
        )
    ]


def _resend(state: RequestState, c: ResendQuestionnaire) -> NewEvent:
    if state.status == "none":
        raise NotFound("no such questionnaire request")
    if state.status != "requested":
        raise Conflict(
            f"this questionnaire is {state.status}: there is nothing to resend",
            code=state.status,
        )
    d = state.data
    if c.now >= d["expires_at"]:
        raise Conflict("this questionnaire has expired: there is nothing to resend", code="expired")
    last = d.get("last_resent_at")
    if last is not None and c.now - last < RESEND_PAUSE:
        raise Conflict(
            "the link was resent moments ago; the client should have it now", code="just_resent"
        )
    return NewEvent(
        "QuestionnaireResent",
        {
            "request_id": d["request_id"],
            "client_id": d["client_id"],
            "therapist_id": d["therapist_id"],
            "resend": d.get("resends", 0) + 1,
            "resent_at": c.now,
            "session_starts_at": d.get("session_starts_at"),
            "expires_at": d["expires_at"],
        },
    )


def _complete(state: RequestState, c: CompleteQuestionnaire) -> NewEvent:
    if state.status == "none":
        raise NotFound("no such questionnaire request")
    if state.status == "completed":
        raise Conflict("this questionnaire has already been completed")
    if state.status == "withdrawn":
        raise Conflict("this questionnaire was withdrawn (the session was cancelled)")
    if c.source == "link" and c.now >= state.data["expires_at"]:
        raise Conflict("this questionnaire has expired")
    wanted = set(state.data["instruments"])
    if set(c.answers) != wanted:
        raise Invalid(
            f"answer exactly these questionnaires: {', '.join(sorted(wanted))}", field="answers"
        )
    d = state.data
    c = replace(
        c,
        session_id=d.get("session_id"),
        course_id=d.get("course_id"),
        session_number=d.get("session_number"),
    )
    return completion(c, d["request_id"])


def _withdraw(state: RequestState, c: WithdrawQuestionnaire) -> list[NewEvent]:
    if state.status != "requested":
        return []  # nothing outstanding: a cancel after completion changes nothing
    return [
        NewEvent(
            "QuestionnaireWithdrawn",
            {
                "request_id": state.data["request_id"],
                "client_id": state.data["client_id"],
                "reason": c.reason,
            },
        )
    ]


def _resent(state: RequestState, event) -> RequestState:
    resent = {"resends": event.data["resend"], "last_resent_at": event.data["resent_at"]}
    return replace(state, data={**state.data, **resent})


_REQUEST_EVOLVE = {
    "QuestionnaireRequested": lambda state, event: RequestState("requested", dict(event.data)),
    "QuestionnaireWithdrawn": lambda state, event: replace(state, status="withdrawn"),
    "QuestionnaireResent": _resent,
    "QuestionnaireCompleted": lambda state, event: replace(state, status="completed"),
}
_REQUEST_DECIDE = {
    RequestQuestionnaire: _request,
    WithdrawQuestionnaire: _withdraw,
    CompleteQuestionnaire: lambda state, c: [_complete(state, c)],
    ResendQuestionnaire: lambda state, c: [_resend(state, c)],
}


class ResponseDecider:
    """Staff entering answers with no request behind them: one stream per response."""

    def initial_state(self) -> bool:
        return False

    def evolve(self, state: bool, event) -> bool:
        return evolve_by(_RESPONSE_EVOLVE, state, event)

    def decide(self, state: bool, command: CompleteQuestionnaire) -> list[NewEvent]:
        if state:
            raise Conflict("this response has already been recorded")
        return [completion(command, None)]


_RESPONSE_EVOLVE = {"QuestionnaireCompleted": lambda state, event: True}


# -- the questionnaires a client is asked ------------------------------------------------
class InstrumentSetDecider:
    def initial_state(self):
        return None

    def evolve(self, state, event):
        return evolve_by(_SET_EVOLVE, state, event)

    def decide(self, state, command: SetInstruments) -> list[NewEvent]:
        chosen = tuple(command.instruments)
        if not chosen:
            raise Invalid("choose at least one questionnaire", field="instruments")
        if len(set(chosen)) != len(chosen):
            raise Invalid("each questionnaire once", field="instruments")
        unknown = [c for c in chosen if c not in INSTRUMENTS]
        if unknown:
            raise Invalid(f"unknown instrument {unknown[0]}", field="instruments")
        if state == chosen:
            return []
        return [
            NewEvent(
                "InstrumentsConfigured",
                {"client_id": command.client_id, "instruments": list(chosen)},
            )
        ]


_SET_EVOLVE = {"InstrumentsConfigured": lambda state, event: tuple(event.data["instruments"])}
