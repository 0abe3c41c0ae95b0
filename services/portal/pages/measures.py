"""A client's measures: each instrument's totals over the course as a chart with severity
bands (from measures' `GET /instruments`) and the caseness line, the outcome summary, the
staff form for answers given with the client in the room, and the questionnaire links with
a resend button. Reception sees the links only (no scores): they may resend a link to the
client's own channels, and no one on the staff ever sees the link itself."""

from __future__ import annotations

import re

from flask import abort, redirect, render_template, request, url_for

from ..backend import backend
from ..charts import scales_from, score_chart
from ..security import current_user, signed_in
from . import blueprint
from .common import form_flash_ok, items, local
from .sessions import answer_sessions, session_label, today_or_next

ENTRY_FORM = "enter-answers"
DEFAULT_SET = ("PHQ-9", "GAD-7", "WSAS")
OPEN = ("requested", "sent")


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
                out.setdefault(score["instrument"], []).append(
                    _point(
                        {
                            **score,
                            "completed_at": when,
                            "session_number": response.get("session_number"),
                        }
                    )
                )
    return _sorted(out)


def _point(p: dict) -> dict:
    at = p.get("completed_at") or p.get("at") or p.get("date")
    number = p.get("session_number") or p.get("number")
    return {
        "total": p.get("total", p.get("score")),
        "at": at,
        "band": p.get("band"),
        "label": (f"Session {number}, " if number else "") + local(at, "%d %b %Y"),
        "short": str(number) if number else local(at, "%d/%m"),
    }


def _sorted(out: dict) -> dict:
    return {k: sorted(v, key=lambda p: str(p["at"] or "")) for k, v in out.items()}


def _clinical(api, client_id: str) -> dict:
    """What only clinicians are shown: charts, outcomes and the entry form."""
    trajectory = api.get("measures", f"/clients/{client_id}/trajectory")
    described, _ = api.try_get("measures", "/instruments", default={})
    chosen, _ = api.try_get("measures", f"/clients/{client_id}/instruments", default={})
    outcomes, outcomes_error = api.try_get("measures", f"/clients/{client_id}/outcomes", default={})
    scales = scales_from(described)
    charts = [
        (name, score_chart(name, points, scale=scales.get(name)), points)
        for name, points in series_from(trajectory).items()
    ]
    by_code = {i.get("code"): i for i in (described or {}).get("instruments") or []}
    wanted = (chosen or {}).get("instruments") or list(DEFAULT_SET)
    return {
        "charts": charts,
        "outcomes": items((outcomes or {}).get("outcomes") or []),
        "outcomes_error": outcomes_error,
        "entry": [by_code[c] for c in wanted if c in by_code],
        **_entry_sessions(api, client_id),
    }


def _entry_sessions(api, client_id: str) -> dict:
    """The sessions the answers may belong to (scheduling's list of the client's sessions):
    today's chosen, else the next, else the latest, so measures files them under that
    session's course and number rather than guessing the latest course."""
    sessions, error = api.try_get("scheduling", f"/clients/{client_id}/sessions", default=[])
    offered = answer_sessions(items(sessions))
    chosen = today_or_next(offered)
    return {
        "entry_sessions": [(s.get("session_id"), session_label(s)) for s in offered],
        "entry_session": chosen.get("session_id") if chosen else "",
        "entry_sessions_error": error,
    }


@blueprint.get("/clients/<client_id>/measures")
@signed_in("admin", "therapist", "clinical_lead")
def client_measures(client_id):
    api = backend()
    clinical = current_user().role != "admin"
    record = api.get("records", f"/clients/{client_id}")
    requests_, links_error = api.try_get(
        "measures", "/questionnaire-requests", default={}, client_id=client_id
    )
    links = sorted(
        items((requests_ or {}).get("requests") or []),
        key=lambda r: str(r.get("due_at") or ""),
        reverse=True,
    )[:20]
    extra = _clinical(api, client_id) if clinical else {}
    return render_template(
        "measures.html",
        c=record,
        client_id=client_id,
        clinical=clinical,
        links=links,
        links_error=links_error,
        open_statuses=OPEN,
        entry_form=ENTRY_FORM,
        **extra,
    )


def answers_from(form, codes: list[str]) -> dict:
    """{code: [0..max or None]} from fields named `answers.<code>.<item>`; an instrument
    with nothing answered is left out. Whether the rest can be scored is measures' rule."""
    answers = {}
    for code in codes:
        values, n = [], 1
        while f"answers.{code}.{n}" in form:
            raw = form.get(f"answers.{code}.{n}", "").strip()
            values.append(int(raw) if raw in _CHOICES else None)
            n += 1
        if any(v is not None for v in values):
            answers[code] = values
    return answers


_CHOICES = tuple(str(n) for n in range(10))
_SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,100}")


def safe_id(value: str) -> str:
    """An id from the URL goes into a service's URL path: only plain ids (issue 15 #13)."""
    if not _SAFE_ID.fullmatch(value or ""):
        abort(404)
    return value


@blueprint.post("/clients/<client_id>/measures/responses")
@signed_in("therapist", "clinical_lead")
def enter_answers(client_id):
    safe_id(client_id)
    codes = request.form.getlist("instrument")
    body = {"client_id": client_id, "answers": answers_from(request.form, codes)}
    if request.form.get("session_id"):
        body["session_id"] = request.form["session_id"]
    saved = backend().post("measures", "/responses", body)
    scores = ", ".join(
        f"{s['instrument']} {_total(s.get('total'))}" + (f" ({s['band']})" if s.get("band") else "")
        for s in saved.get("scores") or []
    )
    form_flash_ok(f"Answers saved: {scores}.")
    if saved.get("risk_alerts"):
        form_flash_ok("A risk item needs follow-up: it is in the risk inbox.")
    return redirect(url_for("pages.client_measures", client_id=client_id))


def _total(value) -> str:
    if value is None:
        return "not scored"
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


@blueprint.post("/clients/<client_id>/measures/requests/<request_id>/resend")
@signed_in("admin", "therapist", "clinical_lead")
def resend_link(client_id, request_id):
    safe_id(client_id)
    backend().post("measures", f"/questionnaire-requests/{safe_id(request_id)}/resend")
    form_flash_ok(
        "The questionnaire link is being sent again to the client's own e-mail and phone."
    )
    return redirect(url_for("pages.client_measures", client_id=client_id) + "#links")
