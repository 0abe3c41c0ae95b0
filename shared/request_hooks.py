"""What every request goes through before and after its view: a correlation id, the role
check (before the body is read), the depth limit of JSON bodies, read-your-writes and
idempotency (shared/consistency.py, shared/idempotency.py), the security headers and the
request metrics."""

from __future__ import annotations

import logging
import time
import uuid

from flask import Flask, Response, current_app, g, request
from pymongo.errors import PyMongoError
from werkzeug.routing import Rule

from . import consistency, idempotency, logs, metrics
from .auth import ROLES_ATTRIBUTE, Forbidden, authenticate
from .bodies import MAX_DEPTH, too_deep
from .problems import problem

log = logging.getLogger(__name__)


def view_roles(app: Flask, rule: Rule, method: str) -> tuple[str, ...] | None:
    """The roles a route's handler declares (`@requires` / `@public`), or None."""
    view = app.view_functions.get(rule.endpoint)
    handler = getattr(getattr(view, "view_class", None), method.lower(), None) or view
    return getattr(handler, ROLES_ATTRIBUTE, None)


def _context():
    return current_app.extensions["rapport"]


def _start() -> None:
    g.started = time.perf_counter()
    incoming = request.headers.get("X-Correlation-ID", "")
    g.correlation_id = incoming if 0 < len(incoming) <= 64 else str(uuid.uuid4())
    logs.correlation_id.set(g.correlation_id)


def _enforce_access() -> None:
    # Authenticate before the body is validated, whatever the decorator order on the
    # view: an anonymous caller learns nothing about a route's schema (401, not 422).
    rule = request.url_rule
    roles = view_roles(current_app, rule, request.method) if rule else None
    if roles and roles != ("public",):
        identity = authenticate()
        if identity.role not in roles:
            raise Forbidden(f"role {identity.role} may not do this")


def _refuse_deep_json() -> Response | None:
    # After authentication (401 first, as for any body) and before anything parses the
    # body (webargs, get_json): deep nesting would make the parser recurse until it fails
    # with a 500 (issue 15 #4).
    if request.is_json and too_deep(request.get_data(cache=True)):
        return problem(
            400, "Bad Request", f"the JSON body is nested deeper than {MAX_DEPTH} levels"
        )
    return None


def _begin_consistency() -> Response | None:
    # After authentication: idempotency keys are scoped by the caller.
    consistency.start_request()
    identity = g.get("identity")
    if identity is not None and request.method in idempotency.METHODS:
        ctx = _context()
        ctx.ensure_kernel_indexes()
        return idempotency.begin(ctx.db, identity.sub, ctx.settings.master_key)
    return None


def _consistency_headers(response: Response) -> Response:
    consistency.finish(response)
    if g.get("rapport_claim") is not None:
        ctx = _context()
        idempotency.finish(ctx.db, response, ctx.settings.master_key)
    return response


def _release_key(exc: BaseException | None) -> None:
    if g.get("rapport_claim") is not None:
        try:
            idempotency.release(_context().db)
        except PyMongoError:
            log.warning("could not release an idempotency key; it expires by itself")


def _finish(response: Response) -> Response:
    response.headers["X-Correlation-ID"] = g.get("correlation_id", "")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Cache-Control", "no-store")
    rule = request.url_rule.rule if request.url_rule else "unmatched"
    metrics.observe_request(
        current_app.config["RAPPORT_SERVICE"],
        request.method,
        rule,
        response.status_code,
        time.perf_counter() - g.get("started", time.perf_counter()),
    )
    return response


def register_request_hooks(app: Flask) -> None:
    """Install the hooks on `app`. Flask runs before-request hooks in the order registered
    (correlation id, role check, body depth, idempotency) and after-request hooks in the
    reverse order (`_finish` first, then the consistency headers)."""
    for before in (_start, _enforce_access, _refuse_deep_json, _begin_consistency):
        app.before_request(before)
    app.after_request(_consistency_headers)
    app.teardown_request(_release_key)
    app.after_request(_finish)
