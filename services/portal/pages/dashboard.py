"""The practice dashboard for the clinical lead: recovery and reliable improvement by
therapist and by problem area, with the number of cases behind each rate, over a chosen
period, beside the national comparators (NHS Talking Therapies: 51% reliable recovery, 69%
reliable improvement; /work/shared/clinical.md). Measures computes; the portal presents."""
from __future__ import annotations

from datetime import date, timedelta

from flask import abort, render_template, request
from marshmallow import ValidationError

from shared.inputs import EARLIEST, in_date_range

from ..backend import backend
from ..security import signed_in
from .common import PROBLEM_AREAS
from .diary import therapists
from . import blueprint

NATIONAL = {"reliable_recovery": 0.51, "reliable_improvement": 0.69}
RATES = (("recovery", "Recovery"), ("reliable_improvement", "Reliable improvement"),
         ("reliable_recovery", "Reliable recovery"), ("reliable_deterioration", "Reliable deterioration"))


def _date_arg(name: str, default: date) -> date:
    """A query-string date inside the range every service accepts (shared.inputs)."""
    raw = request.args.get(name)
    if not raw:
        return default
    try:
        value = date.fromisoformat(raw)
    except ValueError:
        abort(400, description=f"{name} must be a date (YYYY-MM-DD)")
    try:
        in_date_range(value)
    except ValidationError as err:
        abort(422, description=f"{name} {err.messages[0]}")
    return value


def _period() -> tuple[str, str]:
    until = _date_arg("to", date.today())
    # a year back by default, but never out of the range (early 2000 would leave it)
    since = _date_arg("from", max(until - timedelta(days=365), EARLIEST))
    if since > until:
        abort(400, description="the period must start before it ends")
    return since.isoformat(), until.isoformat()


def percent(value) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


@blueprint.get("/dashboard")
@signed_in("clinical_lead")
def dashboard():
    since, until = _period()
    answer = backend().get("measures", "/dashboards/practice", **{"from": since, "to": until})
    names = {t.get("therapist_id"): t.get("name") for t in therapists()}
    return render_template(
        "dashboard.html", since=since, until=until, practice=answer.get("practice") or {},
        by_therapist=[{**g, "label": names.get(g.get("key")) or g.get("key")} for g in answer.get("by_therapist") or []],
        by_problem_area=[{**g, "label": PROBLEM_AREAS.get(g.get("key"), (g.get("key") or "").replace("_", " "))}
                         for g in answer.get("by_problem_area") or []],
        national={**NATIONAL, **(answer.get("national") or {})}, notes=answer.get("notes") or [],
        rates=RATES, percent=percent)
