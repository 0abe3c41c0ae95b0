"""Calls to the four services with the signed-in user's bearer token. The portal owns no
clinical data: every page is built from these answers, and every refusal (403 for a role or
a client that is not yours, 404, 409, 422) comes back as a `BackendError` the page shows."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field

import requests
from flask import current_app, g, has_request_context, request, session

from shared.consistency import STALE_HEADER
from shared.inputs import ID_PATTERN

from .security import backend_token, current_user

log = logging.getLogger(__name__)


@dataclass
class BackendError(Exception):
    status: int
    detail: str
    service: str = ""
    errors: list = field(default_factory=list)
    code: str | None = None  # the service's problem `code` (slot_taken, ...), when it sent one

    def __str__(self) -> str:
        return self.detail

    @property
    def field_errors(self) -> dict:
        return {str(e.get("field") or ""): str(e.get("reason") or "") for e in self.errors or []}


class Backend:
    def __init__(self, urls: dict, token: str, timeout: float, correlation_id: str | None = None):
        self.urls, self.token, self.timeout = urls, token, timeout
        self.correlation_id = correlation_id
        self.http = requests.Session()

    def call(self, method: str, service: str, path: str, *, params=None, json=None):
        _check_path(service, path)
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if self.correlation_id:
            headers["X-Correlation-ID"] = self.correlation_id
        headers.update(_consistency_headers(method, service, path))
        url = self.urls[service].rstrip("/") + path
        try:
            response = self.http.request(
                method, url, params=_clean(params), json=json, headers=headers, timeout=self.timeout
            )
        except requests.Timeout as err:
            log.warning("%s timed out: %r", service, err)
            if method != "GET":  # it may have been done: say so rather than invite a double entry
                raise BackendError(
                    504,
                    f"The {service} service took too long to answer, so the change may "
                    "or may not have been saved. Send the form again: it carries the same "
                    "key, so it is done once.",
                    service,
                ) from err
            raise _not_answering(service) from err
        except requests.RequestException as err:
            log.warning("%s unavailable: %r", service, err)
            raise _not_answering(service) from err
        if response.status_code >= 400:
            raise _error(service, response)
        _remember_position(service, response)
        _note_stale(response)
        if response.status_code == 204 or not response.content:
            return {}
        try:
            return response.json()
        except ValueError as err:
            raise BackendError(
                502, f"The {service} service sent an answer the portal cannot read.", service
            ) from err

    def get_file(self, service, path, accept="text/csv, */*", **params) -> tuple[bytes, str]:
        """A download that is not JSON (a CSV, a PDF): (body, content type); refusals as `call`."""
        headers = {"Authorization": f"Bearer {self.token}", "Accept": accept}
        headers.update(_consistency_headers("GET", service, path))
        try:
            response = self.http.get(
                self.urls[service].rstrip("/") + path,
                params=_clean(params),
                headers=headers,
                timeout=self.timeout,
            )
        except requests.RequestException as err:
            log.warning("%s unavailable: %r", service, err)
            raise _not_answering(service) from err
        if response.status_code >= 400:
            raise _error(service, response)
        return response.content, response.headers.get("Content-Type", "application/octet-stream")

    def get(self, service, path, **params):
        return self.call("GET", service, path, params=params)

    def post(self, service, path, body=None):
        return self.call("POST", service, path, json=body if body is not None else {})

    def put(self, service, path, body):
        return self.call("PUT", service, path, json=body)

    def try_get(self, service, path, default=None, **params):
        """For optional parts of a page: (value, error) instead of raising."""
        try:
            return self.get(service, path, **params), None
        except BackendError as err:
            return default, err


_SEGMENT = re.compile(ID_PATTERN)


def _check_path(service: str, path: str) -> None:
    """Every segment of a backend path is a fixed word or an id, and both have the kernel's
    safe id shape (shared/inputs.py). Pages build paths from form fields and URL parts
    (issue 15, #13: a note's `amends`), so a value such as `../x`, `n-1/amend?x=` or `%2e%2e`
    would otherwise reach another route of the service with the person's token. Checked here,
    once for every page, before anything is sent; refused as a 422 naming the form field
    that carried the value, so the form is shown again with the reason beside it."""
    if not path.startswith("/"):
        raise BackendError(422, "The portal built an address it will not send.", service)
    for segment in path[1:].split("/"):
        if not _SEGMENT.fullmatch(segment):
            name = _field_holding(segment)
            reason = (
                "must be an id: 1 to 64 letters, digits or _ . : - (starting with a letter "
                "or digit)"
            )
            raise BackendError(
                422,
                f"{name or 'An id in the address'} {reason}.",
                service,
                [{"field": name, "reason": reason}] if name else [],
            )


def _field_holding(segment: str) -> str:
    """The form field or URL part the bad segment came from, when there is one."""
    if not has_request_context():
        return ""
    for source in (request.form, request.view_args or {}, request.args):
        for name, value in source.items():
            if value == segment or (
                isinstance(value, str) and value and segment in value.split("/")
            ):
                return name
    return ""


POSITIONS = "positions"


def _consistency_headers(method: str, service: str, path: str) -> dict:
    """Read-your-writes and once-only writes, for the signed-in person.

    A write sends the form's idempotency key (one per form shown, scoped by service and path,
    so one form that calls two services does each once). A read sends the positions this
    person's earlier writes produced, `service:position` for each service, and the service
    waits (bounded) until its projections have reached them."""
    if not has_request_context():
        return {}
    headers = {}
    if method != "GET":
        key = request.form.get("idempotency_key") if request.method == "POST" else None
        if key:
            headers["Idempotency-Key"] = f"{_header_safe(key)}:{service}:{method}:{path}"[:200]
    positions = session.get(POSITIONS) or {}
    if positions:
        headers["X-Rapport-Min-Position"] = ",".join(
            f"{k}:{v}" for k, v in sorted(positions.items())
        )
    return headers


_KEY = re.compile(r"[A-Za-z0-9_.-]{1,100}")


def _header_safe(key: str) -> str:
    """The form's key as the portal made it (hex), or a digest of whatever else was posted: a
    header carries Latin-1 only, and a key such as `é𝟘` made the send itself fail (a 500 found
    by tests/security/test_portal_fuzz.py). The same posted value gives the same digest, so a
    second press is still done once."""
    return (
        key
        if _KEY.fullmatch(key)
        else hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    )


def _remember_position(service: str, response) -> None:
    """Keep the highest position a write of this person produced in each service (in the
    signed session cookie: a few numbers, no clinical data)."""
    position = response.headers.get("X-Rapport-Position")
    if not position or not has_request_context():
        return
    try:
        value = int(position.rsplit(":", 1)[-1])
    except ValueError:
        return
    positions = dict(session.get(POSITIONS) or {})
    if value > int(positions.get(service, 0)):
        positions[service] = value
        session[POSITIONS] = positions


def _note_stale(response) -> None:
    """A service that could not reach the person's own writes in time answers anyway, with
    `X-Rapport-Stale`: the page is built, and base.html says it may lack what was just saved
    (rather than showing a missing item as an error or saying nothing)."""
    if response.headers.get(STALE_HEADER) and has_request_context():
        g.portal_stale_read = True


def _clean(params):
    if not params:
        return None
    return {k: v for k, v in params.items() if v not in (None, "")}


def _not_answering(service: str) -> BackendError:
    return BackendError(503, f"The {service} service is not answering just now.", service)


def _error(service: str, response) -> BackendError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):  # a proxy's or a broken service's refusal: not problem+json
        body = {}
    errors = body.get("errors")
    errors = [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []
    detail = body.get("detail") or body.get("title") or response.reason or "request refused"
    if response.status_code == 403:
        detail = f"Not available to your role: {detail}"
    code = body.get("code") if isinstance(body.get("code"), str) else None
    return BackendError(response.status_code, str(detail), service, errors, code)


def backend() -> Backend:
    """The per-request client, acting as the signed-in user."""
    if "portal_backend" not in g:
        settings = current_app.config["RAPPORT_SETTINGS"]
        g.portal_backend = Backend(
            settings.service_urls,
            backend_token(current_user()),
            current_app.config["PORTAL"].backend_timeout,
            g.get("correlation_id"),
        )
    return g.portal_backend
