"""The rules of when a message may go, pure (no Flask, no pymongo, no clock: the time is
always passed in): quiet hours in practice-local time, the delivery time around them, and
the retry backoff."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from shared.domain import Invalid

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
        raise Invalid(f"{value!r} is not a time of day like 21:00", field="quiet_hours") from None


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
