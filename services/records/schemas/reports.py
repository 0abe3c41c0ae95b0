"""Schemas of the reports: caseload, timeline, audit trail."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from . import Moment, ident


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
