"""Request and response schemas (flask-smorest documents them in /openapi.json)."""

from marshmallow import Schema, fields, validate

from shared.contracts.notifications import CHANNELS
from shared.inputs import Registered, instant

from .application.book import STATUSES
from .domain import KINDS

HHMM = validate.Regexp(r"^([01]\d|2[0-3]):[0-5]\d$", error="a time of day like 21:00")


class QuietHoursSchema(Schema):
    start = fields.String(
        required=True, validate=HHMM, metadata={"description": "practice-local, e.g. 21:00"}
    )
    end = fields.String(
        required=True, validate=HHMM, metadata={"description": "practice-local, e.g. 08:00"}
    )


class PreferencesIn(Schema):
    channels = fields.List(
        fields.String(validate=validate.OneOf(("email", "sms"))),
        required=True,
        validate=validate.Length(max=2),
        metadata={"description": "within the channels the client consented to; [] = none"},
    )
    reminder_lead_hours = fields.Integer(required=True, validate=validate.Range(min=1, max=168))
    quiet_hours = fields.Nested(
        QuietHoursSchema,
        allow_none=True,
        metadata={"description": "omit for the practice default (21:00–08:00); null for none"},
    )


class PreferencesOut(Schema):
    client_id = fields.String(required=True)
    channels = fields.List(fields.String(), required=True)
    reminder_lead_hours = fields.Float(required=True)
    quiet_hours = fields.Nested(QuietHoursSchema, allow_none=True)
    consented_channels = fields.List(fields.String(), required=True)
    default = fields.Boolean(
        required=True, metadata={"description": "true until preferences are set"}
    )


class NotificationQuery(Schema):
    status = fields.String(validate=validate.OneOf(STATUSES))
    kind = fields.String(validate=Registered(KINDS))
    channel = fields.String(validate=validate.OneOf(CHANNELS))
    client_id = fields.String(validate=validate.Length(min=1, max=100))
    since = instant(metadata={"description": "planned at or after"})
    until = instant(metadata={"description": "planned before"})
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))


class ScheduledQuery(Schema):
    kind = fields.String(validate=Registered(KINDS))
    client_id = fields.String(validate=validate.Length(min=1, max=100))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))


class NotificationOut(Schema):
    id = fields.String(required=True, metadata={"description": "the idempotency key"})
    kind = fields.String(required=True)
    channel = fields.String(required=True)
    recipient = fields.String(
        required=True,
        metadata={"description": "client, funder, enquirer, a therapist id or clinical_lead"},
    )
    client_id = fields.String(allow_none=True)
    therapist_id = fields.String(allow_none=True)
    status = fields.String(required=True)
    due_at = fields.AwareDateTime(required=True)
    next_at = fields.AwareDateTime(allow_none=True)
    attempts = fields.Integer(required=True)
    created_at = fields.AwareDateTime(allow_none=True)
    sent_at = fields.AwareDateTime(allow_none=True)
    failed_at = fields.AwareDateTime(allow_none=True)
    last_error = fields.String(allow_none=True)
    void_reason = fields.String(allow_none=True)


class InboxQuery(Schema):
    unread = fields.Boolean(metadata={"description": "only items not yet marked read"})
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class RiskDetails(Schema):
    instrument = fields.String()
    item = fields.Integer()
    answer = fields.Integer()
    indicated_at = fields.AwareDateTime()
    response_id = fields.String()


class InboxItem(Schema):
    id = fields.String(required=True)
    kind = fields.String(required=True)
    alert_id = fields.String(allow_none=True)
    client_id = fields.String(allow_none=True)
    client_name = fields.String(allow_none=True)
    title = fields.String(required=True)
    body = fields.String(required=True)
    details = fields.Nested(RiskDetails, allow_none=True)
    created_at = fields.AwareDateTime(required=True)
    read_at = fields.AwareDateTime(allow_none=True)
    read_by = fields.String(allow_none=True)
    acknowledged_at = fields.AwareDateTime(allow_none=True)
    acknowledged_by = fields.String(allow_none=True)
