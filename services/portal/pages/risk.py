"""The risk inbox: alerts raised by a questionnaire answer (PHQ-9 item 9, CORE-10 item 6),
open ones first; acknowledging one needs a note of what was done."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for

from ..backend import backend
from ..security import signed_in
from . import blueprint
from .common import client_names, form_flash_ok, items


@blueprint.get("/risk")
@signed_in("therapist", "clinical_lead")
def risk_inbox():
    api = backend()
    alerts = items(api.get("measures", "/risk-alerts", status="all"))
    names = client_names(api) if alerts else {}
    alerts = [{**a, "client_name": names.get(a.get("client_id"))} for a in alerts]
    open_ = sorted(
        [a for a in alerts if not _done(a)],
        key=lambda a: str(a.get("indicated_at") or ""),
        reverse=True,
    )
    done = sorted(
        [a for a in alerts if _done(a)],
        key=lambda a: str(a.get("acknowledged_at") or ""),
        reverse=True,
    )
    return render_template("risk.html", open_alerts=open_, done_alerts=done)


def _done(alert: dict) -> bool:
    return bool(alert.get("acknowledged_at")) or alert.get("status") == "acknowledged"


@blueprint.post("/risk/<alert_id>/acknowledge")
@signed_in("therapist", "clinical_lead")
def risk_acknowledge(alert_id):
    backend().post(
        "measures",
        f"/risk-alerts/{alert_id}/acknowledge",
        {"note": request.form.get("note", "").strip()},
    )
    form_flash_ok("Alert acknowledged.")
    return redirect(url_for("pages.risk_inbox"))
