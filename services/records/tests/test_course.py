"""Course completion and maintenance, given/when/then, pure (clinical.md: completing the
16-session course and leaving the practice are different events; John went on to boosters)."""

from services.records.domain import commands as c
from services.records.domain import record
from services.records.domain.course import CompleteCourse
from shared.domain import Conflict, Invalid, fold
from shared.events import NewEvent
from testkit.given import given

from .test_domain import AT, CID, DISCHARGED, FORMULATED, REGISTERED, phase

ENDING = [REGISTERED, FORMULATED, phase(None, "initial"), phase("initial", "middle")]
ENDING.append(phase("middle", "ending"))


def by_therapist(**kw):
    fields = {
        "ended": "therapist",
        "completed_at": AT,
        "by": "t1",
        "sessions_attended": 16,
        "outcome": "recovered",
        "outcome_summary": "rebuilt tennis, biking, walking and friendships",
    }
    return CompleteCourse(CID, **{**fields, **kw})


def completed(**kw):
    data = {
        "client_id": CID,
        "therapist_id": "t1",
        "ended": "therapist",
        "session_id": None,
        "outcome": "recovered",
        "outcome_summary": "rebuilt tennis, biking, walking and friendships",
        "sessions_attended": 16,
        "completed_at": AT,
        "by": "t1",
    }
    return NewEvent("CourseCompleted", {**data, **kw})


def test_the_therapist_completes_the_course_with_its_outcome_and_the_client_stays_in_care():
    given(record, ENDING).when(by_therapist()).then([completed()])
    state = fold(record, [*ENDING, completed()])
    assert state.status == "active" and state.course["outcome"] == "recovered"


def test_completing_into_maintenance_moves_the_phase_in_the_same_append():
    maintenance = NewEvent(
        "PhaseChanged",
        {
            "client_id": CID,
            "from_phase": "ending",
            "to_phase": "maintenance",
            "reason": "course completed; maintenance with booster sessions",
            "by": "t1",
        },
    )
    given(record, ENDING).when(by_therapist(maintenance=True)).then([completed(), maintenance])


def test_maintenance_is_refused_from_the_middle_phase_naming_the_field():
    middle = ENDING[:-1]
    given(record, middle).when(by_therapist(maintenance=True)).then_raises(
        Conflict, "move to the ending phase first"
    )


def test_attending_session_16_completes_the_course_and_the_therapist_adds_the_outcome():
    final = CompleteCourse(
        CID,
        ended="final_session",
        completed_at=AT,
        by="system",
        sessions_attended=16,
        session_id="s16",
    )
    auto = completed(
        ended="final_session", session_id="s16", outcome=None, outcome_summary=None, by="system"
    )
    given(record, ENDING).when(final).then([auto])
    outcome = NewEvent(
        "CourseOutcomeRecorded",
        {"client_id": CID, "outcome": "improved", "outcome_summary": None, "by": "t1"},
    )
    given(record, [*ENDING, auto]).when(
        by_therapist(outcome="improved", outcome_summary=None)
    ).then([outcome])
    state = fold(record, [*ENDING, auto, outcome])
    assert state.course["outcome"] == "improved" and state.course["ended"] == "final_session"
    # the same final session again (a redelivery, a rebuilt queue) completes nothing
    given(record, [*ENDING, auto]).when(final).then_raises(Conflict, "already completed")


def test_a_course_is_completed_once_and_not_after_discharge():
    given(record, [*ENDING, completed()]).when(by_therapist()).then_raises(
        Conflict, "was completed on"
    )
    given(record, [*ENDING, DISCHARGED]).when(by_therapist()).then_raises(Conflict, "discharged")


def test_the_therapist_must_say_how_the_course_ended():
    given(record, ENDING).when(by_therapist(outcome=None)).then_raises(Invalid, "how the course")


def test_a_new_acute_course_after_maintenance_can_be_completed_again():
    history = [
        *ENDING,
        completed(),
        phase("ending", "maintenance"),
        phase("maintenance", "initial"),
    ]
    assert fold(record, history).course is None
    given(record, history).when(by_therapist()).then_types("CourseCompleted")


def test_discharge_carries_the_staff_answer_about_boosters_only_when_given():
    cmd = c.DischargeClient(CID, "moved away", "well", AT, cancel_boosters=True)
    (event,) = given(record, ENDING).when(cmd).then_types("ClientDischarged")
    assert event.data["cancel_boosters"] is True
    (event,) = (
        given(record, ENDING)
        .when(c.DischargeClient(CID, "moved away", "well", AT))
        .then_types("ClientDischarged")
    )
    assert "cancel_boosters" not in event.data
