"""The notifications domain, pure (no Flask, no pymongo): quiet hours, retry backoff,
idempotency keys, and two deciders — a notification's life (scheduled → sent | failed |
voided) and a client's contact preferences."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from shared.domain import Conflict, Invalid
from shared.events import NewEvent

CLIENT, LEAD = "client", "clinical_lead"
CLIENT_CHANNELS = ("email", "sms")
DEFAULT_LEAD = timedelta(hours=24)
DEFAULT_QUIET = ("21:00", "08:00")


# -- quiet hours --------------------------------------------------------------------------
@dataclass(frozen=True)
class QuietHours:
    """A daily window in practice-local time; it may run past midnight (21:00–08:00)."""

    start: time
    end: time

    @classmethod
    def parse(cls, start: str | None, end: str | None) -> QuietHours | None:
        if not start or not end:
            return None
        return cls(parse_hhmm(start), parse_hhmm(end))

    def contains(self, local: time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


def parse_hhmm(value: str) -> time:
    try:
        hours, minutes = value.split(":")
        return time(int(hours), int(minutes))
    except (ValueError, AttributeError):
        raise Invalid(f"{value!r} is not a time of day like 21:00", field="quiet_hours")


def _local_at(day: date, at: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def quiet_ends(moment: datetime, quiet: QuietHours | None, tz: ZoneInfo) -> datetime | None:
    """If `moment` falls in quiet hours, when they end (UTC); otherwise None."""
    if quiet is None:
        return None
    local = moment.astimezone(tz)
    if not quiet.contains(local.time()):
        return None
    day = local.date() if local.time() < quiet.end else local.date() + timedelta(days=1)
    return _local_at(day, quiet.end, tz)


def quiet_begins(moment: datetime, quiet: QuietHours, tz: ZoneInfo) -> datetime:
    """The start (UTC) of the quiet window that contains `moment`."""
    local = moment.astimezone(tz)
    day = local.date() if local.time() >= quiet.start else local.date() - timedelta(days=1)
    return _local_at(day, quiet.start, tz)


def deliver_at(
    due: datetime,
    quiet: QuietHours | None,
    tz: ZoneInfo,
    *,
    now: datetime,
    latest: datetime | None = None,
) -> datetime:
    """When a client message due at `due` may go. Inside quiet hours it waits for the
    morning; if the morning is too late (after `latest`, e.g. the appointment itself) it
    goes just before the quiet hours began, and if that has passed already, at once —
    a late evening message is better than none before an early appointment."""
    after = quiet_ends(due, quiet, tz)
    if after is None:
        return max(due, now)
    if latest is None or after <= latest:
        return after
    before = quiet_begins(due, quiet, tz) - timedelta(minutes=5)
    return before if before >= now else max(due, now)


# -- retries and identities ------------------------------------------------------------------
def retry_delay(attempts: int, base: float, cap: float = 3600.0) -> timedelta:
    """Exponential backoff after the `attempts`-th failed try: base, 2·base, 4·base, ..."""
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), cap))


def message_id(key: str, domain: str = "rapport.notifications") -> str:
    """An RFC 5322 Message-ID derived from the idempotency key: a resend after a crash
    (SMTP accepted, "sent" not yet recorded) carries the same id, so it is recognisable
    and mail clients thread or drop it as a duplicate."""
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:40]}@{domain}>"


def stream_id(key: str) -> str:
    return f"notification-{key}"


# -- a notification's life -------------------------------------------------------------------
@dataclass(frozen=True)
class Schedule:
    info: dict  # notification_id, kind, channel, client_id, recipient, due_at


@dataclass(frozen=True)
class RecordSent:
    info: dict
    sent_at: datetime
    attempts: int


@dataclass(frozen=True)
class RecordFailure:
    info: dict
    failed_at: datetime
    attempts: int
    error: str
    final: bool


@dataclass(frozen=True)
class Void:
    info: dict
    reason: str


@dataclass(frozen=True)
class NotificationState:
    status: str | None = None  # scheduled, sent, failed, voided
    attempts: int = 0


_IDENTITY = ("notification_id", "kind", "channel", "client_id", "recipient")


def _ident(info: dict) -> dict:
    return {k: info.get(k) for k in _IDENTITY}


class NotificationDecider:
    """One stream per idempotency key. Recording is idempotent: a second "sent" for the
    same key adds nothing, and nothing is voided or failed once it was sent."""

    def initial_state(self) -> NotificationState:
        return NotificationState()

    def evolve(self, state: NotificationState, event: Any) -> NotificationState:
        status = {
            "NotificationScheduled": "scheduled",
            "NotificationSent": "sent",
            "NotificationVoided": "voided",
        }.get(event.type)
        if event.type == "NotificationFailed":
            status = "failed" if event.data["final"] else state.status
        return replace(
            state,
            status=status or state.status,
            attempts=event.data.get("attempts", state.attempts),
        )

    def decide(self, state: NotificationState, command: Any) -> list[NewEvent]:
        ident = _ident(command.info)
        first = (
            []
            if state.status in ("scheduled", "failed", "sent")
            else [NewEvent("NotificationScheduled", {**ident, "due_at": command.info["due_at"]})]
        )
        if isinstance(command, Schedule):
            return first if state.status != "failed" else []
        if isinstance(command, RecordSent):
            if state.status == "sent":
                return []
            return first + [
                NewEvent(
                    "NotificationSent",
                    {**ident, "sent_at": command.sent_at, "attempts": command.attempts},
                )
            ]
        if isinstance(command, RecordFailure):
            if state.status == "sent":
                raise Conflict("this notification was sent already")
            if state.status == "failed":
                return []
            return first + [
                NewEvent(
                    "NotificationFailed",
                    {
                        **ident,
                        "failed_at": command.failed_at,
                        "attempts": command.attempts,
                        "error": command.error[:500],
                        "final": command.final,
                    },
                )
            ]
        if isinstance(command, Void):
            if state.status in ("sent", "failed", "voided"):
                return []
            return first + [NewEvent("NotificationVoided", {**ident, "reason": command.reason})]
        raise TypeError(f"unknown command {command!r}")


# -- a client's preferences -------------------------------------------------------------------
@dataclass(frozen=True)
class SetPreferences:
    client_id: str
    channels: tuple[str, ...]
    reminder_lead_minutes: int
    quiet_start: str | None
    quiet_end: str | None
    consented: tuple[str, ...] = field(default=())  # channels the client agreed to (records)


class PreferencesDecider:
    def initial_state(self) -> dict | None:
        return None

    def evolve(self, state: dict | None, event: Any) -> dict:
        return dict(event.data)

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
