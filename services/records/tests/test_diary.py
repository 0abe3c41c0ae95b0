"""The homework diary, given/when/then, pure: the practice page's own examples as the test
data ("practising a difficult conversation", "writing down important events or feelings")."""

from datetime import UTC, datetime

from services.records.domain import commands as c
from services.records.domain import record
from services.records.domain.diary import WriteDiaryEntry
from shared.domain import Conflict, Invalid, NotFound, fold
from shared.events import NewEvent
from testkit.given import given

from .test_domain import CID, DISCHARGED, REGISTERED

NOW = datetime(2026, 3, 9, 19, 30, tzinfo=UTC)
TASK = NewEvent(
    "TaskAssigned",
    {
        "client_id": CID,
        "task_id": "k1",
        "description": "practising a difficult conversation",
        "due_at": None,
        "session_id": None,
    },
)


def entry(text="writing down important events or feelings", **kw):
    return WriteDiaryEntry(CID, "e1", text, NOW, **kw)


def test_the_client_writes_a_diary_entry_and_a_reflection_on_a_task():
    written = NewEvent(
        "DiaryEntryWritten",
        {
            "client_id": CID,
            "entry_id": "e1",
            "text": "writing down important events or feelings",
            "task_id": None,
            "written_at": NOW,
        },
    )
    given(record, [REGISTERED, TASK]).when(entry()).then([written])
    (reflection,) = (
        given(record, [REGISTERED, TASK])
        .when(entry("I asked Mark to share the cooking; it went calmly", task_id="k1"))
        .then_types("DiaryEntryWritten")
    )
    assert reflection.data["task_id"] == "k1"
    state = fold(record, [REGISTERED, TASK, written])
    assert state.diary["e1"]["text"] == "writing down important events or feelings"


def test_an_entry_needs_words_a_known_task_and_an_open_record():
    given(record, [REGISTERED]).when(entry("   ")).then_raises(Invalid, "write something")
    given(record, [REGISTERED]).when(entry(task_id="nope")).then_raises(NotFound, "no task")
    given(record, [REGISTERED, DISCHARGED]).when(entry()).then_raises(Conflict, "discharged")


def test_the_client_marks_a_task_done_with_their_reflection():
    done = c.CompleteTask(CID, "k1", NOW, "It was hard but I said it", now=NOW)
    (event,) = given(record, [REGISTERED, TASK]).when(done).then_types("TaskCompleted")
    assert event.data["reflection"] == "It was hard but I said it"
