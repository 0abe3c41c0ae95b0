"""Events of the measures service (topic rapport.measures). Link tokens are credentials:
they never appear in events (architecture.md: secrets are not events)."""

from marshmallow import Schema, fields, validate

from ..events import registry
from .common import PERSONAL, one_of, optional, utc

# An instrument code is well formed here ("PHQ-9", "CORE-10"); which codes exist is the
# measures service's registry (services/measures/domain/instruments.py), so a new instrument
# never needs the published language changed.
CODE = validate.Regexp(r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)*$", error="not an instrument code")


def instrument_code(**kwargs):
    return fields.String(validate=[validate.Length(max=20), CODE], **kwargs)


@registry.event("QuestionnaireRequested", 1)
class QuestionnaireRequestedV1(Schema):
    request_id = fields.String(required=True)
    client_id = fields.String(required=True)
    therapist_id = fields.String(required=True)
    session_id = optional(fields.String())
    instruments = fields.List(instrument_code(), required=True)
    due_at = utc(required=True)  # when the link should go to the client
    session_starts_at = optional(utc())
    expires_at = utc(required=True)
    # added: the course the session belongs to and its number in it (a repeated
    # QuestionnaireRequested for the same request_id moves it, after a reschedule)
    course_id = optional(fields.String())
    session_number = optional(fields.Integer())


@registry.event("QuestionnaireWithdrawn", 1)
class QuestionnaireWithdrawnV1(Schema):
    request_id = fields.String(required=True)
    client_id = fields.String(required=True)
    reason = fields.String(required=True)


class InstrumentScore(Schema):
    instrument = instrument_code(required=True)
    answers = fields.List(fields.Integer(allow_none=True), required=True, metadata=PERSONAL)
    # None when too many items are missing to score; after disposal too (sealed)
    total = optional(fields.Float(metadata=PERSONAL))
    band = optional(fields.String(metadata=PERSONAL))
    prorated = fields.Boolean(required=True)


@registry.event("QuestionnaireCompleted", 1)
class QuestionnaireCompletedV1(Schema):
    response_id = fields.String(required=True)
    request_id = optional(fields.String())
    client_id = fields.String(required=True)
    therapist_id = fields.String(required=True)
    session_id = optional(fields.String())
    completed_at = utc(required=True)
    source = one_of(("link", "staff"), required=True)
    scores = fields.List(fields.Nested(InstrumentScore), required=True)
    # added: the course of treatment the answers count towards (outcomes per course)
    course_id = optional(fields.String())
    session_number = optional(fields.Integer())


@registry.event("RiskIndicated", 1)
class RiskIndicatedV1(Schema):
    alert_id = fields.String(required=True)
    client_id = fields.String(required=True)
    therapist_id = fields.String(required=True)
    response_id = fields.String(required=True)
    instrument = instrument_code(required=True)
    item = fields.Integer(required=True)  # which question: routes and names the alert
    # sealed; absent once disposed of; None (with `unanswered`) when the item was left blank
    answer = fields.Integer(required=True, allow_none=True, metadata=PERSONAL)
    unanswered = optional(fields.Boolean(metadata=PERSONAL))  # added: the risk item was left blank
    indicated_at = utc(required=True)


@registry.event("RiskAcknowledged", 1)
class RiskAcknowledgedV1(Schema):
    alert_id = fields.String(required=True)
    client_id = fields.String(required=True)
    by = fields.String(required=True)
    note = fields.String(required=True, metadata=PERSONAL)
    acknowledged_at = utc(required=True)


class MeasurePair(Schema):
    first = optional(fields.Float())
    last = optional(fields.Float())
    change = optional(fields.Float())


@registry.event("OutcomeUpdated", 1)
class OutcomeUpdatedV1(Schema):
    client_id = fields.String(required=True)
    therapist_id = fields.String(required=True)
    episode_id = fields.String(required=True)
    # the scores and what they mean for this client are sealed; attendance is not
    phq9 = fields.Nested(MeasurePair, required=True, metadata=PERSONAL)
    gad7 = fields.Nested(MeasurePair, required=True, metadata=PERSONAL)
    attended_sessions = fields.Integer(required=True)
    finished_treatment = fields.Boolean(required=True)
    caseness_at_start = optional(fields.Boolean(metadata=PERSONAL))
    recovered = optional(fields.Boolean(metadata=PERSONAL))
    reliable_improvement = optional(fields.Boolean(metadata=PERSONAL))
    reliable_deterioration = optional(fields.Boolean(metadata=PERSONAL))
    reliable_recovery = optional(fields.Boolean(metadata=PERSONAL))
    # added: when the first and last paired measures were taken (dashboards' date range)
    first_measured_at = optional(utc())
    last_measured_at = optional(utc())


@registry.event("InstrumentsConfigured", 1)
class InstrumentsConfiguredV1(Schema):
    """The questionnaires a client is asked to complete before each session."""

    client_id = fields.String(required=True)
    instruments = fields.List(instrument_code(), required=True)


@registry.event("QuestionnaireResent", 1)
class QuestionnaireResentV1(Schema):
    """Staff asked for the link to go to the client's own channels again (a fresh link per
    channel; the links already sent keep working). No link is in the event."""

    request_id = fields.String(required=True)
    client_id = fields.String(required=True)
    therapist_id = fields.String(required=True)
    resend = fields.Integer(required=True)  # 1 for the first resend, then 2, ...
    resent_at = utc(required=True)
    session_starts_at = optional(utc())
    expires_at = utc(required=True)
