"""Sign in, sign out, and the landing page for each role."""
from __future__ import annotations

from flask import redirect, render_template, request, url_for

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
        try:
            user = user_store().authenticate(email, password)
        except LockedOut as locked:
            user, status = None, 429
            error = ("Too many failed attempts. This account is locked for 15 minutes "
                     f"(until {locked.until.strftime('%H:%M')} UTC).")
        else:
            if user is None:
                error, status = "That e-mail address and password do not match.", 401
        if user is not None:
            start_session(user)
            return redirect(safe_next(request.args.get("next")))
    return render_template("sign_in.html", error=error, email=email), status


@blueprint.post("/sign-out")
def sign_out():
    end_session()
    return redirect(url_for("pages.sign_in"))

