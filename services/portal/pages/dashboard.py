"""The practice dashboard for the clinical lead: recovery and reliable improvement by
therapist and by problem area, with the number of cases behind each rate, over a chosen
period, beside the national comparators (NHS Talking Therapies: 51% reliable recovery, 69%
reliable improvement; /work/shared/clinical.md). Measures computes; the portal presents."""

from __future__ import annotations

from datetime import date, timedelta

from flask import Response, abort, render_template, request
from marshmallow import ValidationError

from shared.inputs import EARLIEST, in_date_range

from ..backend import backend
from ..charts import rate_chart
from ..security import signed_in
from . import blueprint
from .common import PROBLEM_AREAS
from .diary import therapists

NATIONAL = {"reliable_recovery": 0.51, "reliable_improvement": 0.69}
RATES = (
    ("recovery", "Recovery"),
    ("reliable_improvement", "Reliable improvement"),
    ("reliable_recovery", "Reliable recovery"),
    ("reliable_deterioration", "Reliable deterioration"),
)


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
    national_ = {**NATIONAL, **(answer.get("national") or {})}
    return render_template(
        "dashboard.html",
        since=since,
        until=until,
        practice=answer.get("practice") or {},
        by_therapist=[
            {**g, "label": names.get(g.get("key")) or g.get("key")}
            for g in answer.get("by_therapist") or []
        ],
        by_problem_area=[
            {**g, "label": _area(g.get("key"))} for g in answer.get("by_problem_area") or []
        ],
        national=national_,
        notes=answer.get("notes") or [],
        rates=RATES,
        percent=percent,
        charts=over_time(answer.get("by_month") or [], names, national_),
    )


# Only reliable improvement has a national comparator of the same measure (69%); the 51% is
# for reliable recovery, which is not the recovery charted, so that chart draws no line.
CHARTED = (("recovery", "Recovery"), ("reliable_improvement", "Reliable improvement"))


def _area(key) -> str:
    return PROBLEM_AREAS.get(key, (key or "").replace("_", " "))


def over_time(months: list[dict], names: dict, national: dict) -> list[dict]:
    """Recovery and reliable improvement month by month, by therapist and by problem area:
    each chart with the same figures as a table (months down, groups across)."""
    labels = [m["month"] for m in months]
    charts = []
    for group, label_of, heading in (
        ("by_therapist", lambda k: names.get(k) or k, "therapist"),
        ("by_problem_area", _area, "problem area"),
    ):
        keys = sorted(
            {g["key"] for m in months for g in m.get(group) or []}, key=lambda k: label_of(k)
        )
        for rate, name in CHARTED:
            lines = []
            for key in keys:
                per_month = [
                    next((g.get(rate) or {} for g in m.get(group) or [] if g["key"] == key), {})
                    for m in months
                ]
                lines.append((label_of(key), per_month))
            title = f"{name} by {heading}, month by month"
            charts.append(
                {
                    "id": f"{rate}-{group}",
                    "title": title,
                    "months": labels,
                    "lines": lines,
                    "svg": rate_chart(
                        title,
                        labels,
                        [(k, [c.get("rate") for c in v]) for k, v in lines],
                        national=national.get(rate),
                    ),
                }
            )
    return charts


@blueprint.get("/dashboard.csv")
@signed_in("clinical_lead")
def dashboard_csv():
    """The practice figures as CSV, straight from measures (the whole period and each month)."""
    since, until = _period()
    body, content_type = backend().get_file(
        "measures", "/dashboards/practice.csv", **{"from": since, "to": until}
    )
    return Response(
        body,
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="practice-outcomes-{since}-{until}.csv"'
        },
    )
