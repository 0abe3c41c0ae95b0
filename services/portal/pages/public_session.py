"""The client's own link to one session (`/my-session/<token>`, no sign-in, phone-first;
issue 17): the session, and a choice to move it to another free time of the same therapist
or to cancel it, within the practice's notice rules (scheduling decides: inside 24 hours it
can be cancelled, as a late cancellation by the client, but not moved). Each change goes
through scheduling (`/session-links/...`, as the portal) with the slot claims of a staff
change. It shares the booking link's protections (public_booking.py): an unknown, used or
expired link is one plain page (404), attempts are limited per address and per link (429),
and the token is never logged, cached, indexed or sent on as a referrer."""

from __future__ import annotations

from itertools import groupby

from flask import request

from ..backend import BackendError
from . import blueprint
from .common import local
from .public_booking import MODALITIES, _guarded, _invalid
from .public_common import open_to_all, public_backend, public_page, refuse


def _offer(token: str):
    """What scheduling shows for the token, or None for a link that is not valid."""
    try:
        offer = public_backend().post("scheduling", "/session-links/open", {"token": token})
    except BackendError as err:
        if err.status in (404, 422):
            return None
        raise
    offer = offer if isinstance(offer, dict) else {}
    free = offer.get("free")
    offer["free"] = [t for t in free if isinstance(t, str)] if isinstance(free, list) else []
    return offer


def _by_day(times: list[str]) -> list[tuple[str, list[str]]]:
    return [(day, list(ts)) for day, ts in groupby(times, key=lambda t: local(t, "%A %d %B"))]


@blueprint.get("/my-session/<token>")
@open_to_all
def my_session(token):
    refused = _guarded(token)
    if refused:
        return refused
    offer = _offer(token)
    if offer is None:
        return _invalid()
    return public_page(
        "my_session.html",
        offer=offer,
        token=token,
        days=_by_day(offer["free"]),
        how=MODALITIES.get(offer.get("modality"), ""),
    )


@blueprint.post("/my-session/<token>")
@open_to_all
def my_session_send(token):
    refused = _guarded(token)
    if refused:
        return refused
    action = request.form.get("action", "")
    if action == "cancel":
        path, body = "/session-links/cancel", {"token": token}
    elif action == "move":
        chosen = request.form.get("starts_at", "")
        if not chosen:
            raise refuse("Please choose a new time.", {"starts_at": "please choose a time"})
        path, body = "/session-links/reschedule", {"token": token, "starts_at": chosen}
    else:
        raise refuse("Please choose what to do.", {})
    try:
        session = public_backend().post("scheduling", path, body)
    except BackendError as err:
        if err.status == 404:
            return _invalid()
        if err.status == 409 and err.code == "slot_taken":
            raise refuse(
                "Sorry, that time has just been taken. Please choose another.",
                {"starts_at": "that time has just been taken"},
            ) from None
        if err.status == 409 and err.code == "inside_notice":
            raise refuse(
                "Your appointment is less than 24 hours away: it can be cancelled here, but "
                "not moved. Please call the practice to arrange another time."
            ) from None
        if err.status == 422:  # a time that was not offered (a changed or forged form)
            raise refuse(
                "Please choose one of the times shown.", {"starts_at": "choose a time shown"}
            ) from None
        raise
    session = session if isinstance(session, dict) else {}
    return public_page(
        "my_session_done.html",
        cancelled=action == "cancel",
        late=bool(session.get("late")),
        when=local(session.get("starts_at")),
    )
