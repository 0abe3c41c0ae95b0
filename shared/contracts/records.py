"""Events of the records service (topic rapport.records)."""

from marshmallow import Schema, fields

from ..events import registry
from .common import MODALITIES, PERSONAL, one_of, optional, utc

CHANNELS = ("email", "sms")
CONDITIONS = (
    "depression",
    "bipolar_disorder",
    "borderline_personality_disorder",
    "eating_disorder",
    "anxiety",
    "other",
)
PROBLEM_AREAS = ("grief", "role_dispute", "role_transition", "interpersonal_deficits")
PHASES = ("initial", "middle", "ending", "maintenance")
# how a course of treatment ended, as the therapist judges it (course completion, issue 17)
COURSE_OUTCOMES = ("recovered", "improved", "no_change", "deteriorated")
COURSE_ENDINGS = ("final_session", "therapist")  # session 16 attended, or ended by the therapist


class Gp(Schema):
    name = fields.String(required=True, metadata=PERSONAL)
    practice = fields.String(required=True, metadata=PERSONAL)


@registry.event("ClientRegistered", 1)
class ClientRegisteredV1(Schema):
    client_id = fields.String(required=True)
    given_name = fields.String(required=True, metadata=PERSONAL)
    family_name = fields.String(required=True, metadata=PERSONAL)
    date_of_birth = fields.Date(required=True, metadata=PERSONAL)
    email = optional(fields.String(metadata=PERSONAL))
    phone = optional(fields.String(metadata=PERSONAL))
    preferred_modality = one_of(MODALITIES, required=True)
    reminder_channels = fields.List(one_of(CHANNELS), required=True)  # consented channels
    therapist_id = fields.String(required=True)
    referral_source = fields.String(required=True, metadata=PERSONAL)  # free text: may name people
    gp = optional(fields.Nested(Gp))
    nhs_number = optional(fields.String(metadata=PERSONAL))


@registry.event("ClientDetailsCorrected", 1)
class ClientDetailsCorrectedV1(Schema):
    """Only the fields present changed (a reassigned therapist included)."""

    client_id = fields.String(required=True)
    reason = fields.String(required=True, metadata=PERSONAL)  # free text about the client
    given_name = fields.String(metadata=PERSONAL)
    family_name = fields.String(metadata=PERSONAL)
    date_of_birth = fields.Date(metadata=PERSONAL)
    email = fields.String(allow_none=True, metadata=PERSONAL)
    phone = fields.String(allow_none=True, metadata=PERSONAL)
    preferred_modality = one_of(MODALITIES)
    reminder_channels = fields.List(one_of(CHANNELS))
    therapist_id = fields.String()
    referral_source = fields.String(metadata=PERSONAL)
    gp = fields.Nested(Gp, allow_none=True)
    nhs_number = fields.String(allow_none=True, metadata=PERSONAL)


@registry.event("AssessmentRecorded", 1)
class AssessmentRecordedV1(Schema):
    client_id = fields.String(required=True)
    session_id = optional(fields.String())
    presenting_difficulties = fields.String(required=True, metadata=PERSONAL)
    conditions = fields.List(one_of(CONDITIONS), required=True, metadata=PERSONAL)  # diagnoses
    goals = fields.List(fields.String(metadata=PERSONAL), required=True)
    risk_summary = fields.String(required=True, metadata=PERSONAL)


class InventoryPerson(Schema):
    name = fields.String(required=True, metadata=PERSONAL)
    relationship = fields.String(required=True, metadata=PERSONAL)
    closeness = fields.Integer(required=True)  # ring 1 (inner) .. 3 (outer)
    good = fields.String(required=True, metadata=PERSONAL)
    hard = fields.String(required=True, metadata=PERSONAL)
    unilateral_partner = fields.Boolean(required=True)


@registry.event("FormulationRecorded", 1)
class FormulationRecordedV1(Schema):
    client_id = fields.String(required=True)
    revision = fields.Integer(required=True)
    problem_areas = fields.List(
        one_of(PROBLEM_AREAS), required=True, metadata=PERSONAL
    )  # one or two
    formulation = fields.String(required=True, metadata=PERSONAL)
    inventory = fields.List(fields.Nested(InventoryPerson), required=True)
    goals = fields.List(fields.String(metadata=PERSONAL), required=True)


@registry.event("PhaseChanged", 1)
class PhaseChangedV1(Schema):
    client_id = fields.String(required=True)
    from_phase = optional(one_of(PHASES))
    to_phase = one_of(PHASES, required=True)
    reason = fields.String(required=True, metadata=PERSONAL)
    by = fields.String(required=True)


@registry.event("NoteRecorded", 1)
class NoteRecordedV1(Schema):
    client_id = fields.String(required=True)
    note_id = fields.String(required=True)
    session_id = optional(fields.String())
    text = fields.String(required=True, metadata=PERSONAL)
    author = fields.String(required=True)
    amends = optional(fields.String())  # note_id this amends; the original stays
    amendment_reason = optional(fields.String(metadata=PERSONAL))  # why it was amended


@registry.event("TaskAssigned", 1)
class TaskAssignedV1(Schema):
    client_id = fields.String(required=True)
    task_id = fields.String(required=True)
    description = fields.String(required=True, metadata=PERSONAL)
    due_at = optional(utc())
    session_id = optional(fields.String())


@registry.event("TaskCompleted", 1)
class TaskCompletedV1(Schema):
    client_id = fields.String(required=True)
    task_id = fields.String(required=True)
    reflection = optional(fields.String(metadata=PERSONAL))
    completed_at = utc(required=True)


@registry.event("DiaryEntryWritten", 1)
class DiaryEntryWrittenV1(Schema):
    """The client's own words between sessions, written at their homework link: a diary
    entry (important events or feelings) or a reflection on a task. Sealed under the
    client's key; disposed of with the record."""

    client_id = fields.String(required=True)
    entry_id = fields.String(required=True)
    text = fields.String(required=True, metadata=PERSONAL)
    task_id = optional(fields.String())  # the task it reflects on, if any
    written_at = utc(required=True)


@registry.event("TaskReviewed", 1)
class TaskReviewedV1(Schema):
    """The task was gone over in a session (done or not: obstacles are discussed too)."""

    client_id = fields.String(required=True)
    task_id = fields.String(required=True)
    review = fields.String(required=True, metadata=PERSONAL)
    session_id = optional(fields.String())
    by = fields.String(required=True)


@registry.event("ClientDischarged", 1)
class ClientDischargedV1(Schema):
    client_id = fields.String(required=True)
    therapist_id = fields.String(required=True)
    reason = fields.String(required=True, metadata=PERSONAL)
    outcome_summary = fields.String(required=True, metadata=PERSONAL)
    discharged_at = utc(required=True)
    # optional addition: staff confirmed that the client's future booster sessions are to be
    # cancelled too (scheduling keeps boosters unless this is true: they were the client's
    # choice, and discharge must not cancel them silently)
    cancel_boosters = optional(fields.Boolean())


@registry.event("CourseCompleted", 1)
class CourseCompletedV1(Schema):
    """The course of treatment ended (session 16 attended, or the therapist ended it); the
    client stays in care (maintenance, boosters) until discharged (clinical.md)."""

    client_id = fields.String(required=True)
    therapist_id = fields.String(required=True)
    ended = one_of(COURSE_ENDINGS, required=True)
    session_id = optional(fields.String())  # the final session, when that ended it
    outcome = optional(one_of(COURSE_OUTCOMES, metadata=PERSONAL))  # None: not recorded yet
    outcome_summary = optional(fields.String(metadata=PERSONAL))
    sessions_attended = fields.Integer(required=True)
    completed_at = utc(required=True)
    by = fields.String(required=True)


@registry.event("CourseOutcomeRecorded", 1)
class CourseOutcomeRecordedV1(Schema):
    """The therapist's outcome of a course that ended with its final session."""

    client_id = fields.String(required=True)
    outcome = one_of(COURSE_OUTCOMES, required=True, metadata=PERSONAL)
    outcome_summary = optional(fields.String(metadata=PERSONAL))
    by = fields.String(required=True)


@registry.event("ErasureRefused", 1)
class ErasureRefusedV1(Schema):
    """A request to erase inside the retention period, refused and recorded (UK GDPR
    Art. 17(3)(c) with Art. 9(2)(h): records kept to provide care are not erased)."""

    client_id = fields.String(required=True)
    requested_by = fields.String(required=True, metadata=PERSONAL)  # often a named relative
    request = fields.String(required=True, metadata=PERSONAL)
    refusal = fields.String(required=True)
    retention_until = optional(utc())  # None while the client is still in treatment


@registry.event("ClientDisposed", 1)
class ClientDisposedV1(Schema):
    """End of retention: the client's key is destroyed after this event (crypto-shredding);
    every service forgets the client's personal data and keeps the counts."""

    client_id = fields.String(required=True)
    therapist_id = fields.String(required=True)
    retention_ended_at = utc(required=True)
    disposed_at = utc(required=True)


# -- enquiries (issue 17): someone who got in touch, before they are a client ---------------
# `client_id` is the id reserved for the person at enquiry: their data is sealed under that
# client's key, and a client registered from the enquiry keeps it (nothing retyped).
ENQUIRY_CONTACT_BY = ("phone", "sms", "email")
WAITLIST_PRIORITIES = ("routine", "soon", "urgent")


class EnquiryEvent(Schema):
    """What every enquiry event carries: the enquiry, and the client id reserved for the
    person (the key their personal data is sealed under, before and after they register)."""

    enquiry_id = fields.String(required=True)
    client_id = fields.String(required=True)


@registry.event("EnquiryReceived", 1)
class EnquiryReceivedV1(EnquiryEvent):
    given_name = fields.String(required=True, metadata=PERSONAL)
    family_name = fields.String(required=True, metadata=PERSONAL)
    email = optional(fields.String(metadata=PERSONAL))
    phone = optional(fields.String(metadata=PERSONAL))
    contact_by = one_of(ENQUIRY_CONTACT_BY, required=True)
    concern = fields.String(required=True, metadata=PERSONAL)  # what is troubling them
    preferred_modality = one_of(MODALITIES, required=True)
    preferred_times = optional(fields.String(metadata=PERSONAL))
    heard_from = optional(fields.String(metadata=PERSONAL))  # free text: may name people
    consent_to_contact = fields.Boolean(required=True)
    received_at = utc(required=True)


@registry.event("EnquiryContactAttempted", 1)
class EnquiryContactAttemptedV1(EnquiryEvent):
    channel = one_of(ENQUIRY_CONTACT_BY, required=True)
    outcome = fields.String(required=True)
    note = optional(fields.String(metadata=PERSONAL))
    by = fields.String(required=True)
    attempted_at = utc(required=True)


@registry.event("AssessmentOffered", 1)
class AssessmentOfferedV1(EnquiryEvent):
    therapist_id = fields.String(required=True)
    by = fields.String(required=True)
    offered_at = utc(required=True)


@registry.event("EnquiryWaitlisted", 1)
class EnquiryWaitlistedV1(EnquiryEvent):
    """Put on the waiting list, or its priority changed (`added_at` stays the first date)."""

    priority = one_of(WAITLIST_PRIORITIES, required=True)
    by = fields.String(required=True)
    added_at = utc(required=True)


@registry.event("EnquiryDeclined", 1)
class EnquiryDeclinedV1(EnquiryEvent):
    reason = fields.String(required=True, metadata=PERSONAL)
    signposted_to = optional(fields.String(metadata=PERSONAL))
    by = fields.String(required=True)
    declined_at = utc(required=True)


@registry.event("EnquiryConverted", 1)
class EnquiryConvertedV1(EnquiryEvent):
    """Registered as a client (`ClientRegistered` of `client_id`, in the same append)."""

    by = fields.String(required=True)
    registered_at = utc(required=True)


@registry.event("EnquiryDisposed", 1)
class EnquiryDisposedV1(EnquiryEvent):
    """End of an unconverted enquiry's retention: the reserved client key is destroyed after
    this event (crypto-shredding) and every service forgets it (shared/disposal.py)."""

    retention_ended_at = utc(required=True)
    disposed_at = utc(required=True)
