"""Events of the scheduling service (topic rapport.scheduling)."""

from marshmallow import Schema, fields, validate

from ..events import registry
from .common import MODALITIES, PERSONAL, one_of, optional, utc

SESSION_KINDS = ("assessment", "treatment", "booster")
CANCELLED_BY = ("client", "therapist", "practice")


class WeeklyHours(Schema):
    weekday = fields.Integer(required=True, validate=validate.Range(0, 6))  # Monday = 0
    start = fields.String(required=True)  # "09:00", practice local time
    end = fields.String(required=True)


class Exception_(Schema):
    start_date = fields.Date(required=True)
    end_date = fields.Date(required=True)  # inclusive
    reason = fields.String(required=True)


@registry.event("TherapistRegistered", 1)
class TherapistRegisteredV1(Schema):
    therapist_id = fields.String(required=True)
    name = fields.String(required=True)
    email = fields.String(required=True)
    phone = optional(fields.String())
    modalities = fields.List(one_of(MODALITIES), required=True)
    rooms = fields.List(fields.String(), required=True)


@registry.event("AvailabilitySet", 1)
class AvailabilitySetV1(Schema):
    therapist_id = fields.String(required=True)
    weekly_hours = fields.List(fields.Nested(WeeklyHours), required=True)
    exceptions = fields.List(fields.Nested(Exception_), required=True)


class _SessionFacts(Schema):
    session_id = fields.String(required=True)
    client_id = fields.String(required=True)
    therapist_id = fields.String(required=True)
    starts_at = utc(required=True)
    ends_at = utc(required=True)


@registry.event("SessionBooked", 1)
class SessionBookedV1(_SessionFacts):
    kind = one_of(SESSION_KINDS, required=True)
    modality = one_of(MODALITIES, required=True)
    room = optional(fields.String())
    course_id = optional(fields.String())
    number = optional(fields.Integer())  # the session's number in its course, 1..n
    # a video session's room and the client's own join link (a credential: sealed under the
    # client's key, for the client's channels only; services/scheduling/domain/rooms.py)
    video_link = optional(fields.String(metadata=PERSONAL))
    video_room = optional(fields.String(metadata=PERSONAL))
    # optional addition: the booster plan (BoostersPlanned) the session was booked in, so a
    # consumer can tell a booster of a series (announced once, as a whole) from one booked alone
    plan_id = optional(fields.String())


class Unbooked(Schema):
    number = fields.Integer(required=True)
    wanted_at = utc(required=True)
    reason = fields.String(required=True)
    alternatives = fields.List(utc(), required=True)


@registry.event("CourseBooked", 1)
class CourseBookedV1(Schema):
    course_id = fields.String(required=True)
    client_id = fields.String(required=True)
    therapist_id = fields.String(required=True)
    session_ids = fields.List(fields.String(), required=True)
    count = fields.Integer(required=True)
    interval_weeks = fields.Integer(required=True)
    first_starts_at = utc(required=True)
    unbooked = fields.List(fields.Nested(Unbooked), required=True)


@registry.event("SessionRescheduled", 1)
class SessionRescheduledV1(_SessionFacts):
    previous_starts_at = utc(required=True)
    modality = one_of(MODALITIES, required=True)
    room = optional(fields.String())
    reason = optional(fields.String(metadata=PERSONAL))
    # optional additions: the room of the new time when it is by video (None otherwise), so
    # a session changed to video gets its link and a moved one a new room
    video_link = optional(fields.String(metadata=PERSONAL))
    video_room = optional(fields.String(metadata=PERSONAL))


@registry.event("SessionCancelled", 1)
class SessionCancelledV1(_SessionFacts):
    by = one_of(CANCELLED_BY, required=True)
    reason = fields.String(required=True, metadata=PERSONAL)
    late = fields.Boolean(required=True)  # less than 24 h before the start


@registry.event("SessionAttended", 1)
class SessionAttendedV1(_SessionFacts):
    kind = one_of(SESSION_KINDS, required=True)
    # optional additions: a course session's course and number (records completes the
    # course when session 16 is attended)
    course_id = optional(fields.String())
    number = optional(fields.Integer())


@registry.event("SessionMissed", 1)
class SessionMissedV1(_SessionFacts):
    kind = one_of(SESSION_KINDS, required=True)


@registry.event("BoostersPlanned", 1)
class BoostersPlannedV1(Schema):
    client_id = fields.String(required=True)
    therapist_id = fields.String(required=True)
    session_ids = fields.List(fields.String(), required=True)
    count = fields.Integer(required=True)
    interval_months = fields.Integer(required=True)
    # optional additions: which plan, when it starts, and (as CourseBooked) what could not
    # be booked with alternatives, so nothing is silently dropped
    plan_id = optional(fields.String())
    first_starts_at = optional(utc())
    unbooked = optional(fields.List(fields.Nested(Unbooked)))


# -- booking links (issue 17): a person picks one of the times offered, on their phone ------
# The link's token is a credential: it is never in an event (only its hash is stored).
@registry.event("BookingLinkIssued", 1)
class BookingLinkIssuedV1(Schema):
    link_id = fields.String(required=True)
    client_id = fields.String(required=True)  # a client, or the id reserved for an enquirer
    enquiry_id = optional(fields.String())
    therapist_id = fields.String(required=True)
    kind = one_of(SESSION_KINDS, required=True)
    modality = one_of(MODALITIES, required=True)
    room = optional(fields.String())
    starts = fields.List(utc(), required=True)
    expires_at = utc(required=True)


@registry.event("BookingLinkUsed", 1)
class BookingLinkUsedV1(Schema):
    """The person booked `session_id` through the link (its `SessionBooked` is in the same
    append); the link is spent."""

    link_id = fields.String(required=True)
    client_id = fields.String(required=True)
    session_id = fields.String(required=True)
    starts_at = utc(required=True)
    used_at = utc(required=True)


@registry.event("SessionLinkIssued", 1)
class SessionLinkIssuedV1(Schema):
    """Reception sent the client a link to cancel or move one session themselves (issue 17);
    the token is never in the event (notifications fetches one per message)."""

    link_id = fields.String(required=True)
    session_id = fields.String(required=True)
    client_id = fields.String(required=True)
    therapist_id = fields.String(required=True)
    starts_at = utc(required=True)  # the session's time when the link was issued
    expires_at = utc(required=True)  # at the session's start at the latest


@registry.event("SessionLinkUsed", 1)
class SessionLinkUsedV1(Schema):
    """The client cancelled or moved the session by the link (its `SessionCancelled` or
    `SessionRescheduled` is in the same append); the link is spent."""

    link_id = fields.String(required=True)
    session_id = fields.String(required=True)
    client_id = fields.String(required=True)
    action = one_of(("cancel", "reschedule"), required=True)
    starts_at = optional(utc())  # the new time, when moved
    used_at = utc(required=True)
