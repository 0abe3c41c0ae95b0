"""The practice dashboard for the clinical lead: recovery and reliable improvement by
therapist and by problem area, with the number of cases, over a chosen period, beside the
national comparators (NHS Talking Therapies: 51% reliable recovery, 69% reliable
improvement; /work/shared/clinical.md)."""
from __future__ import annotations

from datetime import date, timedelta

from flask import abort, render_template, request

from ..backend import backend
from ..security import signed_in
from .common import PROBLEM_AREAS, items
from .diary import therapists
from . import blueprint

NATIONAL = {"reliable_recovery": 51.0, "reliable_improvement": 69.0}


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


def rate(row: dict, key: str):
    """A percentage from the row: either given as `<key>_rate` (0..1 or %), or counted."""
    for name in (f"{key}_rate", f"{key}_pct", key):
        value = row.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return round(value * 100, 1) if value <= 1 and name != f"{key}_pct" else round(float(value), 1)
        if isinstance(value, dict) and "rate" in value:
            return rate({f"{key}_rate": value["rate"]}, key)
    return None


def rows(answer, key: str) -> list[dict]:
    found = answer.get(key) if isinstance(answer, dict) else None
    if isinstance(found, dict):
        return [{"name": name, **(value if isinstance(value, dict) else {})} for name, value in found.items()]
    return items(found or [])


@blueprint.get("/dashboard")
@signed_in("clinical_lead")
def dashboard():
    since, until = _period()
    answer = backend().get("measures", "/dashboards/practice", **{"from": since, "to": until})
    names = {t.get("therapist_id"): t.get("name") for t in therapists()}
    return render_template("dashboard.html", since=since, until=until, practice=answer,
                           by_therapist=rows(answer, "by_therapist"),
                           by_problem_area=rows(answer, "by_problem_area"),
                           national=NATIONAL, rate=rate,
                           therapist_name=lambda r: names.get(r.get("therapist_id")) or r.get("name") or r.get("therapist_id"),
                           area_name=lambda r: PROBLEM_AREAS.get(r.get("problem_area") or r.get("name"),
                                                                 r.get("problem_area") or r.get("name")))
