"""The client record's rules, given/when/then, pure (no broker, no store)."""

from datetime import UTC, date, datetime

import pytest

from services.records.domain import commands as c
from services.records.domain import record
from services.records.domain.rules import nhs_number_problem, suggested_phase
from shared.domain import Conflict, Invalid, NotFound, fold
from shared.events import NewEvent
from testkit.given import given

CID = "client-emma"
AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)

REGISTERED = NewEvent(
    "ClientRegistered",
    {
        "client_id": CID,
        "given_name": "Emma",
        "family_name": "Wood",
        "date_of_birth": date(1981, 4, 12),
        "email": "emma@example.org",
        "phone": None,
        "preferred_modality": "video",
        "reminder_channels": ["email"],
        "therapist_id": "t1",
        "referral_source": "GP",
        "gp": None,
        "nhs_number": None,
    },
)
FORMULATED = NewEvent(
    "FormulationRecorded",
    {
        "client_id": CID,
        "revision": 1,
        "problem_areas": ["role_dispute"],
        "formulation": "Depression since a dispute with her husband over the new job",
        "inventory": [],
        "goals": ["share the housework"],
    },
)


def phase(frm, to):
    return NewEvent(
        "PhaseChanged",
        {"client_id": CID, "from_phase": frm, "to_phase": to, "reason": "r", "by": "t1"},
    )


NOTE = NewEvent(
    "NoteRecorded",
    {
        "client_id": CID,
        "note_id": "n1",
        "session_id": "s1",
        "text": "Session 1: low mood",
        "author": "t1",
        "amends": None,
        "amendment_reason": None,
    },
)
TASK = NewEvent(
    "TaskAssigned",
    {"client_id": CID, "task_id": "k1", "description": "diary", "due_at": None, "session_id": "s1"},
)
DISCHARGED = NewEvent(
    "ClientDischarged",
    {
        "client_id": CID,
        "therapist_id": "t1",
        "reason": "course complete",
        "outcome_summary": "mood lifted",
        "discharged_at": AT,
    },
)


def register(**overrides):
    fields = {
        "client_id": CID,
        "given_name": "Emma",
        "family_name": "Wood",
        "date_of_birth": date(1981, 4, 12),
        "preferred_modality": "video",
        "reminder_channels": ("email",),
        "therapist_id": "t1",
        "referral_source": "GP",
        "email": "emma@example.org",
    }
    return c.RegisterClient(**{**fields, **overrides})


# -- registration and the NHS number -------------------------------------------------------
def test_registering_a_client_records_the_details():
    given(record).when(register()).then([REGISTERED])


@pytest.mark.parametrize(
    "number, stored",
    [
        ("9434765919", "9434765919"),  # 9,4,3,4,7,6,5,9,1 x 10..2 = 299; 299 % 11 = 2; 11 - 2 = 9
        ("943 476 5919", "9434765919"),  # spaced as printed on NHS letters
        ("401-023-2137", "4010232137"),  # 92 % 11 = 4; 11 - 4 = 7
        ("1000000060", "1000000060"),  # 10 + 6 x 2 = 22; 22 % 11 = 0; 11 - 0 = 11 -> check digit 0
    ],
)
def test_a_valid_nhs_number_is_stored_without_separators(number, stored):
    events = given(record).when(register(nhs_number=number)).then_types("ClientRegistered")
    assert events[0].data["nhs_number"] == stored


@pytest.mark.parametrize(
    "number, why",
    [
        ("9434765918", "check digit does not match"),  # last digit mistyped
        ("9434765991", "check digit does not match"),  # two digits transposed
        ("1000000061", "check digit does not match"),
        ("943476591", "10 digits"),
        ("94347659AB", "10 digits"),
        ("1234567890", "no check digit"),  # 210 % 11 = 1; 11 - 1 = 10: never issued
    ],
)
def test_an_invalid_nhs_number_is_refused_naming_the_field(number, why):
    error = given(record).when(register(nhs_number=number)).then_raises(Invalid, why)
    assert error.field == "nhs_number"
    assert nhs_number_problem(number) is not None


def test_a_reminder_channel_needs_its_contact_detail():
    error = (
        given(record).when(register(reminder_channels=("email", "sms"))).then_raises(Invalid, "sms")
    )
    assert error.field == "phone"


def test_a_client_is_registered_once():
    given(record, [REGISTERED]).when(register()).then_raises(Conflict, "already registered")


# -- corrections ---------------------------------------------------------------------------
def test_reassigning_the_therapist_is_a_correction_with_a_reason():
    given(record, [REGISTERED]).when(
        c.CorrectDetails(
            CID, "therapist on long leave", {"therapist_id": "t2", "given_name": "Emma"}
        )
    ).then(
        [
            NewEvent(
                "ClientDetailsCorrected",
                {"client_id": CID, "reason": "therapist on long leave", "therapist_id": "t2"},
            )
        ]
    )


def test_a_correction_that_changes_nothing_is_refused():
    given(record, [REGISTERED]).when(
        c.CorrectDetails(CID, "typo", {"given_name": "Emma"})
    ).then_raises(Invalid, "nothing differs")


def test_clearing_the_email_of_an_email_reminded_client_is_refused():
    given(record, [REGISTERED]).when(c.CorrectDetails(CID, "moved", {"email": None})).then_raises(
        Invalid, "email"
    )


def test_correcting_an_unknown_client_is_not_found():
    given(record).when(c.CorrectDetails(CID, "x", {"phone": "1"})).then_raises(NotFound)


# -- assessment and formulation ------------------------------------------------------------
def test_formulation_revisions_count_up():
    cmd = c.RecordFormulation(
        CID,
        ("grief",),
        "f",
        (
            {
                "name": "Ann",
                "relationship": "late wife",
                "closeness": 1,
                "good": "g",
                "hard": "h",
                "unilateral_partner": False,
            },
        ),
        ("walk",),
    )
    events = given(record, [REGISTERED, FORMULATED]).when(cmd).then_types("FormulationRecorded")
    assert events[0].data["revision"] == 2


@pytest.mark.parametrize(
    "areas", [(), ("grief", "role_dispute", "role_transition"), ("grief", "grief")]
)
def test_a_formulation_has_one_or_two_different_problem_areas(areas):
    cmd = c.RecordFormulation(CID, areas, "f", (), ())
    given(record, [REGISTERED]).when(cmd).then_raises(Invalid, "one or two")


def test_closeness_is_one_of_three_rings():
    person = {
        "name": "Tom",
        "relationship": "husband",
        "closeness": 4,
        "good": "",
        "hard": "",
        "unilateral_partner": True,
    }
    error = (
        given(record, [REGISTERED])
        .when(c.RecordFormulation(CID, ("role_dispute",), "f", (person,), ()))
        .then_raises(Invalid)
    )
    assert error.field == "inventory.0.closeness"


def test_a_stale_formulation_revision_is_a_conflict():
    cmd = c.RecordFormulation(CID, ("grief",), "f", (), (), expected_revision=0)
    given(record, [REGISTERED, FORMULATED]).when(cmd).then_raises(Conflict, "revision 1")


# -- phases --------------------------------------------------------------------------------
def test_the_first_phase_is_initial():
    given(record, [REGISTERED]).when(c.ChangePhase(CID, "initial", "first session", "t1")).then(
        [
            NewEvent(
                "PhaseChanged",
                {
                    "client_id": CID,
                    "from_phase": None,
                    "to_phase": "initial",
                    "reason": "first session",
                    "by": "t1",
                },
            )
        ]
    )
    given(record, [REGISTERED]).when(c.ChangePhase(CID, "middle", "x", "t1")).then_raises(
        Conflict, "allowed: initial"
    )


def test_the_middle_phase_needs_a_formulation():
    given(record, [REGISTERED, phase(None, "initial")]).when(
        c.ChangePhase(CID, "middle", "session 5", "t1")
    ).then_raises(Conflict, "formulation")
    given(record, [REGISTERED, FORMULATED, phase(None, "initial")]).when(
        c.ChangePhase(CID, "middle", "session 5", "t1")
    ).then_types("PhaseChanged")


@pytest.mark.parametrize(
    "history, target",
    [
        (["initial"], "ending"),  # skipping the middle phase
        (["initial"], "maintenance"),
        (["initial", "middle", "ending"], "initial"),  # two steps back
        (["initial", "middle", "ending", "maintenance"], "middle"),
        (["initial", "middle"], "middle"),  # no change
    ],
)
def test_phase_order_refuses_skips_and_long_steps_back(history, target):
    events = [REGISTERED, FORMULATED]
    for frm, to in zip([None, *history], history, strict=False):
        events.append(phase(frm, to))
    given(record, events).when(c.ChangePhase(CID, target, "x", "t1")).then_raises(Conflict)


@pytest.mark.parametrize(
    "history, target",
    [
        (["initial", "middle"], "initial"),  # focus re-done
        (["initial", "middle", "ending"], "middle"),  # contract extended
        (["initial", "middle", "ending", "maintenance"], "initial"),  # recurrence: new course
        (["initial", "middle", "ending"], "maintenance"),
    ],
)
def test_phase_order_allows_the_documented_moves(history, target):
    events = [REGISTERED, FORMULATED]
    for frm, to in zip([None, *history], history, strict=False):
        events.append(phase(frm, to))
    produced = (
        given(record, events).when(c.ChangePhase(CID, target, "x", "t1")).then_types("PhaseChanged")
    )
    assert produced[0].data["from_phase"] == history[-1]


@pytest.mark.parametrize(
    "attended, boosters, expected",
    [
        (0, 0, None),
        (1, 0, "initial"),
        (4, 0, "initial"),
        (5, 0, "middle"),
        (12, 0, "middle"),
        (13, 0, "ending"),
        (16, 0, "ending"),
        (18, 0, "ending"),
        (16, 1, "maintenance"),
    ],
)
def test_the_attended_count_suggests_a_phase(attended, boosters, expected):
    assert suggested_phase(attended, boosters) == expected


# -- discharge closes the record to clinical commands ---------------------------------------
@pytest.mark.parametrize(
    "command",
    [
        c.ChangePhase(CID, "initial", "x", "t1"),
        c.RecordAssessment(CID, "low mood", ("depression",), ("sleep",), "no current risk"),
        c.RecordFormulation(CID, ("grief",), "f", (), ()),
        c.RecordNote(CID, "n2", "late note", "t1", session_id="s1"),
        c.AssignTask(CID, "k2", "walk"),
        c.CompleteTask(CID, "k1", AT, "done"),
        c.ReviewTask(CID, "k1", "went well", "t1"),
        c.DischargeClient(CID, "again", "x", AT),
    ],
)
def test_no_clinical_change_after_discharge(command):
    given(record, [REGISTERED, NOTE, TASK, DISCHARGED]).when(command).then_raises(
        Conflict, "discharged"
    )


def test_contact_details_may_still_be_corrected_after_discharge():
    given(record, [REGISTERED, DISCHARGED]).when(
        c.CorrectDetails(CID, "moved", {"phone": "07700 900123"})
    ).then_types("ClientDetailsCorrected")


# -- notes: an amendment is a new note; the original stays ----------------------------------
def test_an_amendment_keeps_the_original_and_links_both_ways():
    amend = c.RecordNote(
        CID,
        "n2",
        "Session 1: low mood, poor sleep",
        "t1",
        amends="n1",
        amendment_reason="left out sleep",
    )
    produced = (
        given(record, [REGISTERED, NOTE])
        .when(amend)
        .then(
            [
                NewEvent(
                    "NoteRecorded",
                    {
                        "client_id": CID,
                        "note_id": "n2",
                        "session_id": "s1",
                        "text": "Session 1: low mood, poor sleep",
                        "author": "t1",
                        "amends": "n1",
                        "amendment_reason": "left out sleep",
                    },
                )
            ]
        )
    )
    state = fold(record, [REGISTERED, NOTE, *produced])
    assert state.notes["n1"]["text"] == "Session 1: low mood"
    assert state.notes["n1"]["amended_by"] == "n2"
    assert state.notes["n2"]["amends"] == "n1"


def test_only_the_latest_version_of_a_note_may_be_amended():
    amended = NewEvent("NoteRecorded", {**NOTE.data, "note_id": "n2", "amends": "n1"})
    given(record, [REGISTERED, NOTE, amended]).when(
        c.RecordNote(CID, "n3", "again", "t1", amends="n1")
    ).then_raises(Conflict, "amend the latest")


def test_only_the_author_may_amend_a_note():
    given(record, [REGISTERED, NOTE]).when(
        c.RecordNote(CID, "n2", "lead's view", "lead", amends="n1")
    ).then_raises(Conflict, "author")


def test_amending_a_missing_note_is_not_found():
    given(record, [REGISTERED]).when(c.RecordNote(CID, "n2", "x", "t1", amends="nope")).then_raises(
        NotFound
    )


# -- tasks -----------------------------------------------------------------------------------
def test_a_task_is_completed_once_with_the_clients_reflection():
    done = c.CompleteTask(CID, "k1", AT, "I asked for help with the school run")
    given(record, [REGISTERED, TASK]).when(done).then(
        [
            NewEvent(
                "TaskCompleted",
                {
                    "client_id": CID,
                    "task_id": "k1",
                    "reflection": "I asked for help with the school run",
                    "completed_at": AT,
                },
            )
        ]
    )
    completed = NewEvent(
        "TaskCompleted", {"client_id": CID, "task_id": "k1", "reflection": None, "completed_at": AT}
    )
    given(record, [REGISTERED, TASK, completed]).when(done).then_raises(Conflict, "already")


def test_reviewing_a_task_in_session_is_recorded_even_if_not_done():
    state = fold(
        record,
        [
            REGISTERED,
            TASK,
            NewEvent(
                "TaskReviewed",
                {
                    "client_id": CID,
                    "task_id": "k1",
                    "review": "not done: too tired",
                    "session_id": "s2",
                    "by": "t1",
                },
            ),
        ],
    )
    assert state.tasks["k1"]["status"] == "open"
    assert state.tasks["k1"]["reviews"][0]["review"] == "not done: too tired"


def test_completing_an_unknown_task_is_not_found():
    given(record, [REGISTERED]).when(c.CompleteTask(CID, "k9", AT)).then_raises(NotFound)


def test_a_task_is_not_completed_in_the_future_beyond_a_clock_skew():
    # issue 15 (#11): a task completed in 2099 was stored
    from datetime import timedelta

    later = c.CompleteTask(CID, "k1", AT + timedelta(hours=1), None, now=AT)
    given(record, [REGISTERED, TASK]).when(later).then_raises(Invalid, "future")
    skewed = c.CompleteTask(CID, "k1", AT + timedelta(minutes=2), None, now=AT)
    given(record, [REGISTERED, TASK]).when(skewed).then(
        [
            NewEvent(
                "TaskCompleted",
                {
                    "client_id": CID,
                    "task_id": "k1",
                    "reflection": None,
                    "completed_at": AT + timedelta(minutes=2),
                },
            )
        ]
    )
