"""Two deciders, pure: a notification's life (scheduled → sent | failed | voided), one
stream per idempotency key, and a client's contact preferences. Events reach the state
through one table {event type: function} each."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Any

from shared.domain import Conflict, Invalid
from shared.events import NewEvent

from .commands import RecordFailure, RecordSent, Schedule, SetPreferences, Void
from .rules import QuietHours


def message_id(key: str, domain: str = "rapport.notifications") -> str:
    """An RFC 5322 Message-ID derived from the idempotency key: a resend after a crash
    (SMTP accepted, "sent" not yet recorded) carries the same id, so it is recognisable
    and mail clients thread or drop it as a duplicate."""
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:40]}@{domain}>"


def stream_id(key: str) -> str:
    return f"notification-{key}"


def _evolve(table: dict, state: Any, event: Any) -> Any:
    step = table.get(event.type)
    return state if step is None else step(state, event)


# -- a notification's life -------------------------------------------------------------------
@dataclass(frozen=True)
class NotificationState:
    status: str | None = None  # scheduled, sent, failed, voided
    attempts: int = 0


_IDENTITY = ("notification_id", "kind", "channel", "client_id", "recipient")


def _ident(info: dict) -> dict:
    return {k: info.get(k) for k in _IDENTITY}


def _now(status: str | None):
    def step(state: NotificationState, event: Any) -> NotificationState:
        return replace(
            state,
            status=status or state.status,
            attempts=event.data.get("attempts", state.attempts),
        )

    return step


_NOTIFICATION_EVOLVE = {
    "NotificationScheduled": _now("scheduled"),
    "NotificationSent": _now("sent"),
    "NotificationVoided": _now("voided"),
    # a failure that will be retried leaves it scheduled
    "NotificationFailed": lambda state, event: _now("failed" if event.data["final"] else None)(
        state, event
    ),
}


def _first(state: NotificationState, info: dict) -> list[NewEvent]:
    """`NotificationScheduled` first, unless it was already (a send may be reported before
    the dispatcher announced the message)."""
    if state.status in ("scheduled", "failed", "sent"):
        return []
    return [NewEvent("NotificationScheduled", {**_ident(info), "due_at": info["due_at"]})]


def _schedule(state: NotificationState, c: Schedule) -> list[NewEvent]:
    return _first(state, c.info) if state.status != "failed" else []


def _sent(state: NotificationState, c: RecordSent) -> list[NewEvent]:
    if state.status == "sent":
        return []
    sent = {**_ident(c.info), "sent_at": c.sent_at, "attempts": c.attempts}
    return _first(state, c.info) + [NewEvent("NotificationSent", sent)]


def _failure(state: NotificationState, c: RecordFailure) -> list[NewEvent]:
    if state.status == "sent":
        raise Conflict("this notification was sent already")
    if state.status == "failed":
        return []
    failed = {
        **_ident(c.info),
        "failed_at": c.failed_at,
        "attempts": c.attempts,
        "error": c.error[:500],
        "final": c.final,
    }
    return _first(state, c.info) + [NewEvent("NotificationFailed", failed)]


def _void(state: NotificationState, c: Void) -> list[NewEvent]:
    if state.status in ("sent", "failed", "voided"):
        return []
    voided = {**_ident(c.info), "reason": c.reason}
    return _first(state, c.info) + [NewEvent("NotificationVoided", voided)]


_NOTIFICATION_DECIDE = {
    Schedule: _schedule,
    RecordSent: _sent,
    RecordFailure: _failure,
    Void: _void,
}


class NotificationDecider:
    """One stream per idempotency key. Recording is idempotent: a second "sent" for the
    same key adds nothing, and nothing is voided or failed once it was sent."""

    def initial_state(self) -> NotificationState:
        return NotificationState()

    def evolve(self, state: NotificationState, event: Any) -> NotificationState:
        return _evolve(_NOTIFICATION_EVOLVE, state, event)

    def decide(self, state: NotificationState, command: Any) -> list[NewEvent]:
        return _NOTIFICATION_DECIDE[type(command)](state, command)


# -- a client's preferences -------------------------------------------------------------------
_PREFERENCES_EVOLVE = {"NotificationPreferencesSet": lambda state, event: dict(event.data)}


class PreferencesDecider:
    def initial_state(self) -> dict | None:
        return None

    def evolve(self, state: dict | None, event: Any) -> dict:
        return _evolve(_PREFERENCES_EVOLVE, state, event)

    def decide(self, state: dict | None, command: SetPreferences) -> list[NewEvent]:
        refused = [c for c in command.channels if c not in command.consented]
        if refused:
            raise Invalid(
                f"the client has not agreed to be contacted by {', '.join(refused)}",
                field="channels",
            )
        if (command.quiet_start is None) != (command.quiet_end is None):
            raise Invalid("give both start and end, or neither", field="quiet_hours")
        QuietHours.parse(command.quiet_start, command.quiet_end)  # validates the format
        wanted = {
            "client_id": command.client_id,
            "channels": list(dict.fromkeys(command.channels)),
            "reminder_lead_minutes": command.reminder_lead_minutes,
            "quiet_start": command.quiet_start,
            "quiet_end": command.quiet_end,
        }
        if state is not None and {k: state.get(k) for k in wanted} == wanted:
            return []  # the same preferences again change nothing
        return [NewEvent("NotificationPreferencesSet", wanted)]
