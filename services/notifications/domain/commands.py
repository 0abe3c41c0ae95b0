"""The notifications service's commands: a notification's life as the dispatcher records
it (scheduled, sent, failed, voided) and a client's contact preferences."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


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
class SetPreferences:
    client_id: str
    channels: tuple[str, ...]
    reminder_lead_minutes: int
    quiet_start: str | None
    quiet_end: str | None
    consented: tuple[str, ...] = field(default=())  # channels the client agreed to (records)
