"""Events of the notifications service (topic rapport.notifications). Message bodies and
addresses are not events; a notification is identified by its idempotency key."""

from marshmallow import Schema, fields

from ..events import registry
from .common import one_of, optional, utc

CHANNELS = ("email", "sms", "inbox")


class _Notification(Schema):
    notification_id = fields.String(required=True)  # = the idempotency key
    kind = fields.String(
        required=True
    )  # confirmation, reminder, questionnaire_link, risk_alert, ...
    channel = one_of(CHANNELS, required=True)
    client_id = optional(fields.String())
    recipient = fields.String(required=True)  # "client" or a staff user id


@registry.event("NotificationScheduled", 1)
class NotificationScheduledV1(_Notification):
    due_at = utc(required=True)


@registry.event("NotificationSent", 1)
class NotificationSentV1(_Notification):
    sent_at = utc(required=True)
    attempts = fields.Integer(required=True)


@registry.event("NotificationFailed", 1)
class NotificationFailedV1(_Notification):
    failed_at = utc(required=True)
    attempts = fields.Integer(required=True)
    error = fields.String(required=True)
    final = fields.Boolean(required=True)


@registry.event("NotificationVoided", 1)
class NotificationVoidedV1(_Notification):
    reason = fields.String(required=True)


@registry.event("NotificationPreferencesSet", 1)
class NotificationPreferencesSetV1(Schema):
    """A client's contact preferences: channels (within their consent), how long before an
    appointment the reminder goes, and quiet hours (practice-local "HH:MM", None = none)."""

    client_id = fields.String(required=True)
    channels = fields.List(one_of(("email", "sms")), required=True)
    reminder_lead_minutes = fields.Integer(required=True)
    quiet_start = optional(fields.String())
    quiet_end = optional(fields.String())
