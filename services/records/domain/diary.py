"""The client's homework diary (issue 17, item 3): between sessions the client writes down
important events or feelings to discuss in the next session, and reflections on the tasks
set (the practice page's own words), at their homework link. Pure: no Flask, no pymongo, no
clock (the command carries `now`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from types import MappingProxyType

from shared.domain import Conflict, Invalid, NotFound
from shared.events import NewEvent

MAX_ENTRIES = 500  # per record: a link that writes without end is a fault, not a diary


@dataclass(frozen=True)
class WriteDiaryEntry:
    client_id: str
    entry_id: str
    text: str
    now: datetime
    task_id: str | None = None


def decide_entry(s, cmd: WriteDiaryEntry, must_be_in_care) -> list[NewEvent]:
    must_be_in_care(s, "writing in the diary")
    if not cmd.text.strip():
        raise Invalid("write something first", field="text")
    if cmd.entry_id in s.diary:
        raise Conflict("this entry was written already", code="duplicate")
    if len(s.diary) >= MAX_ENTRIES:
        raise Conflict("the diary is full; please bring the rest to your session", code="full")
    if cmd.task_id is not None:
        task = s.tasks.get(cmd.task_id)
        if task is None:
            raise NotFound(f"no task {cmd.task_id} on this record")
    return [
        NewEvent(
            "DiaryEntryWritten",
            {
                "client_id": s.client_id,
                "entry_id": cmd.entry_id,
                "text": cmd.text.strip(),
                "task_id": cmd.task_id,
                "written_at": cmd.now,
            },
        )
    ]


def entry_written(s, d: Mapping, at):
    entry = MappingProxyType({**d, "recorded_at": at})
    return replace(s, diary=MappingProxyType({**s.diary, d["entry_id"]: entry}))
