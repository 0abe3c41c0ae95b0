"""The diary: a day or a week as a time grid, therapists side by side (reception and the
lead choose whom to see; a therapist sees their own), each session a block at its time and
length, a free hour a link to book it, today's time marked."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from flask import g, render_template, request

from ..backend import backend
from ..security import current_user, signed_in
from . import blueprint, grid
from .common import LONDON, items

STAFF = ("admin", "therapist", "clinical_lead")
EARLIEST, LATEST = date(2000, 1, 1), date(2099, 12, 31)  # the services' diary years


def therapists() -> list[dict]:
    return therapists_or_error()[0]


def therapists_or_error() -> tuple[list[dict], str | None]:
    """The bookable therapists, and why not when scheduling did not answer: a failed call
    must never read as "no therapists are registered" (issue 13, defect 1)."""
    found, error = backend().try_get("scheduling", "/therapists", default=None)
    if error is not None:
        return [], f"The diary is unavailable just now ({error.detail}). Please try again shortly."
    return items(found), None


def chosen_therapist(list_: list[dict]) -> str | None:
    user = current_user()
    if user.role == "therapist":
        return user.therapist_id
    wanted = request.values.get("therapist")
    if wanted:
        return wanted
    return (list_[0].get("therapist_id") or list_[0].get("id")) if list_ else None


def query_date(form: str, name: str = "date") -> date:
    """A date from the query string; a bad one is today, with the reason kept for the page
    to show beside the field (`field_error(form, name)`), never a 500."""
    value = request.args.get(name)
    today = datetime.now(LONDON).date()
    if not value:
        return today
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return _query_error(form, name, "must be a date (YYYY-MM-DD)", today)
    if not EARLIEST <= day <= LATEST:
        return _query_error(form, name, f"must be between {EARLIEST.year} and {LATEST.year}", today)
    return day


def _query_error(form: str, name: str, reason: str, fallback: date) -> date:
    state = g.setdefault(
        "form_state", {"form": form, "values": request.args, "errors": {}, "detail": ""}
    )
    state["errors"][name] = reason
    return fallback


def query_status() -> int:
    """400 when the page is shown with a query error beside a field, else 200."""
    state = g.get("form_state")
    return 400 if state and state.get("errors") and request.method == "GET" else 200


def _shown(everyone: list[dict]) -> list[dict]:
    user = current_user()
    if user.role == "therapist":
        return [t for t in everyone if t.get("therapist_id") == user.therapist_id] or [
            {"therapist_id": user.therapist_id, "name": user.name}
        ]
    wanted = request.args.getlist("therapist")
    chosen = [t for t in everyone if t.get("therapist_id") in wanted]
    return chosen or everyone[: grid.MAX_COLUMNS]


@blueprint.get("/diary")
@signed_in(*STAFF)
def diary():
    view = "day" if request.args.get("view") == "day" else "week"
    day = query_date("diary-filter")
    everyone, unavailable = therapists_or_error()
    shown = _shown(everyone) if not unavailable else []
    start = day if view == "day" else day - timedelta(days=day.weekday())
    length = 1 if view == "day" else 7
    sessions, errors = {}, []
    for t in shown:
        answer, error = backend().try_get(
            "scheduling",
            f"/therapists/{t['therapist_id']}/diary",
            default={},
            date=day.isoformat(),
            view=view,
        )
        if error is not None:
            errors.append(
                f"{t.get('name', 'A therapist')}'s diary could not be read: {error.detail}"
            )
        sessions[t["therapist_id"]] = items(answer)
    per_day = max(1, len(shown))
    days = grid.days_shown(start, length, shown, [s for found in sessions.values() for s in found])
    days = days[: max(1, grid.MAX_COLUMNS // per_day)]
    layout = grid.build(shown, sessions, days) if shown else None
    step = timedelta(days=length)
    return render_template(
        "diary.html",
        everyone=everyone,
        shown=shown,
        unavailable=unavailable,
        errors=errors,
        layout=layout,
        view=view,
        day=day,
        start=start,
        end=start + step - timedelta(days=1),
        today=datetime.now(LONDON).date(),
        prev=(start - step).isoformat(),
        next=(start + step).isoformat(),
        chosen=[t["therapist_id"] for t in shown],
    ), query_status()
