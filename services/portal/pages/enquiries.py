"""Reception's enquiries: the inbox, the waiting list (weeks waiting) and the practice's
enquiries report; one enquiry with its contact attempts and the next steps (offer an
assessment by link, waiting list, decline and signpost, register as a client with the
details carried over). Records decides each step; scheduling issues the booking link, whose
token goes only to the person (staff never see it)."""

from __future__ import annotations

from datetime import timedelta

from flask import redirect, render_template, request, url_for

from ..backend import BackendError, backend
from ..security import signed_in
from . import blueprint
from .common import LONDON, form_flash_ok, items
from .diary import therapists_or_error

RECEPTION = ("admin", "clinical_lead")
STATUSES = ("received", "offered", "waiting", "declined", "registered")
OFFER_MODALITIES = ("telephone", "video")
SEARCH_DAYS = 13


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _rows(value, key: str = "enquiries") -> list[dict]:
    found = _dict(value).get(key)
    return [r for r in found if isinstance(r, dict)] if isinstance(found, list) else []


def _number(value):
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _report(answer) -> dict | None:
    """The report's figures, each a number or None (a field missing reads as unknown)."""
    if answer is None:
        return None
    r = _dict(answer)

    def days(key: str) -> dict:
        d = _dict(r.get(key))
        return {k: _number(d.get(k)) for k in ("count", "median_days")}

    out = {k: _number(r.get(k)) for k in ("enquiries", "converted", "waiting_now")}
    rate = _number(r.get("conversion_rate"))
    out["conversion_percent"] = round(rate * 100) if rate is not None else None
    return {
        **out,
        "to_assessment": days("to_assessment"),
        "to_treatment": days("to_first_treatment"),
    }


def _refused(reasons: dict, detail: str = "Please correct the fields marked below."):
    return BackendError(
        422, detail, "portal", [{"field": k, "reason": v} for k, v in reasons.items()]
    )


@blueprint.get("/enquiries")
@signed_in(*RECEPTION)
def enquiries():
    status = request.args.get("status") if request.args.get("status") in STATUSES else None
    api = backend()
    inbox, inbox_error = api.try_get("records", "/enquiries", default={}, status=status)
    waiting, waiting_error = api.try_get("records", "/waiting-list", default={})
    report, report_error = api.try_get("records", "/reports/enquiries", default=None)
    return render_template(
        "enquiries.html",
        status=status,
        statuses=STATUSES,
        inbox=_rows(inbox),
        inbox_error=inbox_error,
        waiting=_rows(waiting),
        waiting_error=waiting_error,
        report=_report(report),
        report_error=report_error,
    )


@blueprint.get("/enquiries/<enquiry_id>")
@signed_in(*RECEPTION)
def enquiry(enquiry_id):
    api = backend()
    found = _dict(api.get("records", f"/enquiries/{enquiry_id}"))
    found["enquiry_id"] = enquiry_id
    found["attempts"] = _rows(found, "attempts")
    therapists, unavailable = therapists_or_error()
    therapists = [t for t in therapists if isinstance(t, dict)]
    therapist_id = request.args.get("therapist") or (
        therapists[0].get("therapist_id") if therapists else None
    )
    modality = request.args.get("modality")
    if modality not in OFFER_MODALITIES:
        modality = (
            found.get("preferred_modality")
            if found.get("preferred_modality") in OFFER_MODALITIES
            else "telephone"
        )
    slots, slots_error = [], None
    if therapist_id and found.get("status") in ("received", "offered", "waiting"):
        first = _today() + timedelta(days=1)
        answer, slots_error = api.try_get(
            "scheduling",
            "/slots",
            default=[],
            therapist_id=therapist_id,
            modality=modality,
            **{"from": first.isoformat(), "to": (first + timedelta(days=SEARCH_DAYS)).isoformat()},
        )
        slots = [x for x in items(answer) if isinstance(x, dict)]
    return render_template(
        "enquiry.html",
        e=found,
        therapists=therapists,
        unavailable=unavailable,
        therapist_id=therapist_id,
        modality=modality,
        modalities=OFFER_MODALITIES,
        slots=slots,
        slots_error=slots_error,
    )


def _today():
    from datetime import datetime

    return datetime.now(LONDON).date()


def _to_enquiry(enquiry_id):
    return redirect(url_for("pages.enquiry", enquiry_id=enquiry_id))


def _step(enquiry_id: str, action: str, body: dict, done: str):
    """One of reception's steps on the enquiry (records refusing it shows the form again)."""
    backend().post("records", f"/enquiries/{enquiry_id}/{action}", body)
    form_flash_ok(done)
    return _to_enquiry(enquiry_id)


@blueprint.post("/enquiries/<enquiry_id>/contact-attempts")
@signed_in(*RECEPTION)
def enquiry_attempt(enquiry_id):
    body = {
        "channel": request.form.get("channel", ""),
        "outcome": request.form.get("outcome", ""),
        "note": request.form.get("note", "").strip() or None,
    }
    return _step(enquiry_id, "contact-attempts", body, "Contact attempt logged.")


@blueprint.post("/enquiries/<enquiry_id>/waitlist")
@signed_in(*RECEPTION)
def enquiry_waitlist(enquiry_id):
    body = {"priority": request.form.get("priority", "")}
    return _step(enquiry_id, "waitlist", body, "On the waiting list.")


@blueprint.post("/enquiries/<enquiry_id>/decline")
@signed_in(*RECEPTION)
def enquiry_decline(enquiry_id):
    body = {
        "reason": request.form.get("reason", "").strip(),
        "signposted_to": request.form.get("signposted_to", "").strip() or None,
    }
    return _step(enquiry_id, "decline", body, "Enquiry declined.")


@blueprint.post("/enquiries/<enquiry_id>/offer")
@signed_in(*RECEPTION)
def enquiry_offer(enquiry_id):
    """Offer an assessment: records notes the offer, scheduling issues the booking link for
    the client id records reserved for the person; the link goes to them, not to us."""
    starts = request.form.getlist("starts")
    therapist_id = request.form.get("therapist_id", "")
    if not starts:
        raise _refused({"starts": "choose at least one time to offer"})
    api = backend()
    client_id = _dict(api.get("records", f"/enquiries/{enquiry_id}")).get("client_id")
    if not isinstance(client_id, str):
        raise BackendError(502, "The records service sent an answer the portal cannot read.")
    api.post("records", f"/enquiries/{enquiry_id}/offer", {"therapist_id": therapist_id})
    api.post(
        "scheduling",
        "/booking-links",
        {
            "client_id": client_id,
            "enquiry_id": enquiry_id,
            "therapist_id": therapist_id,
            "modality": request.form.get("modality", ""),
            "starts": starts,
        },
    )
    form_flash_ok(f"Assessment offered: {len(starts)} time(s) sent to the person by link.")
    return _to_enquiry(enquiry_id)


@blueprint.post("/enquiries/<enquiry_id>/register")
@signed_in(*RECEPTION)
def enquiry_register(enquiry_id):
    """Only what the enquiry did not ask; the rest is carried over by records."""
    body = {
        "date_of_birth": request.form.get("date_of_birth", ""),
        "therapist_id": request.form.get("therapist_id", ""),
    }
    client_id = _dict(backend().post("records", f"/enquiries/{enquiry_id}/register", body)).get(
        "client_id"
    )
    if not isinstance(client_id, str):
        raise BackendError(502, "The records service sent an answer the portal cannot read.")
    form_flash_ok("Registered as a client with the details from the enquiry.")
    return redirect(url_for("pages.client", client_id=client_id))
