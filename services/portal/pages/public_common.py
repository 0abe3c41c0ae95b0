"""What the public pages (no sign-in: `/enquire`, `/book-online/<token>`) share: the
portal's own service token for the calls they make (the person holds no account), attempt
limits per address (behind `RAPPORT_PROXY_HOPS` trusted proxies, shared/web.trust_proxies)
and per contact or link (shared/ratelimit.py, the limiter of the questionnaire link), the
form's signed start time (a form sent quicker than a person can fill it is a robot's), and
headers that keep a page with a link in its address out of caches, indexes and referrers.
The portal's CSP, CSRF token and form-again mechanism (pages.common) apply as on every page."""

from __future__ import annotations

import hashlib
import time

from flask import current_app, g, render_template, request
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner

from shared.auth import service_token
from shared.events import utcnow
from shared.ratelimit import FixedWindow

from ..backend import Backend, BackendError
from ..security import portal_db

# (attempts, window in seconds); app.config overrides them (tests, a busy practice)
DEFAULT_LIMITS = {
    "PUBLIC_RATE_PER_ADDRESS": (20, 600),  # every public POST and link view from one address
    "PUBLIC_RATE_PER_CONTACT": (3, 86_400),  # enquiries naming one phone number or e-mail
    "PUBLIC_RATE_PER_LINK": (20, 600),  # attempts on one booking link
}
MIN_FILL_SECONDS = 3  # nobody reads and fills the enquiry form faster
MAX_FORM_AGE = 2 * 3600


def open_to_all(view):
    """Mark a page public: no sign-in (the route rules test checks every page declares who
    may use it)."""
    view._portal_roles = ("public",)
    return view


class Busy(Exception):
    """Too many attempts: the page answers 429 and nothing is sent on."""


def public_backend() -> Backend:
    """The services, called as the portal itself (role `service`): the person has no
    account, and what a public page may do is decided by the route it calls."""
    if "public_backend" not in g:
        settings = current_app.config["RAPPORT_SETTINGS"]
        g.public_backend = Backend(
            settings.service_urls,
            service_token(settings.token_secret, "portal"),
            current_app.config["PORTAL"].backend_timeout,
            g.get("correlation_id"),
        )
    return g.public_backend


def _limiter() -> FixedWindow:
    found = current_app.extensions.get("public_attempts")
    if found is None:
        found = FixedWindow(portal_db()["public_attempts"])
        found.ensure_indexes()
        current_app.extensions["public_attempts"] = found
    return found


def digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def limit(kind: str, key: str) -> None:
    """Count one attempt on `key` against the limit `kind`; raise Busy past it."""
    attempts, window = current_app.config.get(kind, DEFAULT_LIMITS[kind])
    if not _limiter().allow(f"{kind}:{key}", utcnow(), attempts, window):
        raise Busy(kind)


def limit_address() -> None:
    limit("PUBLIC_RATE_PER_ADDRESS", request.remote_addr or "unknown")


def _signer() -> TimestampSigner:
    return TimestampSigner(current_app.config["SECRET_KEY"], salt="public-form-started")


def started_token() -> str:
    return _signer().sign(str(time.time())).decode()


def fill_time_problem(token: str) -> str | None:
    """Why the form's start time is not acceptable, or None: missing or forged, too old, or
    sent too soon after the page was shown."""
    try:
        _value, signed_at = _signer().unsign(
            token or "", max_age=MAX_FORM_AGE, return_timestamp=True
        )
    except SignatureExpired:
        return "The form was open too long. Please check your answers and send it again."
    except BadSignature:
        return "The form could not be checked. Please send it again from this page."
    if time.time() - signed_at.timestamp() < current_app.config.get(
        "PUBLIC_MIN_FILL_SECONDS", MIN_FILL_SECONDS
    ):
        return "That was sent very quickly. Please check your answers and send it again."
    return None


def refuse(detail: str, errors: dict | None = None) -> BackendError:
    """A refusal of the portal's own checks, shown like a service's: the form again with
    the reasons beside the fields and what was typed kept (pages.common)."""
    return BackendError(
        422, detail, "portal", [{"field": k, "reason": v} for k, v in (errors or {}).items()]
    )


def public_page(template: str, status: int = 200, **values):
    response = current_app.make_response((render_template(template, **values), status))
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex"
    return response


def busy_page():
    response = public_page("public_busy.html", 429)
    response.headers["Retry-After"] = "600"
    return response


def never_log_links(app) -> None:
    """Flask logs an unhandled error as "Exception on <path>"; on /book-online/<token> the
    path is the person's credential, so it is replaced before anything is logged (as
    measures does for the questionnaire link)."""
    original = app.log_exception

    def log_exception(exc_info) -> None:
        for page in ("/book-online/", "/my-session/"):
            if request.path.startswith(page):
                app.logger.error(
                    "Exception on %s<link> [%s]", page, request.method, exc_info=exc_info
                )
                return
        original(exc_info)

    app.log_exception = log_exception
