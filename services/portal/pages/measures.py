"""A client's measures: each instrument's totals over the course as a chart with severity
bands and the caseness line, the outcome summary, and the questionnaire link status."""
from __future__ import annotations

from flask import render_template

from ..backend import backend
from ..charts import SCALES, score_chart
from ..security import signed_in
from .common import items, local
from . import blueprint


def series_from(answer) -> dict[str, list[dict]]:
    """{instrument: [{"total", "at", "label", "short"}]} from the trajectory answer, which may
    be keyed by instrument, a list of series, or a list of completed questionnaires."""
    out: dict[str, list[dict]] = {}
    if isinstance(answer, dict):
        keyed = answer.get("instruments") or answer.get("trajectory") or answer.get("series")
        if isinstance(keyed, dict):
            for name, points in keyed.items():
                out[name] = [_point(p) for p in items(points)]
            return _sorted(out)
        if isinstance(keyed, list) and keyed and "points" in keyed[0]:
            for serie in keyed:
                out[serie["instrument"]] = [_point(p) for p in serie["points"]]
            return _sorted(out)
    for response in items(answer):
        when = response.get("completed_at") or response.get("at")
        for score in response.get("scores") or [response]:
            if score.get("instrument"):
                out.setdefault(score["instrument"], []).append(_point({**score, "completed_at": when,
                                                                       "session_number": response.get("session_number")}))
    return _sorted(out)


def _point(p: dict) -> dict:
    at = p.get("completed_at") or p.get("at") or p.get("date")
    number = p.get("session_number") or p.get("number")
    return {"total": p.get("total", p.get("score")), "at": at, "band": p.get("band"),
            "label": (f"Session {number}, " if number else "") + local(at, "%d %b %Y"),
            "short": str(number) if number else local(at, "%d/%m")}


def _sorted(out: dict) -> dict:
    return {k: sorted(v, key=lambda p: str(p["at"] or "")) for k, v in out.items() if k in SCALES}


@blueprint.get("/clients/<client_id>/measures")
@signed_in("therapist", "clinical_lead")
def client_measures(client_id):
    api = backend()
    record = api.get("records", f"/clients/{client_id}")
    trajectory = api.get("measures", f"/clients/{client_id}/trajectory")
    outcomes, outcomes_error = api.try_get("measures", f"/clients/{client_id}/outcomes", default={})
    requests_, links_error = api.try_get("measures", "/questionnaire-requests", default={},
                                         client_id=client_id)
    series = series_from(trajectory)
    charts = [(name, score_chart(name, points), points) for name, points in series.items()]
    links = sorted(items((requests_ or {}).get("requests") or []), key=lambda r: str(r.get("due_at") or ""),
                   reverse=True)[:20]
    return render_template("measures.html", c=record, client_id=client_id, charts=charts,
                           outcomes=items((outcomes or {}).get("outcomes") or []),
                           outcomes_error=outcomes_error, links=links, links_error=links_error)
