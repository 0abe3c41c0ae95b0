"""Request and response schemas (flask-smorest documents them in /openapi.json)."""

from __future__ import annotations

from datetime import timedelta

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from shared.contracts.common import MODALITIES
from shared.contracts.scheduling import CANCELLED_BY, SESSION_KINDS
from shared.inputs import ID_PATTERN, LATEST, RANGE_TEXT, day, free_text, line_text, strict_integer
from shared.inputs import instant as aware  # instants carry their offset; 2000-2099 (kernel)

HHMM = validate.Regexp(
    r"^([01]\d|2[0-3]):[0-5]\d$", error="must be HH:MM (24-hour, practice local time)"
)
# ids: letters, digits and _ . : - only (no '../x', 'a/b' or a lone space: issue 15)
ID = validate.Regexp(
    ID_PATTERN, error="must be 1 to 64 letters, digits or _ . : - (starting with a letter or digit)"
)
MAX_SEARCH_DAYS = 62


def _date_range(data, limit: int = MAX_SEARCH_DAYS):
    start, end = data.get("from_"), data.get("to")
    if start and end:
        if end < start:
            raise ValidationError("must not be before from", "to")
        if (end - start).days > limit:
            raise ValidationError(f"at most {limit} days at a time", "to")


# -- therapists -------------------------------------------------------------------------------
class TherapistIn(Schema):
    therapist_id = fields.String(
        validate=ID, metadata={"description": "chosen id; generated if absent"}
    )
    name = line_text(200, required=True)
    email = fields.Email(required=True)
    phone = fields.String(validate=validate.Length(max=40), allow_none=True, load_default=None)
    modalities = fields.List(
        fields.String(validate=validate.OneOf(MODALITIES)),
        required=True,
        validate=validate.Length(min=1),
    )
    rooms = fields.List(fields.String(validate=validate.Length(min=1, max=60)), load_default=list)


class WeeklyHoursSchema(Schema):
    weekday = fields.Integer(
        required=True, validate=validate.Range(0, 6), metadata={"description": "Monday = 0"}
    )
    start = fields.String(required=True, validate=HHMM)
    end = fields.String(required=True, validate=HHMM)


class ExceptionSchema(Schema):
    start_date = day(required=True)
    end_date = day(required=True, metadata={"description": "inclusive"})
    reason = line_text(200, required=True)


class AvailabilityIn(Schema):
    weekly_hours = fields.List(fields.Nested(WeeklyHoursSchema), required=True)
    exceptions = fields.List(fields.Nested(ExceptionSchema), load_default=list)


class TherapistOut(Schema):
    therapist_id = fields.String()
    name = fields.String()
    email = fields.String()
    phone = fields.String(allow_none=True)
    modalities = fields.List(fields.String())
    rooms = fields.List(fields.String())
    weekly_hours = fields.List(fields.Nested(WeeklyHoursSchema))
    exceptions = fields.List(fields.Nested(ExceptionSchema))


# -- slots --------------------------------------------------------------------------------------
class SlotsQuery(Schema):
    therapist_id = fields.String(required=True, validate=ID)
    modality = fields.String(required=True, validate=validate.OneOf(MODALITIES))
    from_ = day(required=True, data_key="from")
    to = day(required=True, metadata={"description": "inclusive"})
    room = fields.String(validate=validate.Length(min=1, max=60))

    @validates_schema
    def _range(self, data, **kwargs):
        _date_range(data)


class SlotOut(Schema):
    starts_at = aware()
    ends_at = aware()
    rooms = fields.List(fields.String(), metadata={"description": "free rooms (face-to-face)"})


# -- sessions ---------------------------------------------------------------------------------
class SessionIn(Schema):
    client_id = fields.String(required=True, validate=ID)
    therapist_id = fields.String(required=True, validate=ID)
    kind = fields.String(required=True, validate=validate.OneOf(SESSION_KINDS))
    modality = fields.String(required=True, validate=validate.OneOf(MODALITIES))
    room = fields.String(
        validate=validate.Length(min=1, max=60), allow_none=True, load_default=None
    )
    starts_at = aware(required=True)


class SessionOut(Schema):
    session_id = fields.String()
    client_id = fields.String()
    therapist_id = fields.String()
    kind = fields.String()
    modality = fields.String()
    room = fields.String(allow_none=True)
    starts_at = aware()
    ends_at = aware()
    status = fields.String(metadata={"description": "booked, cancelled, attended or missed"})
    course_id = fields.String(allow_none=True)
    number = fields.Integer(allow_none=True)
    video_link = fields.String(
        allow_none=True,
        metadata={
            "description": "the caller's own link to a booked video session's room: given to "
            "the session's therapist only (the client's link goes to the client's own channels)"
        },
    )
    cancelled_by = fields.String(allow_none=True)
    late = fields.Boolean(allow_none=True)
    client_name = fields.String(
        allow_none=True,
        metadata={
            "description": "given and family name (the diary and GET /sessions/{id}; "
            "null when not known yet)"
        },
    )


class RescheduleIn(Schema):
    starts_at = aware(required=True)
    modality = fields.String(validate=validate.OneOf(MODALITIES), load_default=None)
    room = fields.String(
        validate=validate.Length(min=1, max=60), allow_none=True, load_default=None
    )
    reason = free_text(500, allow_none=True, load_default=None)


class CancelIn(Schema):
    by = fields.String(required=True, validate=validate.OneOf(CANCELLED_BY))
    reason = free_text(500, required=True)


# -- courses and boosters -----------------------------------------------------------------------
class _ManyIn(Schema):
    client_id = fields.String(required=True, validate=ID)
    therapist_id = fields.String(required=True, validate=ID)
    modality = fields.String(required=True, validate=validate.OneOf(MODALITIES))
    room = fields.String(
        validate=validate.Length(min=1, max=60), allow_none=True, load_default=None
    )
    first_starts_at = aware(required=True)


def _last_within_range(first, days: int) -> None:
    """The last session of a series must fall inside the range every date lies in."""
    if first is not None and (first + timedelta(days=days)).date() > LATEST:
        raise ValidationError(
            f"the last session would fall after {LATEST.isoformat()} "
            f"(every date must be {RANGE_TEXT})",
            "count",
        )


class CourseIn(_ManyIn):
    # strict: a count of 1.5 was truncated to 1 (issue 15)
    count = strict_integer(load_default=16, validate=validate.Range(1, 52))
    interval_weeks = strict_integer(load_default=1, validate=validate.Range(1, 8))

    @validates_schema
    def _ends_in_range(self, data, **kwargs):
        _last_within_range(
            data.get("first_starts_at"),
            7 * data.get("interval_weeks", 1) * (data.get("count", 16) - 1),
        )


class BoostersIn(_ManyIn):
    count = strict_integer(load_default=3, validate=validate.Range(1, 12))
    interval_months = strict_integer(
        load_default=2,
        validate=validate.Range(1, 12),
        metadata={"description": "2 = 'bi-monthly', every two months"},
    )

    @validates_schema
    def _ends_in_range(self, data, **kwargs):
        # a month is at most 31 days: a bound that never lets a booster leave the range
        _last_within_range(
            data.get("first_starts_at"), 31 * data.get("interval_months", 2) * data.get("count", 3)
        )


class UnbookedOut(Schema):
    number = fields.Integer()
    wanted_at = aware()
    reason = fields.String()
    alternatives = fields.List(aware())


class ManyOut(Schema):
    course_id = fields.String(metadata={"description": "the course's or the booster plan's id"})
    sessions = fields.List(fields.Nested(SessionOut))
    unbooked = fields.List(fields.Nested(UnbookedOut))


# -- views ----------------------------------------------------------------------------------------
class DiaryQuery(Schema):
    date = day(required=True)
    view = fields.String(load_default="day", validate=validate.OneOf(("day", "week")))


class DiaryEntry(SessionOut):
    client_status = fields.String(allow_none=True)


class DiaryOut(Schema):
    therapist_id = fields.String()
    from_ = day(data_key="from")
    to = day()
    sessions = fields.List(fields.Nested(DiaryEntry))


class RangeQuery(Schema):
    from_ = day(required=True, data_key="from")
    to = day(required=True, metadata={"description": "inclusive"})

    @validates_schema
    def _range(self, data, **kwargs):
        _date_range(data, limit=366)


class UtilisationOut(Schema):
    therapist_id = fields.String()
    from_ = day(data_key="from")
    to = day()
    available_hours = fields.Float()
    booked_hours = fields.Float(metadata={"description": "sessions not cancelled"})
    utilisation = fields.Float(allow_none=True)
    sessions = fields.Integer()
    attended = fields.Integer()
    missed = fields.Integer()
    dna_rate = fields.Float(
        allow_none=True, metadata={"description": "missed / (attended + missed)"}
    )
    cancellations = fields.Integer()
    late_cancellations = fields.Integer()
    late_cancellation_rate = fields.Float(
        allow_none=True, metadata={"description": "late cancellations / sessions"}
    )


class CalendarTokenOut(Schema):
    token = fields.String(metadata={"description": "shown once; only its SHA-256 is kept"})
    url = fields.String()


class CalendarQuery(Schema):
    token = fields.String(required=True, validate=validate.Length(min=1, max=200))


# -- booking links ------------------------------------------------------------------------
class BookingLinkIn(Schema):
    client_id = fields.String(
        required=True,
        validate=ID,
        metadata={"description": "the client, or the id records reserved for an enquirer"},
    )
    enquiry_id = fields.String(validate=ID, allow_none=True, load_default=None)
    therapist_id = fields.String(required=True, validate=ID)
    kind = fields.String(validate=validate.OneOf(SESSION_KINDS), load_default="assessment")
    modality = fields.String(required=True, validate=validate.OneOf(MODALITIES))
    room = fields.String(
        validate=validate.Length(min=1, max=60), allow_none=True, load_default=None
    )
    starts = fields.List(
        aware(),
        required=True,
        validate=validate.Length(min=1, max=10),
        metadata={"description": "1 to 10 free times offered (each a bookable session start)"},
    )
    expires_at = aware(
        allow_none=True,
        load_default=None,
        metadata={"description": "default and at most 7 days, never beyond the last time"},
    )


class BookingLinkOut(Schema):
    link_id = fields.String()
    client_id = fields.String()
    enquiry_id = fields.String(allow_none=True)
    therapist_id = fields.String()
    kind = fields.String()
    modality = fields.String()
    room = fields.String(allow_none=True)
    starts = fields.List(aware())
    expires_at = aware()
    status = fields.String(metadata={"description": "offered or used"})
    session_id = fields.String(allow_none=True, metadata={"description": "once used"})


class LinkTokenOut(Schema):
    token = fields.String(metadata={"description": "a credential: goes only to the person"})
    expires_at = aware()


class LinkTokenIn(Schema):
    token = fields.String(required=True, validate=validate.Length(min=1, max=100))


class LinkBookIn(LinkTokenIn):
    starts_at = aware(required=True)


class LinkOfferOut(Schema):
    therapist_name = fields.String()
    kind = fields.String()
    modality = fields.String()
    room = fields.String(allow_none=True)
    expires_at = aware()
    free = fields.List(aware(), metadata={"description": "the offered times still free"})


# -- the client's own link to one session -----------------------------------------------
class SessionLinkOut(Schema):
    link_id = fields.String()
    session_id = fields.String()
    client_id = fields.String()
    therapist_id = fields.String()
    starts_at = aware()
    expires_at = aware(metadata={"description": "at the session's start at the latest"})
    status = fields.String(metadata={"description": "issued or used"})


class SessionLinkOfferOut(Schema):
    session_id = fields.String()
    starts_at = aware()
    ends_at = aware()
    kind = fields.String()
    modality = fields.String()
    room = fields.String(allow_none=True)
    therapist_name = fields.String()
    late = fields.Boolean(
        metadata={"description": "a cancellation now is late (less than 24 hours' notice)"}
    )
    can_move = fields.Boolean(metadata={"description": "false inside the notice period"})
    free = fields.List(aware(), metadata={"description": "other free times it may move to"})
