"""What the notifications service decides, pure (no Flask, no pymongo, no clock): the kinds
of message (kinds.py, each stated once), what each fact plans and when (plans.py, rules.py:
quiet hours, delivery times, retries), the commands, and the deciders of a notification's
life and a client's contact preferences."""

from .commands import RecordFailure, RecordSent, Schedule, SetPreferences, Void
from .deciders import (
    NotificationDecider,
    NotificationState,
    PreferencesDecider,
    message_id,
    stream_id,
)
from .kinds import (
    KINDS,
    Facts,
    Kind,
    clinical_kinds,
    planned_on,
    session_bound,
    waits_for_client,
)
from .rules import (
    CLIENT,
    CLIENT_CHANNELS,
    DEFAULT_LEAD,
    DEFAULT_QUIET,
    LEAD,
    QuietHours,
    deliver_at,
    parse_hhmm,
    quiet_begins,
    quiet_ends,
    retry_delay,
)

__all__ = [
    "CLIENT",
    "CLIENT_CHANNELS",
    "DEFAULT_LEAD",
    "DEFAULT_QUIET",
    "KINDS",
    "LEAD",
    "Facts",
    "Kind",
    "NotificationDecider",
    "NotificationState",
    "PreferencesDecider",
    "QuietHours",
    "RecordFailure",
    "RecordSent",
    "Schedule",
    "SetPreferences",
    "Void",
    "clinical_kinds",
    "deliver_at",
    "message_id",
    "parse_hhmm",
    "planned_on",
    "quiet_begins",
    "quiet_ends",
    "retry_delay",
    "session_bound",
    "stream_id",
    "waits_for_client",
]
