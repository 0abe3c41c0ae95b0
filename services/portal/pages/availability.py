"""A therapist's working hours and leave (scheduling's PUT /therapists/{id}/availability,
which replaces both): reception and the lead for anyone, a therapist for themself."""

from __future__ import annotations

import re
from datetime import date

from flask import redirect, render_template, request, url_for

from ..backend import backend
from ..security import current_user, signed_in
from . import blueprint
from .booking import refused
from .common import form_flash_ok
from .diary import STAFF, therapists_or_error

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
NEW_LEAVE_ROWS = 2


def _allowed(therapist_id: str) -> bool:
    user = current_user()
    return user.role != "therapist" or user.therapist_id == therapist_id


@blueprint.get("/availability")
@signed_in(*STAFF)
def availability_home():
    user = current_user()
    if user.role == "therapist":
        return redirect(url_for("pages.availability", therapist_id=user.therapist_id))
    everyone, _ = therapists_or_error()
    wanted = request.args.get("therapist") or (everyone[0]["therapist_id"] if everyone else None)
    if not wanted:
        return render_template(
            "error.html", status=404, title="Not found", detail="No therapists are registered yet."
        ), 404
    return redirect(url_for("pages.availability", therapist_id=wanted))


def _not_yours():
    return render_template(
        "error.html",
        status=403,
        title="Not available",
        detail="You can change only your own hours and leave.",
    ), 403


@blueprint.get("/therapists/<therapist_id>/availability")
@signed_in(*STAFF)
def availability(therapist_id):
    if not _allowed(therapist_id):
        return _not_yours()
    everyone, unavailable = therapists_or_error()
    therapist = next((t for t in everyone if t.get("therapist_id") == therapist_id), None)
    if therapist is None and not unavailable:
        return render_template(
            "error.html", status=404, title="Not found", detail="There is no such therapist."
        ), 404
    therapist = therapist or {
        "therapist_id": therapist_id,
        "name": "",
        "weekly_hours": [],
        "exceptions": [],
    }
    days = [
        [h for h in therapist.get("weekly_hours") or [] if h.get("weekday") == d] for d in range(7)
    ]
    leave = sorted(therapist.get("exceptions") or [], key=lambda e: str(e.get("start_date")))
    return render_template(
        "availability.html",
        therapist=therapist,
        everyone=everyone,
        days=days,
        weekdays=WEEKDAYS,
        leave=leave,
        new_rows=NEW_LEAVE_ROWS,
        unavailable=unavailable,
    )


@blueprint.post("/therapists/<therapist_id>/availability")
@signed_in(*STAFF)
def availability_submit(therapist_id):
    if not _allowed(therapist_id):
        return _not_yours()
    body = availability_body(request.form)
    backend().put("scheduling", f"/therapists/{therapist_id}/availability", body)
    form_flash_ok("Hours and leave saved.")
    return redirect(url_for("pages.availability", therapist_id=therapist_id))


def availability_body(form) -> dict:
    errors: dict = {}
    hours = []
    for d in range(7):
        for suffix in ("", "2"):
            start, end = (
                (form.get(f"start{suffix}-{d}") or "").strip(),
                (form.get(f"end{suffix}-{d}") or "").strip(),
            )
            if not start and not end:
                continue
            window = _window(d, suffix, start, end, errors)
            if window:
                hours.append(window)
    exceptions = []
    for i in range(_int(form.get("leave_rows"), 0, 200)):
        if form.get(f"leave-remove-{i}"):
            continue
        entry = _leave(form, i, errors)
        if entry:
            exceptions.append(entry)
    if errors:
        raise refused(errors)
    return {"weekly_hours": hours, "exceptions": exceptions}


def _window(d: int, suffix: str, start: str, end: str, errors: dict) -> dict | None:
    name = f"{WEEKDAYS[d]}{' (second period)' if suffix else ''}"
    for field, value in ((f"start{suffix}-{d}", start), (f"end{suffix}-{d}", end)):
        if not HHMM.match(value):
            errors[field] = f"{name}: give both times as HH:MM (24-hour)"
            return None
    if end <= start:
        errors[f"end{suffix}-{d}"] = f"{name}: must end after it starts"
        return None
    return {"weekday": d, "start": start, "end": end}


def _leave(form, i: int, errors: dict) -> dict | None:
    start, end = (
        (form.get(f"leave-start-{i}") or "").strip(),
        (form.get(f"leave-end-{i}") or "").strip(),
    )
    reason = (form.get(f"leave-reason-{i}") or "").strip()
    if not (start or end or reason):
        return None
    days = {}
    for field, value in ((f"leave-start-{i}", start), (f"leave-end-{i}", end or start)):
        try:
            days[field] = date.fromisoformat(value)
        except ValueError:
            errors[field] = "must be a date"
            continue
        if not date(2000, 1, 1) <= days[field] <= date(2099, 12, 31):
            errors[field] = "must be between 2000 and 2099"
    if len(days) == 2 and days[f"leave-end-{i}"] < days[f"leave-start-{i}"]:
        errors[f"leave-end-{i}"] = "must be on or after the first day"
    if not reason:
        errors[f"leave-reason-{i}"] = "say what the leave is (e.g. annual leave)"
    if any(k.startswith("leave-") and k.endswith(f"-{i}") for k in errors):
        return None
    return {"start_date": start, "end_date": end or start, "reason": reason[:200]}


def _int(value, low: int, high: int) -> int:
    try:
        return max(low, min(high, int(value)))
    except (TypeError, ValueError):
        return low
