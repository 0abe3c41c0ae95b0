"""Errors as `application/problem+json` (RFC 9457): the body every error answer has, the
flask-smorest Api that answers its own errors that way (webargs field messages flattened to
`errors: [{field, reason}]`), and the handlers of the kernel's exceptions."""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Flask, Response, g
from flask_smorest import Api
from pymongo.errors import PyMongoError
from werkzeug.exceptions import HTTPException

from . import consistency, idempotency
from .auth import AuthError
from .crypto import KeyDisposed
from .domain import DomainError
from .eventstore import ConcurrencyError

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"


def problem(status: int, title: str, detail: str | None = None, **extra: Any) -> Response:
    body = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update({k: v for k, v in extra.items() if v is not None})
    cid = g.get("correlation_id")
    if cid:
        body["correlation_id"] = cid
    return Response(json.dumps(body, default=str), status=status, mimetype=PROBLEM)


def _flatten(messages: Any, prefix: str = "") -> list[dict]:
    """webargs/marshmallow messages -> [{"field": "json.start", "reason": "..."}]."""
    out: list[dict] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = str(key) if not prefix else f"{prefix}.{key}"
            if prefix == "" and key == "json":
                name = ""
            out.extend(_flatten(value, name))
    elif isinstance(messages, (list, tuple)):
        if all(isinstance(m, str) for m in messages):
            out.extend({"field": prefix or "body", "reason": m} for m in messages)
        else:
            for item in messages:
                out.extend(_flatten(item, prefix))
    else:
        out.append({"field": prefix or "body", "reason": str(messages)})
    return out


class RapportApi(Api):
    """flask-smorest's Api answering errors as application/problem+json."""

    def handle_http_exception(self, error: HTTPException) -> Response:
        data = getattr(error, "data", None) or {}
        messages = data.get("errors") or data.get("messages")
        errors = _flatten(messages) if messages else None
        detail = data.get("message") or (
            "; ".join(f"{e['field']}: {e['reason']}" for e in errors)
            if errors
            else error.description
        )
        if error.code == 500:
            detail = "internal error"
        response = problem(error.code or 500, error.name, detail, errors=errors)
        for key, value in (data.get("headers") or {}).items():
            response.headers[key] = value
        if error.code == 405 and hasattr(error, "valid_methods") and error.valid_methods:
            response.headers["Allow"] = ", ".join(error.valid_methods)
        return response


def _auth(err: AuthError) -> Response:
    response = problem(err.status, "Unauthorized" if err.status == 401 else "Forbidden", err.detail)
    if err.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="rapport"'
    return response


def _domain(err: DomainError) -> Response:
    errors = [{"field": err.field, "reason": err.detail}] if err.field else None
    return problem(err.status, err.title, err.detail, errors=errors, code=err.code)


def _disposed(err: KeyDisposed) -> Response:
    return problem(409, "Conflict", "this client's record has been disposed of", code="disposed")


def _bad_consistency_header(err: consistency.BadConsistencyHeader) -> Response:
    return problem(400, "Bad Request", str(err))


def _key_refused(err: idempotency.KeyRefused) -> Response:
    titles = {400: "Bad Request", 409: "Conflict", 422: "Unprocessable Entity"}
    response = problem(
        err.status,
        titles[err.status],
        err.detail,
        code=err.code,
        errors=[{"field": idempotency.HEADER, "reason": err.detail}] if err.status == 422 else None,
    )
    if err.position:
        response.headers[consistency.POSITION_HEADER] = err.position
    return response


def _claim_lost(err: idempotency.ClaimLost) -> Response:
    return problem(
        409,
        "Conflict",
        "a retry with the same Idempotency-Key took this request "
        "over; its answer is the one that counts",
        code="key_taken_over",
    )


def _concurrency(err: ConcurrencyError) -> Response:
    return problem(
        409, "Conflict", "the record changed while you were saving; reload and try again"
    )


def _store_down(err: PyMongoError) -> Response:
    log.error("store error: %r", err)
    return problem(503, "Service Unavailable", "the record store is unavailable; try again shortly")


def register_error_handlers(app: Flask) -> None:
    """The kernel's exceptions as problem answers: auth 401/403, domain errors with their
    status and field, a disposed record, bad consistency or idempotency headers, a lost
    idempotency claim, a stale version (409) and a store that is down (503, never a 500)."""
    for error, handler in (
        (AuthError, _auth),
        (DomainError, _domain),
        (KeyDisposed, _disposed),
        (consistency.BadConsistencyHeader, _bad_consistency_header),
        (idempotency.KeyRefused, _key_refused),
        (idempotency.ClaimLost, _claim_lost),
        (ConcurrencyError, _concurrency),
        (PyMongoError, _store_down),
    ):
        app.register_error_handler(error, handler)
