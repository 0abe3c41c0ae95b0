"""A therapist's caseload: each client's phase, sessions attended, next appointment (records'
`GET /therapists/{id}/caseload`), latest scores and open risk alerts (measures'
`GET /therapists/{id}/latest-scores`). A therapist sees their own; the lead picks one."""

from __future__ import annotations

from flask import render_template, request

from ..backend import backend
from ..security import current_user, signed_in
from . import blueprint
from .diary import therapists
from .measures import safe_id


def _chosen(listed: list[dict]) -> str | None:
    user = current_user()
    if user.role == "therapist":
        return user.therapist_id
    ids = [t.get("therapist_id") for t in listed]
    wanted = request.args.get("therapist")
    if wanted:
        return safe_id(wanted)
    return ids[0] if ids else None


@blueprint.get("/caseload")
@signed_in("therapist", "clinical_lead")
def caseload():
    api = backend()
    listed = therapists()
    therapist_id = _chosen(listed)
    rows, measures_error = [], None
    if therapist_id:
        records = api.get("records", f"/therapists/{therapist_id}/caseload")
        scores, measures_error = api.try_get(
            "measures", f"/therapists/{therapist_id}/latest-scores", default={}
        )
        by_client = {c.get("client_id"): c for c in (scores or {}).get("clients") or []}
        for c in records.get("clients") or []:
            m = by_client.get(c.get("client_id")) or {}
            rows.append(
                {**c, "latest": m.get("latest") or [], "open_alerts": m.get("open_alerts") or []}
            )
    names = {t.get("therapist_id"): t.get("name") for t in listed}
    return render_template(
        "caseload.html",
        rows=rows,
        therapists=listed,
        therapist_id=therapist_id,
        therapist_name=names.get(therapist_id) or therapist_id,
        measures_error=measures_error,
        pick=current_user().role == "clinical_lead",
    )
