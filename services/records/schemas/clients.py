"""Schemas of the client's details, the record, its history and export, and retention."""

from __future__ import annotations

from datetime import date

import phonenumbers
from marshmallow import Schema, ValidationError, fields, validate

from shared.contracts.common import MODALITIES
from shared.contracts.records import CHANNELS, PHASES
from shared.subject_access import PartOut

from . import Moment, free_text, ident, line_text
from .care import AssessmentOut, DischargeOut, FormulationOut, NoteOut, TaskOut
from .course import CourseOut
from .homework import EntryOut

STATUSES = ("active", "discharged")

# the one date outside the 2000-2099 range every other input keeps (shared.inputs)
BIRTH = {"description": "An ISO date, between 1900-01-01 and today."}


def _birth_date(value: date) -> None:
    if value > date.today():
        raise ValidationError("a date of birth cannot be in the future")
    if value.year < 1900:
        raise ValidationError("a date of birth before 1900 is not plausible")


# -- clients -------------------------------------------------------------------------------
class GpSchema(Schema):
    name = line_text(200, required=True)
    practice = line_text(200, required=True)


def _email(**kw):
    return fields.Email(allow_none=True, validate=validate.Length(max=254), **kw)


def _possible_phone(value: str) -> None:
    """A number a UK phone could dial (libphonenumber, region GB): '-------' or '(((((((' fit
    the characters but are no number. 'Possible', not 'valid': Ofcom's reserved drama and
    test ranges (07700 900xxx) are possible numbers but not assigned ones."""
    try:
        number = phonenumbers.parse(value, "GB")
    except phonenumbers.NumberParseException:
        raise ValidationError("not a phone number") from None
    if not phonenumbers.is_possible_number(number):
        raise ValidationError("not a possible phone number (too short or too long for its country)")


def _phone(**kw):
    return fields.String(
        allow_none=True,
        validate=[
            validate.Regexp(
                r"^\+?[0-9 ()-]{7,20}$", error="a phone number of 7 to 20 digits, spaces or + - ( )"
            ),
            _possible_phone,
        ],
        **kw,
    )


def _channels(**kw):
    return fields.List(
        fields.String(validate=validate.OneOf(CHANNELS)),
        metadata={"description": "reminder channels the client consents to"},
        **kw,
    )


def _nhs_number(**kw):
    return fields.String(
        allow_none=True,
        metadata={
            "description": "10 digits, modulus-11 check digit (NHS Data Dictionary); spaces allowed"
        },
        **kw,
    )


class _ClientFields(Schema):
    """The details as corrections send them: every field optional."""

    given_name = line_text(100)
    family_name = line_text(100)
    date_of_birth = fields.Date(validate=_birth_date, metadata=BIRTH)
    email = _email()
    phone = _phone()
    preferred_modality = fields.String(validate=validate.OneOf(MODALITIES))
    reminder_channels = _channels()
    therapist_id = ident()
    referral_source = free_text(200)
    gp = fields.Nested(GpSchema, allow_none=True)
    nhs_number = _nhs_number()


class ClientIn(Schema):
    given_name = line_text(100, required=True)
    family_name = line_text(100, required=True)
    date_of_birth = fields.Date(required=True, validate=_birth_date, metadata=BIRTH)
    email = _email(load_default=None)
    phone = _phone(load_default=None)
    preferred_modality = fields.String(required=True, validate=validate.OneOf(MODALITIES))
    reminder_channels = _channels(load_default=list)
    therapist_id = ident(required=True)
    referral_source = free_text(
        200,
        required=True,
        metadata={"description": "where the client came from: self (enquiry), GP, employer, ..."},
    )
    gp = fields.Nested(GpSchema, allow_none=True, load_default=None)
    nhs_number = _nhs_number(load_default=None)


class ClientCorrectionIn(_ClientFields):
    reason = free_text(1000, required=True, metadata={"description": "why the details change"})


class AsOfArgs(Schema):
    as_of = Moment(metadata={"description": "show the record as known then (ISO date or datetime)"})


class ClientListArgs(Schema):
    q = fields.String(
        validate=validate.Length(min=1, max=100),
        metadata={
            "description": "search: words matching the starts of the name, or a "
            "phone number, e-mail address or NHS number "
            "(exact; spaces, dashes and +44 ignored)"
        },
    )
    therapist_id = ident()
    phase = fields.String(validate=validate.OneOf(PHASES))
    status = fields.String(validate=validate.OneOf(STATUSES))
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=10_000))
    per_page = fields.Integer(load_default=25, validate=validate.Range(min=1, max=100))


class ClientOut(_ClientFields):
    """Reception (admin) and services receive only the contact and diary fields; the
    clinical fields are present for the client's therapist and the clinical lead."""

    client_id = fields.String()
    nhs_number = fields.String(allow_none=True)
    date_of_birth = fields.Date()
    status = fields.String()
    registered_at = fields.DateTime(allow_none=True)
    discharged_at = fields.DateTime(allow_none=True)
    version = fields.Integer(metadata={"description": "events in the record (as of)"})
    as_of = fields.DateTime(allow_none=True)
    view = fields.String(metadata={"description": "'full' or 'contact' (reduced, for reception)"})
    phase = fields.String(allow_none=True)
    suggested_phase = fields.String(
        allow_none=True,
        metadata={
            "description": "what the attended count implies (1-4 initial, 5-12 middle, 13-16 "
            "ending; a booster: maintenance); the therapist decides"
        },
    )
    attended_sessions = fields.Integer()
    next_phases = fields.List(
        fields.String(),
        metadata={"description": "the phases the record may move to now (none after discharge)"},
    )
    assessment = fields.Nested(AssessmentOut, allow_none=True)
    formulation = fields.Nested(FormulationOut, allow_none=True)
    notes = fields.List(fields.Nested(NoteOut))
    tasks = fields.List(fields.Nested(TaskOut))
    discharge = fields.Nested(DischargeOut, allow_none=True)
    course = fields.Nested(
        CourseOut,
        allow_none=True,
        metadata={"description": "the course's completion and outcome (null while it runs)"},
    )
    diary_entries = fields.List(
        fields.Nested(EntryOut),
        metadata={"description": "the client's diary entries and reflections, newest first"},
    )


class ClientSummaryOut(Schema):
    client_id = fields.String()
    given_name = fields.String()
    family_name = fields.String()
    therapist_id = fields.String()
    status = fields.String()
    phase = fields.String(allow_none=True, metadata={"description": "omitted for reception"})


class ClientPageOut(Schema):
    items = fields.List(fields.Nested(ClientSummaryOut))
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()


class ActorOut(Schema):
    id = fields.String()
    role = fields.String()


class EventOut(Schema):
    event_id = fields.String()
    type = fields.String()
    schema_version = fields.Integer()
    stream_version = fields.Integer()
    occurred_at = fields.DateTime()
    recorded_at = fields.DateTime()
    actor = fields.Nested(ActorOut)
    correlation_id = fields.String()
    data = fields.Dict()


class HistoryOut(Schema):
    client_id = fields.String()
    as_of = fields.DateTime(allow_none=True)
    events = fields.List(fields.Nested(EventOut))


class ExportOut(Schema):
    client_id = fields.String()
    exported_at = fields.DateTime()
    exported_by = fields.String()
    record = fields.Nested(ClientOut)
    events = fields.List(fields.Nested(EventOut))
    sessions = fields.List(fields.Dict())
    timeline = fields.List(fields.Dict())
    audit = fields.List(fields.Dict(), metadata={"description": "who read this record, when"})
    complete = fields.Boolean(
        metadata={"description": "every service gave its part (else see `missing`)"}
    )
    missing = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        metadata={"description": "service -> why its part is not here (unreachable, refused)"},
    )
    enquiry = fields.Dict(
        allow_none=True,
        metadata={"description": "the enquiry the client came from, with its events, if any"},
    )
    services = fields.Dict(
        keys=fields.String(),
        values=fields.Nested(PartOut),
        metadata={
            "description": "each other service's part (scheduling, measures, notifications, "
            "billing): `held` (by kind) and its events about the client"
        },
    )


class ErasureIn(Schema):
    requested_by = line_text(
        200, required=True, metadata={"description": "who asked (the client, a representative)"}
    )
    request = free_text(5000, required=True, metadata={"description": "the request as received"})


class DisposalOut(Schema):
    client_id = fields.String()
    status = fields.String()
    retention_ended_at = fields.DateTime(allow_none=True)
    disposed_at = fields.DateTime(allow_none=True)
