"""Sign in, sign out, and the landing page for each role."""

from __future__ import annotations

from flask import current_app, make_response, redirect, render_template, request, url_for

from ..security import current_user, end_session, safe_next, signed_in, start_session, user_store
from ..users import LockedOut
from . import blueprint


@blueprint.get("/")
@signed_in()
def home():
    user = current_user()
    if user.role == "clinical_lead":
        return redirect(url_for("pages.dashboard"))
    if user.role == "therapist":
        return redirect(url_for("pages.diary"))
    return redirect(url_for("pages.diary"))


@blueprint.route("/sign-in", methods=["GET", "POST"])
def sign_in():
    error, status = None, 200
    email = ""
    if request.method == "POST":
        email = request.form.get("email", "")[:254]
        password = request.form.get("password", "")[:1024]
        device = request.cookies.get(DEVICE_COOKIE)
        try:
            user = user_store().authenticate(
                email, password, source=request.remote_addr, device=device
            )
        except LockedOut as locked:
            user, status = None, 429
            error = (
                "Too many failed attempts: sign-in is locked for 15 minutes "
                f"(until {locked.until.strftime('%H:%M')} UTC)."
            )
        else:
            if user is None:
                error, status = "That e-mail address and password do not match.", 401
        if user is not None:
            start_session(user)
            return _remember_device(user, device, redirect(safe_next(request.args.get("next"))))
    return render_template("sign_in.html", error=error, email=email), status


DEVICE_COOKIE = "rapport_device"


def _remember_device(user, device: str | None, response):
    """This browser becomes a known device of the user: while someone else's wrong guesses
    keep the account locked, the right password from here still signs in (users.py)."""
    store = user_store()
    if device and store.is_known_device(user.id, device):
        return response
    response = make_response(response)
    response.set_cookie(
        DEVICE_COOKIE,
        store.remember_device(user),
        max_age=180 * 24 * 3600,
        httponly=True,
        samesite="Lax",
        path="/sign-in",
        secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")),
    )
    return response


@blueprint.post("/sign-out")
def sign_out():
    end_session()
    return redirect(url_for("pages.sign_in"))
