"""Pure time rules of the diary: working hours in the practice's zone, 50-minute slots on
the hour, and the 10-minute UTC buckets a session claims. No I/O.

Hours are written in Europe/London wall-clock time (architecture.md, "Time"): a therapist
who works 09:00-17:00 does so in both GMT and BST, so every conversion goes through
`zoneinfo` for the date in question rather than a fixed offset."""

from __future__ import annotations

from calendar import monthrange
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

PRACTICE_TZ = ZoneInfo("Europe/London")
SESSION = timedelta(minutes=50)  # the practice's session length (clinical.md, IPT)
BUCKET = timedelta(minutes=10)  # claim granularity; session starts must fall on it
LATE_CANCELLATION = timedelta(hours=24)


@dataclass(frozen=True)
class Hours:
    weekday: int  # Monday = 0
    start: time
    end: time


@dataclass(frozen=True)
class Leave:
    start_date: date
    end_date: date  # inclusive
    reason: str


@dataclass(frozen=True)
class Availability:
    weekly_hours: tuple[Hours, ...] = ()
    exceptions: tuple[Leave, ...] = ()

    @classmethod
    def from_event(cls, data) -> Availability:
        return cls(
            weekly_hours=tuple(
                Hours(h["weekday"], parse_hhmm(h["start"]), parse_hhmm(h["end"]))
                for h in data["weekly_hours"]
            ),
            exceptions=tuple(
                Leave(e["start_date"], e["end_date"], e["reason"]) for e in data["exceptions"]
            ),
        )


def parse_hhmm(value: str) -> time:
    hours, _, minutes = value.partition(":")
    if len(value) != 5 or not (hours.isdigit() and minutes.isdigit()):
        raise ValueError(f"{value!r} is not HH:MM")
    return time(int(hours), int(minutes))


def to_utc(day: date, wall: time) -> datetime:
    """A practice wall-clock time on `day` as an aware UTC datetime."""
    return datetime.combine(day, wall, tzinfo=PRACTICE_TZ).astimezone(UTC)


def local(moment: datetime) -> datetime:
    return moment.astimezone(PRACTICE_TZ)


def leave_on(availability: Availability, day: date) -> Leave | None:
    return next((e for e in availability.exceptions if e.start_date <= day <= e.end_date), None)


def windows(availability: Availability, day: date) -> list[tuple[datetime, datetime]]:
    """The therapist's working windows on a local date, in UTC; none on leave."""
    if leave_on(availability, day):
        return []
    return [
        (to_utc(day, h.start), to_utc(day, h.end))
        for h in availability.weekly_hours
        if h.weekday == day.weekday()
    ]


def within_hours(availability: Availability, start: datetime) -> bool:
    end = start + SESSION
    return any(ws <= start and end <= we for ws, we in windows(availability, local(start).date()))


def hourly_starts(availability: Availability, day: date) -> list[datetime]:
    """Slot starts on the local hour whose whole 50 minutes fit inside a working window."""
    spans = windows(availability, day)
    starts = (to_utc(day, time(hour)) for hour in range(24))
    return [s for s in starts if any(ws <= s and s + SESSION <= we for ws, we in spans)]


def on_bucket(start: datetime) -> bool:
    utc = start.astimezone(UTC)
    return utc.second == 0 and utc.microsecond == 0 and utc.minute % 10 == 0


def buckets(start: datetime) -> list[datetime]:
    """The 10-minute UTC buckets a session starting at `start` occupies (five of them)."""
    first = start.astimezone(UTC)
    count = -(-SESSION // BUCKET)
    return [first + i * BUCKET for i in range(count)]


def scope_keys(scope: str, start: datetime) -> list[str]:
    return [f"{scope}|{b.strftime('%Y-%m-%dT%H:%M')}" for b in buckets(start)]


def claim_keys(
    start: datetime, *, therapist_id: str, client_id: str, room: str | None
) -> list[str]:
    """Unique keys a booking takes: one per bucket for the therapist, the client and the
    room. The store's unique _id on these is what makes a double booking impossible."""
    scopes = [f"therapist:{therapist_id}", f"client:{client_id}"] + (
        [f"room:{room}"] if room else []
    )
    return [key for scope in scopes for key in scope_keys(scope, start)]


def clash_reason(key: str) -> str:
    scope = key.split("|", 1)[0]
    kind, _, name = scope.partition(":")
    if kind == "therapist":
        return "the therapist already has a session at that time"
    if kind == "client":
        return "the client already has a session at that time"
    return f"room {name} is already booked at that time"


def week_of(day: date) -> list[date]:
    monday = day - timedelta(days=day.weekday())
    return [monday + timedelta(days=i) for i in range(7)]


def add_months(day: date, months: int) -> date:
    """Same day of month `months` later, clamped to the month's end (31 Jan + 1 -> 28/29 Feb)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, monthrange(year, month)[1]))
