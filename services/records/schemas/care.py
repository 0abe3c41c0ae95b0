"""Schemas of the clinical commands (assessment .. discharge) and of what they answer."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from shared.contracts.records import CONDITIONS, PHASES, PROBLEM_AREAS
from shared.inputs import instant, no_control

from . import Moment, free_text, ident, optional_text


class AssessmentOut(Schema):
    session_id = fields.String(allow_none=True)
    presenting_difficulties = fields.String()
    conditions = fields.List(fields.String())
    goals = fields.List(fields.String())
    risk_summary = fields.String()
    recorded_at = fields.DateTime(allow_none=True)


class InventoryPersonSchema(Schema):
    name = free_text(200, required=True)
    relationship = free_text(200, required=True)
    closeness = fields.Integer(
        required=True,
        validate=validate.Range(min=1, max=3),
        metadata={"description": "closeness circle: 1 inner .. 3 outer"},
    )
    good = fields.String(load_default="", validate=[validate.Length(max=5000), no_control()])
    hard = fields.String(load_default="", validate=[validate.Length(max=5000), no_control()])
    unilateral_partner = fields.Boolean(
        load_default=False,
        metadata={
            "description": "the partner in unilateral couples work (recorded here, not a client)"
        },
    )


class FormulationOut(Schema):
    revision = fields.Integer()
    problem_areas = fields.List(fields.String())
    formulation = fields.String()
    inventory = fields.List(fields.Nested(InventoryPersonSchema))
    goals = fields.List(fields.String())
    recorded_at = fields.DateTime(allow_none=True)


class NoteOut(Schema):
    note_id = fields.String()
    session_id = fields.String(allow_none=True)
    text = fields.String()
    author = fields.String()
    recorded_at = fields.DateTime(allow_none=True)
    amends = fields.String(allow_none=True, metadata={"description": "the note this one amends"})
    amendment_reason = fields.String(allow_none=True)
    amended_by = fields.String(
        allow_none=True,
        metadata={
            "description": "the later note that amends this one (this text is then superseded)"
        },
    )
    current = fields.Boolean()


class TaskReviewOut(Schema):
    review = fields.String()
    by = fields.String()
    session_id = fields.String(allow_none=True)
    reviewed_at = fields.DateTime(allow_none=True)


class TaskOut(Schema):
    task_id = fields.String()
    client_id = fields.String()
    description = fields.String()
    due_at = fields.DateTime(allow_none=True)
    session_id = fields.String(allow_none=True)
    status = fields.String()
    assigned_at = fields.DateTime(allow_none=True)
    reflection = fields.String(allow_none=True)
    completed_at = fields.DateTime(allow_none=True)
    reviews = fields.List(fields.Nested(TaskReviewOut))


class DischargeOut(Schema):
    reason = fields.String()
    outcome_summary = fields.String()
    discharged_at = fields.DateTime()
    cancel_boosters = fields.Boolean(allow_none=True)


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
    cancel_boosters = fields.Boolean(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "with booster sessions booked, discharge is refused (409 "
            "`boosters_booked`) unless this is true: they are cancelled only when staff say so"
        },
    )
