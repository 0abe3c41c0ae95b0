"""The diary's time grid, worked out in Python so the page needs no script and no inline
style (the portal's CSP is `style-src 'self'`): every block gets classes naming its column
(`c3`), the 10-minute row it starts on (`r12`) and the row it ends before (`e17`), and
diary.css maps each class to a CSS grid line. Ten minutes is the diary's grain: sessions
start on a 10-minute bucket (scheduling's rule) and last 50 minutes, five rows.

Pure: no Flask, no HTTP; the page hands in the services' answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from .common import LONDON, parse_dt

ROW = timedelta(minutes=10)
ROWS_PER_HOUR = 6
SESSION = timedelta(minutes=50)  # the practice's session length (clinical.md)
DAY_START, DAY_END = 8, 18  # shown at least; widened to fit hours and sessions
MAX_COLUMNS = 35  # diary.css defines c1..c35 (7 days x 5 therapists)
LAST_LINE = 144  # r0..r144 / e0..e144: a whole day


@dataclass
class Block:
    """One thing placed on the grid."""

    kind: str  # hours | leave | free | session | now
    column: int
    start: int  # first 10-minute row, from the top of the grid
    end: int  # the row it stops before
    session: dict | None = None
    label: str = ""
    starts_at: datetime | None = None

    @property
    def place(self) -> str:
        return f"c{self.column} r{self.start} e{self.end}"


@dataclass
class Column:
    number: int
    day: date
    therapist: dict
    today: bool = False
    leave: str | None = None
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Grid:
    first_hour: int
    last_hour: int
    columns: list[Column]
    cancelled: list[dict]

    @property
    def hours(self) -> list[tuple[int, int]]:
        """(hour, row) for each hour label down the side."""
        return [
            (h, (h - self.first_hour) * ROWS_PER_HOUR)
            for h in range(self.first_hour, self.last_hour)
        ]

    @property
    def rows(self) -> int:
        return (self.last_hour - self.first_hour) * ROWS_PER_HOUR


def _hhmm(value: str) -> time:
    hours, _, minutes = str(value).partition(":")
    return time(int(hours), int(minutes or 0))


def working_windows(therapist: dict, day: date) -> list[tuple[time, time]]:
    return sorted(
        (_hhmm(h["start"]), _hhmm(h["end"]))
        for h in therapist.get("weekly_hours") or []
        if h.get("weekday") == day.weekday()
    )


def leave_on(therapist: dict, day: date) -> str | None:
    for e in therapist.get("exceptions") or []:
        try:
            first, last = (
                date.fromisoformat(str(e["start_date"])[:10]),
                date.fromisoformat(str(e["end_date"])[:10]),
            )
        except (KeyError, ValueError):
            continue
        if first <= day <= last:
            return e.get("reason") or "Leave"
    return None


def days_shown(start: date, count: int, therapists: list[dict], sessions: list[dict]) -> list[date]:
    """Monday to Friday, and a weekend day only when someone works or is booked on it."""
    days = [start + timedelta(days=i) for i in range(count)]
    if count == 1:
        return days
    busy = {
        parse_dt(s.get("starts_at")).astimezone(LONDON).date()
        for s in sessions
        if parse_dt(s.get("starts_at"))
    }
    return [
        d
        for d in days
        if d.weekday() < 5 or d in busy or any(working_windows(t, d) for t in therapists)
    ]


def _hour_span(columns: list[Column], sessions: list[dict]) -> tuple[int, int]:
    first, last = DAY_START, DAY_END
    for col in columns:
        for start, end in working_windows(col.therapist, col.day):
            first, last = min(first, start.hour), max(last, end.hour + (1 if end.minute else 0))
    for s in sessions:
        starts, ends = parse_dt(s.get("starts_at")), parse_dt(s.get("ends_at"))
        if starts:
            local_start = starts.astimezone(LONDON)
            local_end = (ends or starts + SESSION).astimezone(LONDON)
            first = min(first, local_start.hour)
            last = max(
                last,
                24
                if local_end.date() > local_start.date()
                else local_end.hour + (1 if local_end.minute else 0),
            )
    return first, min(last, 24)


def _row(moment: datetime, day: date, first_hour: int) -> int:
    """The 10-minute row of a moment on a local day (clamped to that day)."""
    local = moment.astimezone(LONDON)
    if local.date() < day:
        return 0
    minutes = _minutes(local, first_hour) if local.date() == day else (24 - first_hour) * 60
    return max(0, min(LAST_LINE, minutes // 10))


def _minutes(local: datetime, first_hour: int) -> int:
    """Minutes from the grid's first hour to a local time of the same day (below 0 before)."""
    return (local.hour - first_hour) * 60 + local.minute


def _free_starts(
    therapist: dict, day: date, taken: list[tuple[datetime, datetime]], now: datetime
) -> list[datetime]:
    """Hourly 50-minute slots inside working hours, ahead of now, clear of every session:
    the same rule as scheduling's /slots (which also checks rooms, on the Book page)."""
    out = []
    for start, end in working_windows(therapist, day):
        for hour in range(24):
            begins = datetime.combine(day, time(hour), tzinfo=LONDON)
            window_start = datetime.combine(day, start, tzinfo=LONDON)
            window_end = datetime.combine(day, end, tzinfo=LONDON)
            finishes = begins + SESSION
            if begins < window_start or finishes > window_end or begins <= now:
                continue
            if all(finishes <= s or begins >= e for s, e in taken):
                out.append(begins)
    return out


def build(
    therapists: list[dict],
    sessions_by_therapist: dict[str, list[dict]],
    days: list[date],
    now: datetime | None = None,
) -> Grid:
    """Columns are day by day, therapists side by side within each day."""
    now = (now or datetime.now(UTC)).astimezone(LONDON)
    everything = [s for found in sessions_by_therapist.values() for s in found]
    columns = []
    for day in days:
        for therapist in therapists:
            if len(columns) == MAX_COLUMNS:
                break
            columns.append(
                Column(
                    len(columns) + 1,
                    day,
                    therapist,
                    today=day == now.date(),
                    leave=leave_on(therapist, day),
                )
            )
    active = [s for s in everything if (s.get("status") or "booked") != "cancelled"]
    first, last = _hour_span(columns, active)
    for col in columns:
        _fill(
            col,
            sessions_by_therapist.get(col.therapist["therapist_id"], []),
            first,
            (last - first) * ROWS_PER_HOUR,
            now,
        )
    cancelled = sorted(
        (s for s in everything if s.get("status") == "cancelled"),
        key=lambda s: s.get("starts_at") or "",
    )
    return Grid(first, last, columns, cancelled)


def _fill(col: Column, sessions: list[dict], first_hour: int, rows: int, now: datetime) -> None:
    day = col.day
    mine = []
    for s in sessions:
        starts = parse_dt(s.get("starts_at"))
        if not starts or starts.astimezone(LONDON).date() != day or s.get("status") == "cancelled":
            continue
        ends = parse_dt(s.get("ends_at")) or starts + SESSION
        mine.append((starts, ends, s))
    if col.leave:
        col.blocks.append(Block("leave", col.number, 0, rows, label=col.leave))
    else:
        for start, end in working_windows(col.therapist, day):
            col.blocks.append(
                Block(
                    "hours",
                    col.number,
                    _row(datetime.combine(day, start, tzinfo=LONDON), day, first_hour),
                    _row(datetime.combine(day, end, tzinfo=LONDON), day, first_hour),
                )
            )
    taken = [(a, b) for a, b, _ in mine]
    timeline = [
        (
            starts,
            Block(
                "session",
                col.number,
                _row(starts, day, first_hour),
                max(_row(ends, day, first_hour), _row(starts, day, first_hour) + 1),
                session=s,
                starts_at=starts,
            ),
        )
        for starts, ends, s in mine
    ]
    if not col.leave:
        for begins in _free_starts(col.therapist, day, taken, now):
            row = _row(begins, day, first_hour)
            timeline.append((begins, Block("free", col.number, row, row + 5, starts_at=begins)))
    col.blocks += [b for _, b in sorted(timeline, key=lambda t: (t[0], t[1].kind))]
    if col.today:
        # the row unclamped (`_row` puts a moment before the grid on its first row): the
        # grid's first ten minutes are row 0 and show the line too (it was left out then)
        row = _minutes(now.astimezone(LONDON), first_hour) // 10
        if 0 <= row < rows:
            col.blocks.append(Block("now", col.number, row, row + 1, label=now.strftime("%H:%M")))
