"""Request and response schemas (flask-smorest documents them in /openapi.json)."""
from __future__ import annotations

from datetime import date, datetime

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from shared.contracts.common import MODALITIES
from shared.contracts.scheduling import CANCELLED_BY, SESSION_KINDS

HHMM = validate.Regexp(r"^([01]\d|2[0-3]):[0-5]\d$", error="must be HH:MM (24-hour, practice local time)")
ID = validate.Length(min=1, max=64)
MAX_SEARCH_DAYS = 62


EARLIEST, LATEST = date(2000, 1, 1), date(2099, 12, 31)


def _in_diary_years(value) -> None:
    """A diary date or time between 2000 and 2099: the search windows around a booking (a
    week either side) must stay within the calendar (the fuzzer sent year 9999 and got a 500)."""
    day = value.date() if isinstance(value, datetime) else value
    if not EARLIEST <= day <= LATEST:
        raise ValidationError(f"must be between {EARLIEST.year} and {LATEST.year}")


def aware(**kwargs):
    """Instants must carry their offset: a naive time is ambiguous across clock changes."""
    return fields.AwareDateTime(default_timezone=None, validate=_in_diary_years, **kwargs)


def day(**kwargs):
    return fields.Date(validate=_in_diary_years, **kwargs)


def _date_range(data, limit: int = MAX_SEARCH_DAYS):
    start, end = data.get("from_"), data.get("to")
    if start and end:
        if end < start:
            raise ValidationError("must not be before from", "to")
        if (end - start).days > limit:
            raise ValidationError(f"at most {limit} days at a time", "to")


# -- therapists -------------------------------------------------------------------------------
class TherapistIn(Schema):
    therapist_id = fields.String(validate=ID, metadata={"description": "chosen id; generated if absent"})
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    email = fields.Email(required=True)
    phone = fields.String(validate=validate.Length(max=40), allow_none=True, load_default=None)
    modalities = fields.List(fields.String(validate=validate.OneOf(MODALITIES)), required=True,
                             validate=validate.Length(min=1))
    rooms = fields.List(fields.String(validate=validate.Length(min=1, max=60)), load_default=list)


class WeeklyHoursSchema(Schema):
    weekday = fields.Integer(required=True, validate=validate.Range(0, 6),
                             metadata={"description": "Monday = 0"})
    start = fields.String(required=True, validate=HHMM)
    end = fields.String(required=True, validate=HHMM)


class ExceptionSchema(Schema):
    start_date = day(required=True)
    end_date = day(required=True, metadata={"description": "inclusive"})
    reason = fields.String(required=True, validate=validate.Length(min=1, max=200))


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
    room = fields.String(validate=validate.Length(min=1, max=60), allow_none=True, load_default=None)
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
    video_link = fields.String(allow_none=True)
    cancelled_by = fields.String(allow_none=True)
    late = fields.Boolean(allow_none=True)
    client_name = fields.String(allow_none=True, metadata={
        "description": "given and family name (the diary and GET /sessions/{id}; null when not known yet)"})


class RescheduleIn(Schema):
    starts_at = aware(required=True)
    modality = fields.String(validate=validate.OneOf(MODALITIES), load_default=None)
    room = fields.String(validate=validate.Length(min=1, max=60), allow_none=True, load_default=None)
    reason = fields.String(validate=validate.Length(max=500), allow_none=True, load_default=None)


class CancelIn(Schema):
    by = fields.String(required=True, validate=validate.OneOf(CANCELLED_BY))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


# -- courses and boosters -----------------------------------------------------------------------
class _ManyIn(Schema):
    client_id = fields.String(required=True, validate=ID)
    therapist_id = fields.String(required=True, validate=ID)
    modality = fields.String(required=True, validate=validate.OneOf(MODALITIES))
    room = fields.String(validate=validate.Length(min=1, max=60), allow_none=True, load_default=None)
    first_starts_at = aware(required=True)


class CourseIn(_ManyIn):
    count = fields.Integer(load_default=16, validate=validate.Range(1, 52))
    interval_weeks = fields.Integer(load_default=1, validate=validate.Range(1, 8))


class BoostersIn(_ManyIn):
    count = fields.Integer(load_default=3, validate=validate.Range(1, 12))
    interval_months = fields.Integer(load_default=2, validate=validate.Range(1, 12),
                                     metadata={"description": "2 = 'bi-monthly', every two months"})


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
    dna_rate = fields.Float(allow_none=True, metadata={"description": "missed / (attended + missed)"})
    cancellations = fields.Integer()
    late_cancellations = fields.Integer()
    late_cancellation_rate = fields.Float(allow_none=True,
                                          metadata={"description": "late cancellations / sessions"})


class CalendarTokenOut(Schema):
    token = fields.String(metadata={"description": "shown once; only its SHA-256 is kept"})
    url = fields.String()


class CalendarQuery(Schema):
    token = fields.String(required=True, validate=validate.Length(min=1, max=200))
