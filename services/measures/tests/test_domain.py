"""Deciders in given/when/then form (Emmett), no database, no Flask."""

from datetime import UTC, datetime, timedelta

from services.measures.domain import (
    AcknowledgeRisk,
    CompleteQuestionnaire,
    InstrumentSetDecider,
    OutcomeDecider,
    PublishOutcome,
    QuestionnaireRequestDecider,
    RequestQuestionnaire,
    ResponseDecider,
    RiskAlertDecider,
    SetInstruments,
    WithdrawQuestionnaire,
    alert_id_for,
    request_id_for,
    risk_events,
)
from shared.domain import Conflict, Invalid, NotFound
from shared.events import NewEvent
from testkit.given import given

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
STARTS = NOW + timedelta(days=7)
RID = request_id_for("s-1")
requests = QuestionnaireRequestDecider()


def request(starts=STARTS, now=NOW):
    return RequestQuestionnaire(
        RID,
        "c-1",
        "t-1",
        "s-1",
        ("PHQ-9", "GAD-7"),
        starts,
        starts + timedelta(minutes=50),
        now,
        "course-1",
        3,
    )


def requested(starts=STARTS, now=NOW):
    return NewEvent(
        "QuestionnaireRequested",
        {
            "request_id": RID,
            "client_id": "c-1",
            "therapist_id": "t-1",
            "session_id": "s-1",
            "instruments": ["PHQ-9", "GAD-7"],
            "due_at": max(now, starts - timedelta(hours=48)),
            "session_starts_at": starts,
            "expires_at": starts + timedelta(minutes=50),
            "course_id": "course-1",
            "session_number": 3,
        },
    )


def complete(phq9=None, gad7=None, source="link", now=NOW + timedelta(days=6)):
    return CompleteQuestionnaire(
        "r-1", "c-1", "t-1", {"PHQ-9": phq9 or [1] * 9, "GAD-7": gad7 or [1] * 7}, source, now
    )


def test_request_ids_are_derived_from_the_session():
    assert request_id_for("s-1") == RID != request_id_for("s-2")


def test_a_booking_requests_the_questionnaires_48_hours_before():
    events = given(requests).when(request()).then([requested()])
    assert events[0].data["due_at"] == STARTS - timedelta(hours=48)


def test_a_session_booked_for_tomorrow_is_due_at_once():
    soon = NOW + timedelta(hours=20)
    events = given(requests).when(request(starts=soon)).then([requested(starts=soon)])
    assert events[0].data["due_at"] == NOW


def test_the_same_booking_delivered_twice_requests_once():
    given(requests, [requested()]).when(request(now=NOW + timedelta(minutes=5))).then([])


def test_a_reschedule_moves_the_request():
    later = STARTS + timedelta(days=2)
    given(requests, [requested()]).when(request(starts=later)).then([requested(starts=later)])


def test_no_request_for_a_session_already_over():
    given(requests).when(request(now=STARTS + timedelta(hours=2))).then([])


def test_a_cancellation_withdraws_once():
    withdrawn = NewEvent(
        "QuestionnaireWithdrawn",
        {"request_id": RID, "client_id": "c-1", "reason": "session cancelled"},
    )
    given(requests, [requested()]).when(WithdrawQuestionnaire("session cancelled")).then(
        [withdrawn]
    )
    given(requests, [requested(), withdrawn]).when(WithdrawQuestionnaire("again")).then([])
    given(requests, [requested(), withdrawn]).when(complete()).then_raises(Conflict, "withdrawn")


def test_completion_scores_and_carries_the_session_facts():
    [event] = (
        given(requests, [requested()])
        .when(complete(phq9=[2] * 9))
        .then_types("QuestionnaireCompleted")
    )
    d = event.data
    assert (d["request_id"], d["session_id"], d["course_id"], d["session_number"]) == (
        RID,
        "s-1",
        "course-1",
        3,
    )
    assert [(s["instrument"], s["total"], s["band"]) for s in d["scores"]] == [
        ("PHQ-9", 18.0, "moderately severe"),
        ("GAD-7", 7.0, "mild"),
    ]


def test_a_score_is_computed_exactly_once():
    done = given(requests, [requested()]).when(complete()).then_types("QuestionnaireCompleted")
    given(requests, [requested(), *done]).when(complete()).then_raises(Conflict, "already")


def test_a_link_answer_after_expiry_is_refused_but_staff_may_enter_it_in_session():
    late = STARTS + timedelta(hours=3)
    given(requests, [requested()]).when(complete(now=late)).then_raises(Conflict, "expired")
    given(requests, [requested()]).when(complete(now=late, source="staff")).then_types(
        "QuestionnaireCompleted"
    )


def test_incomplete_or_out_of_range_answers_name_the_item():
    err = (
        given(requests, [requested()])
        .when(complete(phq9=[1] * 8 + [4]))
        .then_raises(Invalid, "item 9")
    )
    assert err.field == "answers.PHQ-9.9"
    only_phq = CompleteQuestionnaire("r-1", "c-1", "t-1", {"PHQ-9": [0] * 9}, "link", NOW)
    given(requests, [requested()]).when(only_phq).then_raises(Invalid, "GAD-7")
    given(requests).when(complete()).then_raises(NotFound)


def test_risk_items_raise_one_alert_each():
    answers = {"PHQ-9": [0] * 8 + [2], "CORE-10": [0] * 5 + [1] + [0] * 4}
    staff = CompleteQuestionnaire("r-9", "c-1", "t-1", answers, "staff", NOW)
    [completed] = given(ResponseDecider()).when(staff).then_types("QuestionnaireCompleted")
    alerts = risk_events(completed)
    assert [(a, e.data["instrument"], e.data["item"], e.data["answer"]) for a, e in alerts] == [
        (alert_id_for("r-9", "PHQ-9", 9), "PHQ-9", 9, 2),
        (alert_id_for("r-9", "CORE-10", 6), "CORE-10", 6, 1),
    ]
    none = (
        given(ResponseDecider())
        .when(complete(phq9=[1] * 8 + [0]))
        .then_types("QuestionnaireCompleted")
    )
    assert risk_events(none[0]) == []


def test_staff_and_link_follow_one_rule_unscorable_answers_are_refused():
    # issue 15 #12: staff-entered answers were stored unscored where the link refused them
    for source in ("staff", "link"):
        blank_item_9 = CompleteQuestionnaire(
            "r-2", "c-1", "t-1", {"PHQ-9": [1] * 8 + [None]}, source, NOW
        )
        err = given(ResponseDecider()).when(blank_item_9).then_raises(Invalid, "PHQ-9 item 9")
        assert err.field == "answers.PHQ-9.9"


def test_an_unanswered_risk_item_raises_an_alert_to_follow_up():
    # CORE-10 is scored with one item missing (pro-rated); when that item is item 6, the
    # therapist is still asked to follow it up (items 2 and 3 reverse-scored: 13 / 9 x 10)
    staff = CompleteQuestionnaire(
        "r-3", "c-1", "t-1", {"CORE-10": [1] * 5 + [None] + [1] * 4}, "staff", NOW
    )
    [completed] = given(ResponseDecider()).when(staff).then_types("QuestionnaireCompleted")
    assert completed.data["scores"][0]["total"] == 14.44 and completed.data["scores"][0]["prorated"]
    [(alert_id, alert)] = risk_events(completed)
    assert (alert.data["instrument"], alert.data["item"], alert.data["answer"]) == (
        "CORE-10",
        6,
        None,
    )


RAISED = NewEvent(
    "RiskIndicated",
    {
        "alert_id": "a-1",
        "client_id": "c-1",
        "therapist_id": "t-1",
        "response_id": "r-1",
        "instrument": "PHQ-9",
        "item": 9,
        "answer": 1,
        "indicated_at": NOW,
    },
)


def test_an_alert_is_acknowledged_once_with_who_when_and_a_note():
    ack = AcknowledgeRisk("lead-1", "phoned the client; safety plan reviewed", NOW)
    done = (
        given(RiskAlertDecider(), [RAISED])
        .when(ack)
        .then(
            [
                NewEvent(
                    "RiskAcknowledged",
                    {
                        "alert_id": "a-1",
                        "client_id": "c-1",
                        "by": "lead-1",
                        "note": "phoned the client; safety plan reviewed",
                        "acknowledged_at": NOW,
                    },
                )
            ]
        )
    )
    given(RiskAlertDecider(), [RAISED, *done]).when(ack).then_raises(Conflict, "lead-1")
    given(RiskAlertDecider()).when(ack).then_raises(NotFound)
    given(RiskAlertDecider(), [RAISED]).when(AcknowledgeRisk("x", "  ", NOW)).then_raises(Invalid)


def test_an_outcome_is_published_only_when_it_changes():
    data = {"client_id": "c-1", "phq9": {"first": 16.0, "last": None, "change": None}}
    first = given(OutcomeDecider()).when(PublishOutcome(data)).then_types("OutcomeUpdated")
    same = {"client_id": "c-1", "phq9": {"first": 16, "last": None, "change": None}}
    given(OutcomeDecider(), first).when(PublishOutcome(same)).then([])
    moved = {"client_id": "c-1", "phq9": {"first": 16.0, "last": 8.0, "change": -8.0}}
    given(OutcomeDecider(), first).when(PublishOutcome(moved)).then_types("OutcomeUpdated")


def test_instrument_sets():
    chosen = SetInstruments("c-1", ("PHQ-9", "GAD-7", "CORE-10"))
    done = (
        given(InstrumentSetDecider())
        .when(chosen)
        .then(
            [
                NewEvent(
                    "InstrumentsConfigured",
                    {"client_id": "c-1", "instruments": ["PHQ-9", "GAD-7", "CORE-10"]},
                )
            ]
        )
    )
    given(InstrumentSetDecider(), done).when(chosen).then([])
    given(InstrumentSetDecider()).when(SetInstruments("c-1", ())).then_raises(Invalid)
    given(InstrumentSetDecider()).when(SetInstruments("c-1", ("BDI",))).then_raises(Invalid, "BDI")
