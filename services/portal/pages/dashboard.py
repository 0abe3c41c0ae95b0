"""The practice dashboard for the clinical lead: recovery and reliable improvement by
therapist and by problem area, with the number of cases behind each rate, over a chosen
period, beside the national comparators (NHS Talking Therapies: 51% reliable recovery, 69%
reliable improvement; /work/shared/clinical.md). Measures computes; the portal presents."""
from __future__ import annotations

from datetime import date, timedelta

from flask import abort, render_template, request

from ..backend import backend
from ..security import signed_in
from .common import PROBLEM_AREAS
from .diary import therapists
from . import blueprint

NATIONAL = {"reliable_recovery": 0.51, "reliable_improvement": 0.69}
RATES = (("recovery", "Recovery"), ("reliable_improvement", "Reliable improvement"),
         ("reliable_recovery", "Reliable recovery"), ("reliable_deterioration", "Reliable deterioration"))


def _period() -> tuple[str, str]:
    try:
        until = date.fromisoformat(request.args["to"]) if request.args.get("to") else date.today()
        since = (date.fromisoformat(request.args["from"]) if request.args.get("from")
                 else until - timedelta(days=365))
    except ValueError:
        abort(400, description="from and to must be dates (YYYY-MM-DD)")
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
