"""The first-session assessment and the IPT formulation with its interpersonal inventory
(clinical.md: each important person, their ring in the closeness circle, what is good and
not so good; a partner seen unilaterally is recorded here, not as a client)."""

from __future__ import annotations

import re

from flask import g, redirect, render_template, request, url_for

from shared.contracts.records import CONDITIONS

from ..backend import BackendError, backend
from ..security import signed_in
from . import blueprint
from .common import PROBLEM_AREAS, form_flash_ok, form_int, items
from .sessions import session_label, today_or_latest_attended

CLINICAL = ("therapist", "clinical_lead")
RINGS = {"1": "Inner", "2": "Middle", "3": "Outer"}
BLANK_ROWS = 2  # spare rows under the people already listed
MIN_ROWS = 3  # a first formulation: partner, family, a friend
MAX_ROWS = 100  # far more people than a closeness circle holds; the form loops over them
PERSON = ("name", "relationship", "ring", "good", "hard", "unilateral")


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


@blueprint.route("/clients/<client_id>/assessment", methods=["GET", "POST"])
@signed_in(*CLINICAL)
def assessment(client_id):
    api = backend()
    if request.method == "POST":
        f = request.form
        api.post(
            "records",
            f"/clients/{client_id}/assessment",
            {
                "session_id": f.get("session_id") or None,
                "presenting_difficulties": f.get("presenting_difficulties", "").strip(),
                "conditions": f.getlist("conditions"),
                "goals": _lines(f.get("goals", "")),
                "risk_summary": f.get("risk_summary", "").strip(),
            },
        )
        form_flash_ok("Assessment recorded.")
        return redirect(url_for("pages.client", client_id=client_id) + "#assessment")
    record = api.get("records", f"/clients/{client_id}")
    sessions, _ = api.try_get("scheduling", f"/clients/{client_id}/sessions", default=[])
    sessions = sorted(items(sessions), key=lambda s: s.get("starts_at") or "")
    chosen = today_or_latest_attended(sessions)
    return render_template(
        "assessment.html",
        c=record,
        client_id=client_id,
        conditions=CONDITIONS,
        sessions=[s for s in sessions if s.get("status") != "cancelled"],
        session_label=session_label,
        default_session=chosen.get("session_id") if chosen else "",
    )


@blueprint.route("/clients/<client_id>/formulation", methods=["GET", "POST"])
@signed_in(*CLINICAL)
def formulation(client_id):
    if request.method == "POST":
        if request.form.get("add_person"):  # one more blank row, what was typed kept (no JS)
            g.form_state = {
                "form": "formulation",
                "values": request.form,
                "errors": {},
                "detail": "",
            }
            return _formulation_page(client_id, extra=1)
        rows, people = _people(request.form)
        body = {
            "problem_areas": request.form.getlist("problem_areas"),
            "formulation": request.form.get("formulation", "").strip(),
            "inventory": people,
            "goals": _lines(request.form.get("goals", "")),
            "expected_revision": form_int("expected_revision", 0, 0, 10**9),
        }
        try:
            backend().put("records", f"/clients/{client_id}/formulation", body)
        except BackendError as err:
            raise _on_form_rows(err, rows) from err
        form_flash_ok("Formulation recorded.")
        return redirect(url_for("pages.client", client_id=client_id) + "#formulation")
    return _formulation_page(client_id)


def _formulation_page(client_id: str, extra: int = 0):
    record = backend().get("records", f"/clients/{client_id}")
    saved = (record.get("formulation") or {}).get("inventory") or []
    shown = _shown_rows() if g.get("form_state") else 0
    rows = max(shown, len(saved) + BLANK_ROWS, MIN_ROWS) + extra
    return render_template(
        "formulation.html",
        c=record,
        client_id=client_id,
        rows=rows,
        saved=saved,
        rings=RINGS,
        problem_areas=PROBLEM_AREAS,
    )


def _shown_rows() -> int:
    """The rows the form had when shown again (what was typed kept); a bad count shows none."""
    try:
        return form_int("rows", 0, 0, MAX_ROWS)
    except BackendError:
        return 0


def _people(form) -> tuple[list[int], list[dict]]:
    """The inventory from the form's rows (`person-<i>-<field>`); blank rows are left out.
    Returns the form row of each person sent too, to put records' errors beside the row."""
    rows, people = [], []
    for i in range(form_int("rows", 0, 0, MAX_ROWS)):
        value = {k: form.get(f"person-{i}-{k}", "").strip() for k in PERSON}
        if not any(value[k] for k in ("name", "relationship", "good", "hard", "unilateral")):
            continue
        rows.append(i)
        people.append(
            {
                "name": value["name"],
                "relationship": value["relationship"],
                "closeness": int(value["ring"]) if value["ring"] in RINGS else 2,
                "good": value["good"],
                "hard": value["hard"],
                "unilateral_partner": bool(value["unilateral"]),
            }
        )
    return rows, people


def _on_form_rows(err: BackendError, rows: list[int]) -> BackendError:
    """records names `inventory.<n>.<field>` of the people sent; the form shows them by row."""

    def to_row(field: str) -> str:
        found = re.fullmatch(r"inventory\.(\d+)\.(\w+)", field or "")
        if not found or int(found.group(1)) >= len(rows):
            return field
        name = {"closeness": "ring", "unilateral_partner": "unilateral"}.get(
            found.group(2), found.group(2)
        )
        return f"person-{rows[int(found.group(1))]}-{name}"

    err.errors = [{**e, "field": to_row(e.get("field", ""))} for e in err.errors or []]
    return err
