"""The person's booking link (`/book-online/<token>`, no sign-in, phone-first): the times
reception offered that are still free, and one press books the chosen one through
scheduling (`POST /booking-links/book`, as the portal), with the slot claims of a staff
booking. An unknown, used or expired link is one plain page (404), so a guessed link cannot
be told from a spent one; attempts are limited per address and per link (429). The token
is the credential: it is sent on only in a request body, never to another site (no
referrer), and the page is neither cached nor indexed."""

from __future__ import annotations

from flask import request

from ..backend import BackendError
from . import blueprint
from .common import local
from .public_common import (
    Busy,
    busy_page,
    digest,
    limit,
    limit_address,
    open_to_all,
    public_backend,
    public_page,
    refuse,
)

MODALITIES = {"telephone": "by telephone", "video": "by video", "face_to_face": "in person"}


def _guarded(token: str):
    """None when the attempt may go on, or the page to answer instead."""
    try:
        limit_address()
        limit("PUBLIC_RATE_PER_LINK", digest(token))
    except Busy:
        return busy_page()
    return None


def _invalid():
    return public_page("link_invalid.html", 404)


@blueprint.get("/book-online/<token>")
@open_to_all
def book_online(token):
    refused = _guarded(token)
    if refused:
        return refused
    try:
        offer = public_backend().post("scheduling", "/booking-links/open", {"token": token})
    except BackendError as err:
        if err.status in (404, 422):
            return _invalid()
        raise
    offer = offer if isinstance(offer, dict) else {}
    free = offer.get("free")
    offer["free"] = [t for t in free if isinstance(t, str)] if isinstance(free, list) else []
    return public_page(
        "book_online.html",
        offer=offer,
        token=token,
        how=MODALITIES.get(offer.get("modality"), ""),
    )


@blueprint.post("/book-online/<token>")
@open_to_all
def book_online_send(token):
    refused = _guarded(token)
    if refused:
        return refused
    chosen = request.form.get("starts_at", "")
    if not chosen:
        raise refuse("Please choose a time.", {"starts_at": "please choose one of the times"})
    try:
        session = public_backend().post(
            "scheduling", "/booking-links/book", {"token": token, "starts_at": chosen}
        )
    except BackendError as err:
        if err.status == 404:
            return _invalid()
        if err.status == 409:  # taken meanwhile: the form again, with the times still free
            raise refuse(
                "Sorry, that time has just been taken. Please choose another.",
                {"starts_at": "that time has just been taken"},
            ) from None
        raise
    session = session if isinstance(session, dict) else {}
    return public_page(
        "booked_online.html",
        when=local(session.get("starts_at")),
        how=MODALITIES.get(session.get("modality"), ""),
    )
