"""An enquiry's rules, given/when/then, pure (no broker, no store)."""

from datetime import UTC, date, datetime, timedelta

from services.records.domain import enquiry as e
from shared.domain import Conflict, Invalid, NotFound, fold
from shared.events import NewEvent
from testkit.given import given

AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
IDS = {"enquiry_id": "enq-1", "client_id": "client-1"}
DETAILS = {
    "given_name": "Sam",
    "family_name": "Okafor",
    "email": None,
    "phone": "07700 900123",
    "contact_by": "phone",
    "concern": "Low since my mother died in the spring; not sleeping",
    "preferred_modality": "telephone",
    "preferred_times": "weekday evenings",
    "heard_from": "my GP",
    "consent_to_contact": True,
}
RECEIVED = NewEvent("EnquiryReceived", {**IDS, **DETAILS, "received_at": AT})


def receive(**changes):
    return e.ReceiveEnquiry(**{**IDS, **DETAILS, "received_at": AT, **changes})


def waitlisted(priority="routine", added_at=AT):
    return NewEvent(
        "EnquiryWaitlisted", {**IDS, "priority": priority, "by": "u-rec", "added_at": added_at}
    )


def test_an_enquiry_is_received_with_everything_the_person_said():
    given(e.enquiry).when(receive()).then([RECEIVED])


def test_no_consent_to_contact_is_refused_naming_the_field():
    err = given(e.enquiry).when(receive(consent_to_contact=False)).then_raises(Invalid)
    assert err.field == "consent_to_contact"


def test_the_chosen_way_of_contact_needs_its_detail():
    err = given(e.enquiry).when(receive(contact_by="email")).then_raises(Invalid, "email")
    assert err.field == "email"
    err = (
        given(e.enquiry)
        .when(receive(contact_by="sms", phone=None, email="a@b.org"))
        .then_raises(Invalid)
    )
    assert err.field == "phone"


def test_contact_attempts_are_logged_in_order():
    later = AT + timedelta(hours=3)
    first = NewEvent(
        "EnquiryContactAttempted",
        {
            **IDS,
            "channel": "phone",
            "outcome": "no_answer",
            "note": None,
            "by": "u-rec",
            "attempted_at": AT,
        },
    )
    given(e.enquiry, [RECEIVED]).when(e.LogContactAttempt("phone", "no_answer", "u-rec", AT)).then(
        [first]
    )
    state = fold(e.enquiry, [RECEIVED, first, first])
    assert len(state.attempts) == 2 and state.status == "received"
    given(e.enquiry, [RECEIVED, first]).when(
        e.LogContactAttempt("phone", "reached", "u-rec", later, "will think about times")
    ).then_types("EnquiryContactAttempted")


def test_waiting_list_keeps_the_date_first_added_when_the_priority_changes():
    later = AT + timedelta(weeks=3)
    given(e.enquiry, [RECEIVED]).when(e.AddToWaitingList("routine", "u-rec", AT)).then(
        [waitlisted()]
    )
    given(e.enquiry, [RECEIVED, waitlisted()]).when(
        e.AddToWaitingList("urgent", "u-lead", later)
    ).then(
        [
            NewEvent(
                "EnquiryWaitlisted", {**IDS, "priority": "urgent", "by": "u-lead", "added_at": AT}
            )
        ]
    )
    given(e.enquiry, [RECEIVED, waitlisted()]).when(
        e.AddToWaitingList("routine", "u-rec", later)
    ).then_raises(Conflict, "already")


def test_weeks_waiting_count_whole_weeks_since_added():
    assert e.weeks_waiting(AT, date(2026, 3, 2)) == 0
    assert e.weeks_waiting(AT, date(2026, 3, 15)) == 1
    assert e.weeks_waiting(AT, date(2026, 3, 16)) == 2


def test_declined_enquiry_takes_no_further_step():
    declined = NewEvent(
        "EnquiryDeclined",
        {
            **IDS,
            "reason": "needs specialist eating disorder service",
            "signposted_to": "local eating disorder service",
            "by": "u-lead",
            "declined_at": AT,
        },
    )
    given(e.enquiry, [RECEIVED]).when(
        e.DeclineEnquiry(
            "needs specialist eating disorder service",
            "u-lead",
            AT,
            "local eating disorder service",
        )
    ).then([declined])
    given(e.enquiry, [RECEIVED, declined]).when(
        e.AddToWaitingList("routine", "u-rec", AT)
    ).then_raises(Conflict, "declined")
    given(e.enquiry, [RECEIVED, declined]).when(e.ConvertEnquiry("u-rec", AT)).then_raises(Conflict)


def test_offering_and_converting():
    offered = NewEvent(
        "AssessmentOffered", {**IDS, "therapist_id": "t1", "by": "u-rec", "offered_at": AT}
    )
    given(e.enquiry, [RECEIVED, waitlisted()]).when(e.OfferAssessment("t1", "u-rec", AT)).then(
        [offered]
    )
    given(e.enquiry, [RECEIVED, waitlisted(), offered]).when(e.ConvertEnquiry("u-rec", AT)).then(
        [NewEvent("EnquiryConverted", {**IDS, "by": "u-rec", "registered_at": AT})]
    )


def test_registration_carries_the_enquiry_over_and_adds_only_what_it_lacks():
    state = fold(e.enquiry, [RECEIVED])
    details = e.registration(state, {"date_of_birth": date(1990, 1, 2), "therapist_id": "t1"})
    assert details == {
        "client_id": "client-1",
        "given_name": "Sam",
        "family_name": "Okafor",
        "email": None,
        "phone": "07700 900123",
        "preferred_modality": "telephone",
        "reminder_channels": ("sms",),
        "referral_source": "self (enquiry; heard of us: my GP)",
        "date_of_birth": date(1990, 1, 2),
        "therapist_id": "t1",
    }


def test_an_unconverted_enquiry_is_disposed_of_only_after_a_year_from_its_last_step():
    declined_at = AT + timedelta(days=10)
    declined = NewEvent(
        "EnquiryDeclined",
        {**IDS, "reason": "r", "signposted_to": None, "by": "u", "declined_at": declined_at},
    )
    history = [RECEIVED, declined]
    given(e.enquiry, history).when(e.DisposeEnquiry(declined_at + timedelta(days=364))).then_raises(
        Conflict, "kept until"
    )
    end = declined_at + e.RETENTION
    given(e.enquiry, history).when(e.DisposeEnquiry(end)).then(
        [NewEvent("EnquiryDisposed", {**IDS, "retention_ended_at": end, "disposed_at": end})]
    )
    disposed = NewEvent("EnquiryDisposed", {**IDS, "retention_ended_at": end, "disposed_at": end})
    given(e.enquiry, [*history, disposed]).when(e.DisposeEnquiry(end)).then([])


def test_a_converted_enquiry_is_kept_with_the_client_record():
    converted = NewEvent("EnquiryConverted", {**IDS, "by": "u", "registered_at": AT})
    given(e.enquiry, [RECEIVED, converted]).when(
        e.DisposeEnquiry(AT + timedelta(days=4000))
    ).then_raises(Conflict, "client record")


def test_steps_on_no_enquiry_are_not_found():
    given(e.enquiry).when(e.OfferAssessment("t1", "u", AT)).then_raises(NotFound)
    given(e.enquiry).when(e.DisposeEnquiry(AT)).then_raises(NotFound)
