"""Schemas of enquiries, the waiting list and the enquiries report."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from shared.contracts.common import MODALITIES
from shared.inputs import day

from ..domain.enquiry import ATTEMPT_CHANNELS, ATTEMPT_OUTCOMES, CONTACT_BY, PRIORITIES
from . import free_text, ident, line_text
from .clients import BIRTH, GpSchema, _birth_date, _channels, _email, _nhs_number, _phone

STATUSES = ("received", "offered", "waiting", "declined", "registered", "disposed")


class EnquiryIn(Schema):
    """What the person says on the public page (or reception takes down on the phone)."""

    given_name = line_text(100, required=True)
    family_name = line_text(100, required=True)
    email = _email(load_default=None)
    phone = _phone(load_default=None)
    contact_by = fields.String(
        required=True,
        validate=validate.OneOf(CONTACT_BY),
        metadata={"description": "how the person wants to be contacted; its detail is required"},
    )
    concern = free_text(2000, required=True, metadata={"description": "what is troubling them"})
    preferred_modality = fields.String(required=True, validate=validate.OneOf(MODALITIES))
    preferred_times = line_text(200, load_default=None, allow_none=True)
    heard_from = line_text(200, load_default=None, allow_none=True)
    consent_to_contact = fields.Boolean(
        required=True, metadata={"description": "must be true: we contact only with consent"}
    )


class ContactAttemptIn(Schema):
    channel = fields.String(required=True, validate=validate.OneOf(ATTEMPT_CHANNELS))
    outcome = fields.String(required=True, validate=validate.OneOf(ATTEMPT_OUTCOMES))
    note = free_text(1000, load_default=None, allow_none=True)


class OfferIn(Schema):
    therapist_id = ident(required=True)


class WaitlistIn(Schema):
    priority = fields.String(
        required=True,
        validate=validate.OneOf(PRIORITIES),
        metadata={"description": "routine, soon or urgent (the list is ordered by it)"},
    )


class DeclineIn(Schema):
    reason = free_text(1000, required=True)
    signposted_to = line_text(200, load_default=None, allow_none=True)


class RegisterFromEnquiryIn(Schema):
    """Only what an enquiry does not ask; the rest is carried over from the enquiry (a value
    sent here replaces the carried one)."""

    date_of_birth = fields.Date(required=True, validate=_birth_date, metadata=BIRTH)
    therapist_id = ident(required=True)
    preferred_modality = fields.String(validate=validate.OneOf(MODALITIES), load_default=None)
    reminder_channels = _channels(load_default=None, allow_none=True)
    gp = fields.Nested(GpSchema, allow_none=True, load_default=None)
    nhs_number = _nhs_number(load_default=None)


class EnquiryListArgs(Schema):
    status = fields.String(validate=validate.OneOf(STATUSES))


class AttemptOut(Schema):
    channel = fields.String()
    outcome = fields.String()
    note = fields.String(allow_none=True)
    by = fields.String()
    attempted_at = fields.DateTime()


class EnquiryOut(Schema):
    enquiry_id = fields.String()
    client_id = fields.String(
        metadata={"description": "the client id reserved for the person (theirs once registered)"}
    )
    status = fields.String(metadata={"description": " | ".join(STATUSES)})
    given_name = fields.String()
    family_name = fields.String()
    email = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    contact_by = fields.String()
    concern = fields.String()
    preferred_modality = fields.String()
    preferred_times = fields.String(allow_none=True)
    heard_from = fields.String(allow_none=True)
    received_at = fields.DateTime()
    attempts = fields.List(fields.Nested(AttemptOut))
    priority = fields.String(allow_none=True)
    added_at = fields.DateTime(allow_none=True)
    weeks_waiting = fields.Integer(allow_none=True)
    offered_to = fields.String(allow_none=True)
    assessment_at = fields.DateTime(
        allow_none=True,
        metadata={"description": "the first assessment session booked for the person, if any"},
    )
    retention_until = fields.DateTime(
        allow_none=True, metadata={"description": "when an unconverted enquiry may be disposed of"}
    )


class EnquiryListOut(Schema):
    enquiries = fields.List(fields.Nested(EnquiryOut))


class ReportArgs(Schema):
    start = day(load_default=None, metadata={"description": "first day of enquiries counted"})
    end = day(load_default=None, metadata={"description": "last day of enquiries counted"})


class DaysOut(Schema):
    count = fields.Integer(metadata={"description": "enquiries that reached this step"})
    median_days = fields.Float(allow_none=True)
    mean_days = fields.Float(allow_none=True)


class EnquiryReportOut(Schema):
    start = fields.Date(allow_none=True)
    end = fields.Date(allow_none=True)
    enquiries = fields.Integer()
    by_status = fields.Dict(keys=fields.String(), values=fields.Integer())
    converted = fields.Integer(metadata={"description": "registered as clients"})
    conversion_rate = fields.Float(allow_none=True)
    waiting_now = fields.Integer()
    to_assessment = fields.Nested(
        DaysOut,
        metadata={"description": "days from enquiry to the first assessment session booked"},
    )
    to_first_treatment = fields.Nested(
        DaysOut,
        metadata={"description": "days from enquiry to the first treatment session booked"},
    )
