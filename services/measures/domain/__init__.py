"""What the measures service decides, pure (no Flask, no pymongo, no clock): the instruments
(instruments.py, the one place each is stated) and their scoring, the commands, and the
deciders of questionnaire requests and responses, risk alerts, course outcomes and the
questionnaires a client is asked."""

from .alerts import RiskAlertDecider
from .commands import (
    AcknowledgeRisk,
    CompleteQuestionnaire,
    PublishOutcome,
    RequestQuestionnaire,
    ResendQuestionnaire,
    SetInstruments,
    WithdrawQuestionnaire,
)
from .instruments import DEFAULT_SET, INSTRUMENTS, Band, Instrument, Loinc
from .outcomes import OutcomeDecider
from .questionnaires import (
    REQUEST_LEAD,
    RESEND_PAUSE,
    InstrumentSetDecider,
    QuestionnaireRequestDecider,
    RequestState,
    ResponseDecider,
    completion,
    risk_events,
    scored_answers,
)
from .scoring import Score, answer_errors, risk_items, score
from .streams import (
    alert_id_for,
    alert_stream,
    instruments_stream,
    outcome_stream,
    request_id_for,
    request_stream,
    response_stream,
)

__all__ = [
    "DEFAULT_SET",
    "INSTRUMENTS",
    "REQUEST_LEAD",
    "RESEND_PAUSE",
    "AcknowledgeRisk",
    "Band",
    "CompleteQuestionnaire",
    "Instrument",
    "InstrumentSetDecider",
    "Loinc",
    "OutcomeDecider",
    "PublishOutcome",
    "QuestionnaireRequestDecider",
    "RequestQuestionnaire",
    "RequestState",
    "ResendQuestionnaire",
    "ResponseDecider",
    "RiskAlertDecider",
    "Score",
    "SetInstruments",
    "WithdrawQuestionnaire",
    "alert_id_for",
    "alert_stream",
    "answer_errors",
    "completion",
    "instruments_stream",
    "outcome_stream",
    "request_id_for",
    "request_stream",
    "response_stream",
    "risk_events",
    "risk_items",
    "score",
    "scored_answers",
]
