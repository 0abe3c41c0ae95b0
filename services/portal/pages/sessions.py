"""Which of a client's sessions a note (or an assessment) is about. A note is written in or
just after a session: the one today, else the latest attended one — never a session still
weeks ahead (issue 13, defect 6)."""

from __future__ import annotations

from datetime import date, datetime

from .common import LONDON, parse_dt

WRITTEN_ABOUT = ("booked", "attended", "missed", "rescheduled")


def _day(session: dict) -> date | None:
    starts = parse_dt(session.get("starts_at"))
    return starts.astimezone(LONDON).date() if starts else None


def note_sessions(sessions: list[dict], today: date | None = None) -> list[dict]:
    """Sessions a note may be about, latest first: those attended or missed, and those that
    are not cancelled and fall on or before today."""
    today = today or datetime.now(LONDON).date()
    held = [
        s
        for s in sessions
        if s.get("status") in ("attended", "missed")
        or ((s.get("status") or "booked") in WRITTEN_ABOUT and (_day(s) or today) <= today)
    ]
    return sorted(held, key=lambda s: s.get("starts_at") or "", reverse=True)


def today_or_latest_attended(sessions: list[dict], today: date | None = None) -> dict | None:
    """Today's session (not cancelled), else the latest attended one, else the latest held."""
    today = today or datetime.now(LONDON).date()
    todays = [
        s for s in sessions if _day(s) == today and (s.get("status") or "booked") != "cancelled"
    ]
    if todays:
        return sorted(todays, key=lambda s: s.get("starts_at") or "")[0]
    attended = [s for s in sessions if s.get("status") == "attended"]
    if attended:
        return max(attended, key=lambda s: s.get("starts_at") or "")
    held = note_sessions(sessions, today)
    return held[0] if held else None


def answer_sessions(sessions: list[dict]) -> list[dict]:
    """Sessions questionnaire answers may belong to, in date order: any not cancelled."""
    kept = [s for s in sessions if (s.get("status") or "booked") != "cancelled"]
    return sorted(kept, key=lambda s: s.get("starts_at") or "")


def today_or_next(sessions: list[dict], now: datetime | None = None) -> dict | None:
    """For answers given in the room: today's session, else the next one, else the latest."""
    now = now or datetime.now(LONDON)
    today = now.astimezone(LONDON).date()
    kept = answer_sessions(sessions)
    todays = [s for s in kept if _day(s) == today]
    if todays:
        return todays[0]
    ahead = [s for s in kept if (parse_dt(s.get("starts_at")) or now) > now]
    if ahead:
        return ahead[0]
    return kept[-1] if kept else None


def session_label(session: dict) -> str:
    """'Session 3, Mon 12 Oct 2026' (or without the number for a one-off session)."""
    starts = parse_dt(session.get("starts_at"))
    when = starts.astimezone(LONDON).strftime("%a %d %b %Y") if starts else ""
    number = session.get("number")
    return f"Session {number}, {when}" if number else f"Session of {when}"
