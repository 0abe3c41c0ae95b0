"""What each reader is shown of a record. Reception (admin) and other services get the
contact view: who the client is, how to reach them, their therapist and status — never
assessment, formulation, risk, phase, notes, tasks or the discharge summary."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shared.audit import record_read
from shared.auth import Identity
from shared.events import Event, registry

from ..application import Application, sees_clinical
from ..domain import ClientState
from ..domain.rules import next_phases


def plain(value: Any) -> Any:
    """Frozen mappings and tuples from the fold -> dicts and lists for the schemas."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def contact_view(state: ClientState, as_of: datetime | None = None) -> dict:
    discharge = state.discharge or {}
    return {
        "client_id": state.client_id,
        **plain(state.details),
        "status": state.status,
        "registered_at": state.registered_at,
        "discharged_at": discharge.get("discharged_at"),
        "version": state.version,
        "as_of": as_of,
        "view": "contact",
    }


def note_view(note: Mapping) -> dict:
    return {**plain(note), "current": note.get("amended_by") is None}


def task_view(client_id: str, task: Mapping) -> dict:
    return {"client_id": client_id, **plain(task)}


def full_view(state: ClientState, attendance: dict, as_of: datetime | None = None) -> dict:
    return {
        **contact_view(state, as_of),
        "view": "full",
        "phase": state.phase,
        **attendance,
        "next_phases": (
            next_phases(state.phase, state.formulation is not None)
            if state.status == "active"
            else []
        ),
        "assessment": plain(state.assessment) if state.assessment else None,
        "formulation": plain(state.formulation) if state.formulation else None,
        "notes": [note_view(n) for n in state.notes.values()],
        "tasks": [task_view(state.client_id, t) for t in state.tasks.values()],
        "discharge": plain(state.discharge) if state.discharge else None,
        "course": course_view(state) if state.course else None,
        # the client's own words between sessions (homework diary), newest first
        "diary_entries": [
            {k: plain(e.get(k)) for k in ("entry_id", "text", "task_id", "written_at")}
            for e in sorted(state.diary.values(), key=lambda e: e["written_at"], reverse=True)
        ],
    }


def course_view(state: ClientState) -> dict:
    return {"client_id": state.client_id, **plain(state.course), "phase": state.phase}


def event_view(event: Event) -> dict:
    return {
        "event_id": event.event_id,
        "type": event.type,
        "schema_version": event.schema_version,
        "stream_version": event.stream_version,
        "occurred_at": event.occurred_at,
        "recorded_at": event.recorded_at,
        "actor": {"id": event.actor.id, "role": event.actor.role},
        "correlation_id": event.correlation_id,
        "data": registry.dump(event.type, event.data),
    }


def record_view(app: Application, state: ClientState, who: Identity, as_of=None) -> dict:
    """The full record for the client's therapist and the lead (audited), else the contact
    view."""
    if not sees_clinical(who):
        return contact_view(state, as_of)
    record_read("client_record", state.client_id)
    return full_view(state, app.attendance(state.client_id, as_of), as_of)
