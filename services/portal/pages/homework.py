"""The client's homework page at their link (public, no sign-in; issue 17, item 3): their
tasks, a diary to write down important events or feelings to discuss in the next session,
and a task marked done with a reflection. The same protections as the questionnaire form:
phone-first plain HTML with the portal's strict CSP (no script needed), a single-purpose
expiring link (records keeps its hash; any link not valid now gets the same page), attempts
limited per address and per link in fixed windows counted in the store (the address as the
proxy in front reports it: `RAPPORT_PROXY_HOPS`), and nothing of the clinical record or of
staff shown. Records is reached with the portal's service token, the link in the body."""

from __future__ import annotations

import hashlib
import re

from flask import Response, current_app, flash, redirect, render_template, request, url_for

from shared.auth import public, service_token
from shared.events import utcnow
from shared.inputs import ID_PATTERN
from shared.ratelimit import FixedWindow

from ..backend import Backend, BackendError
from ..security import portal_db
from . import blueprint

TOKEN = re.compile(r"[A-Za-z0-9_-]{20,100}")
TASK_ID = re.compile(ID_PATTERN)
PER_ADDRESS, PER_LINK, WINDOW = 60, 30, 600  # attempts per 10 minutes


def _records() -> Backend:
    settings = current_app.config["RAPPORT_SETTINGS"]
    return Backend(
        settings.service_urls,
        service_token(settings.token_secret, "portal"),
        current_app.config["PORTAL"].backend_timeout,
    )


def _allowed(token: str) -> bool:
    """Fixed windows per address and per link (a flood answers 429, nothing stored)."""
    attempts = FixedWindow(portal_db()["public_attempts"])
    if not current_app.extensions.get("public_attempts_indexed"):
        attempts.ensure_indexes()
        current_app.extensions["public_attempts_indexed"] = True
    now = utcnow()
    link = hashlib.sha256(token.encode()).hexdigest()
    for key, limit in (
        (f"ip:{request.remote_addr or 'unknown'}", PER_ADDRESS),
        (f"link:{link}", PER_LINK),
    ):
        if not attempts.allow(f"homework:{key}", now, limit, WINDOW):
            return False
    return True


def _page(template: str, status: int, **values) -> Response:
    response = Response(render_template(template, **values), status=status)
    response.headers["X-Robots-Tag"] = "noindex"
    response.headers["Cache-Control"] = "no-store"
    return response


def _gone() -> Response:
    return _page("homework_gone.html", 404)


def _show(token: str, status: int = 200, errors=None, form=None) -> Response:
    try:
        view = _records().post("records", "/homework/view", {"token": token})
    except BackendError as err:
        return _gone() if err.status in (403, 404, 409, 422) else _page("homework_busy.html", 503)
    return _page(
        "homework.html",
        status,
        token=token,
        view=view,
        errors=errors or {},
        form=form or {},
    )


@blueprint.route("/homework/<token>", methods=["GET", "POST"])
@public  # the link is the credential
def homework(token):
    if not TOKEN.fullmatch(token):
        return _gone()
    if not _allowed(token):
        return _page("homework_busy.html", 429)
    if request.method == "GET":
        return _show(token)
    action = request.form.get("action", "")
    task_id = request.form.get("task_id") or None
    if task_id is not None and not TASK_ID.fullmatch(task_id):
        return _show(token, 422, {"task_id": "choose one of your tasks"}, request.form)
    try:
        if action == "entry":
            body = {"token": token, "text": request.form.get("text", ""), "task_id": task_id}
            _records().post("records", "/homework/entries", body)
            flash("Saved in your diary.", "ok")
        elif action == "done" and task_id:
            reflection = request.form.get("reflection", "").strip() or None
            body = {"token": token, "reflection": reflection}
            _records().post("records", f"/homework/tasks/{task_id}/done", body)
            flash("Marked as done. Well done.", "ok")
        else:
            return _show(token, 422, {"action": "choose what to save"}, request.form)
    except BackendError as err:
        if err.status == 404 and not task_id:
            return _gone()
        errors = err.field_errors or {"form": err.detail}
        if err.status == 404:
            errors = {"task_id": "that is not one of your tasks"}
        status = 422 if err.status in (400, 404, 422) else err.status
        return _show(token, status, errors, request.form)
    return redirect(url_for("pages.homework", token=token), 303)
