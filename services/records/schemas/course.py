"""Schemas of course completion (`POST /clients/{id}/course-completed`)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from shared.contracts.records import COURSE_ENDINGS, COURSE_OUTCOMES

from . import optional_text


class CourseCompletedIn(Schema):
    outcome = fields.String(
        required=True,
        validate=validate.OneOf(COURSE_OUTCOMES),
        metadata={"description": "how the course ended, as the therapist judges it"},
    )
    outcome_summary = optional_text(5000)
    maintenance = fields.Boolean(
        load_default=False,
        metadata={
            "description": "the client continues in maintenance with booster sessions (the "
            "record moves to the maintenance phase); discharge is a separate step"
        },
    )


class CourseOut(Schema):
    client_id = fields.String()
    ended = fields.String(
        metadata={
            "description": f"one of {', '.join(COURSE_ENDINGS)}: session 16 attended, "
            "or ended by the therapist"
        }
    )
    session_id = fields.String(allow_none=True)
    outcome = fields.String(allow_none=True, metadata={"description": "null: not recorded yet"})
    outcome_summary = fields.String(allow_none=True)
    sessions_attended = fields.Integer()
    completed_at = fields.DateTime()
    by = fields.String()
    phase = fields.String(allow_none=True)
