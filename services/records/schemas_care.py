"""Schemas of the clinical commands (assessment .. discharge) and of the reports
(caseload, timeline, audit)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from shared.contracts.records import CONDITIONS, PHASES, PROBLEM_AREAS
from shared.inputs import instant

from .schemas import InventoryPersonSchema, Moment, NoteOut, free_text, ident, optional_text


class AssessmentIn(Schema):
    session_id = ident(load_default=None, allow_none=True)
    presenting_difficulties = free_text(required=True)
    conditions = fields.List(
        fields.String(validate=validate.OneOf(CONDITIONS)),
        required=True,
        validate=validate.Length(min=1),
    )
    goals = fields.List(
        free_text(1000),
        required=True,
        validate=validate.Length(min=1, max=20),
        metadata={"description": "the client's goals, in their words"},
    )
    risk_summary = free_text(required=True)


class FormulationIn(Schema):
    problem_areas = fields.List(
        fields.String(validate=validate.OneOf(PROBLEM_AREAS)),
        required=True,
        validate=validate.Length(min=1, max=2),
        metadata={"description": "the IPT focus: one or two areas"},
    )
    formulation = free_text(
        required=True,
        metadata={
            "description": "the problem area linked to the symptoms, as agreed with the client"
        },
    )
    inventory = fields.List(
        fields.Nested(InventoryPersonSchema), load_default=list, validate=validate.Length(max=50)
    )
    goals = fields.List(free_text(1000), required=True, validate=validate.Length(min=1, max=20))
    expected_revision = fields.Integer(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "the revision being revised (0 for the first); a newer one gives 409"
        },
    )


class PhaseIn(Schema):
    to_phase = fields.String(required=True, validate=validate.OneOf(PHASES))
    reason = free_text(2000, required=True)


class PhaseOut(Schema):
    client_id = fields.String()
    from_phase = fields.String(allow_none=True)
    phase = fields.String()
    reason = fields.String()
    by = fields.String()
    suggested_phase = fields.String(allow_none=True)
    attended_sessions = fields.Integer()


class NoteIn(Schema):
    session_id = ident(required=True, metadata={"description": "the session the note is of"})
    text = free_text(required=True)


class AmendIn(Schema):
    text = free_text(required=True, metadata={"description": "the corrected text in full"})
    reason = free_text(1000, required=True, metadata={"description": "why the note is amended"})


class NotesOut(Schema):
    client_id = fields.String()
    notes = fields.List(fields.Nested(NoteOut))


class TaskIn(Schema):
    description = free_text(2000, required=True)
    due_at = instant(load_default=None, allow_none=True)
    session_id = ident(load_default=None, allow_none=True)


class TaskCompleteIn(Schema):
    reflection = optional_text(5000)
    completed_at = Moment(
        load_default=None,
        allow_none=True,
        metadata={"description": "when the client did it (default: now)"},
    )


class TaskReviewIn(Schema):
    review = free_text(5000, required=True, metadata={"description": "what came of it in session"})
    session_id = ident(load_default=None, allow_none=True)


class DischargeIn(Schema):
    reason = free_text(2000, required=True)
    outcome_summary = free_text(required=True)


class CaseloadItemOut(Schema):
    client_id = fields.String()
    given_name = fields.String()
    family_name = fields.String()
    status = fields.String()
    phase = fields.String(allow_none=True)
    attended_sessions = fields.Integer()
    suggested_phase = fields.String(allow_none=True)
    next_session = fields.Dict(
        allow_none=True,
        metadata={
            "description": "{session_id, starts_at, ends_at, kind} of the next booked session"
        },
    )
    open_tasks = fields.Integer()


class CaseloadArgs(Schema):
    include_discharged = fields.Boolean(load_default=False)


class CaseloadOut(Schema):
    therapist_id = fields.String()
    clients = fields.List(fields.Nested(CaseloadItemOut))


class TimelineEntryOut(Schema):
    event_id = fields.String()
    at = fields.DateTime()
    type = fields.String()
    source = fields.String(metadata={"description": "records or scheduling"})
    actor = fields.String(allow_none=True)
    summary = fields.String()


class TimelineOut(Schema):
    client_id = fields.String()
    entries = fields.List(fields.Nested(TimelineEntryOut))


class AuditArgs(Schema):
    since = Moment()
    until = Moment()
    client_id = ident()
    limit = fields.Integer(load_default=1000, validate=validate.Range(min=1, max=10_000))


class AuditEntryOut(Schema):
    seq = fields.Integer()
    at = fields.DateTime()
    actor = fields.String()
    role = fields.String()
    action = fields.String()
    resource = fields.String()
    client_id = fields.String(allow_none=True)
    source_ip = fields.String(allow_none=True)
    correlation_id = fields.String(allow_none=True)
    service = fields.String(allow_none=True)
    prev_hash = fields.String()
    hash = fields.String()


class AuditOut(Schema):
    chain_intact = fields.Boolean(metadata={"description": "the hash chain verified end to end"})
    chain_message = fields.String()
    entries = fields.List(fields.Nested(AuditEntryOut))
