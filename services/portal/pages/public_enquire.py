"""The public "get in touch" page (no sign-in, phone-first): a person's enquiry goes to
records (`POST /enquiries`, as the portal) and into reception's inbox. Robots are kept out
without a third-party captcha: a field people never see (a robot fills it in and is thanked,
and nothing is stored), the form's signed start time (too quick, too old or forged: the form
again with the reason), and limits per address and per phone number or e-mail (429, nothing
stored). Bad input is answered by records' validation, beside each field."""

from __future__ import annotations

import re

from flask import request

from . import blueprint
from .public_common import (
    Busy,
    busy_page,
    digest,
    fill_time_problem,
    limit,
    limit_address,
    open_to_all,
    public_backend,
    public_page,
    refuse,
    started_token,
)

HONEYPOT = "website"
CONTACT_BY = {"phone": "a phone call", "sms": "a text message", "email": "e-mail"}
MODALITIES = {"telephone": "By telephone", "video": "By video", "face_to_face": "In person"}


@blueprint.get("/enquire")
@open_to_all
def enquire():
    return public_page(
        "enquire.html",
        started=started_token(),
        contact_by=CONTACT_BY,
        modalities=MODALITIES,
        honeypot=HONEYPOT,
    )


@blueprint.post("/enquire")
@open_to_all
def enquire_send():
    try:
        limit_address()
    except Busy:
        return busy_page()
    form = request.form
    if form.get(HONEYPOT):
        # a robot filled in the field people cannot see: thank it, store nothing
        return public_page("enquire_thanks.html", contact_by=None)
    problem = fill_time_problem(form.get("started", ""))
    if problem:
        raise refuse(problem)
    try:
        for kind, value in _contacts(form):
            limit("PUBLIC_RATE_PER_CONTACT", digest(f"{kind}:{value}"))
    except Busy:
        return busy_page()
    public_backend().post("records", "/enquiries", _body(form))
    return public_page("enquire_thanks.html", contact_by=CONTACT_BY.get(form.get("contact_by")))


def _text(form, name: str) -> str | None:
    return (form.get(name) or "").strip() or None


def _body(form) -> dict:
    """The form as records takes it; records validates every field (422 naming it)."""
    return {
        "given_name": (form.get("given_name") or "").strip(),
        "family_name": (form.get("family_name") or "").strip(),
        "phone": _text(form, "phone"),
        "email": _text(form, "email"),
        "contact_by": form.get("contact_by") or "",
        "concern": (form.get("concern") or "").strip(),
        "preferred_modality": form.get("preferred_modality") or "",
        "preferred_times": _text(form, "preferred_times"),
        "heard_from": _text(form, "heard_from"),
        "consent_to_contact": "yes" in form.getlist("consent_to_contact"),
    }


def _contacts(form) -> list[tuple[str, str]]:
    """The phone number and e-mail address as one person writes them in different ways
    (spaces, +44 or 0, capitals), so a flood cannot dodge the limit by respelling them."""
    found = []
    digits = re.sub(r"\D", "", form.get("phone") or "")
    if digits:
        found.append(("phone", re.sub(r"^(44|0)+", "", digits)))
    email = (form.get("email") or "").strip().lower()
    if email:
        found.append(("email", email))
    return found
