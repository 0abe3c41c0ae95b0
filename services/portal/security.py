"""Signing staff in on the web: server-side sessions, CSRF tokens and security headers.

The browser holds only Flask's signed cookie with a random session id and a CSRF token; the
session itself (who, until when) lives in MongoDB (`web_sessions`), so signing out really
ends it. Bearer tokens for the services are minted per request, short-lived, from that
session — no token is ever stored in the browser or at rest."""

from __future__ import annotations

import functools
import hmac
import secrets
from datetime import UTC, datetime, timedelta
from urllib.parse import urlparse

from flask import abort, current_app, g, redirect, request, session, url_for
from pymongo import IndexModel

from shared.auth import issue_token

from .users import User, UserStore

CSRF_FIELD = "csrf_token"
BACKEND_TOKEN_SECONDS = 300
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)


def portal_db():
    ctx = current_app.extensions["rapport"]
    return ctx.db


def user_store() -> UserStore:
    store = current_app.extensions.get("portal_users")
    if store is None:
        store = UserStore(portal_db())
        store.ensure_indexes()
        portal_db()["web_sessions"].create_indexes(
            [IndexModel("expires_at", expireAfterSeconds=0), IndexModel("user_id")]
        )
        current_app.extensions["portal_users"] = store
    return store


def csrf_token() -> str:
    if CSRF_FIELD not in session:
        session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return session[CSRF_FIELD]


def check_csrf() -> None:
    """Every state-changing form carries the session's token (synchroniser token pattern)."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    sent = request.form.get(CSRF_FIELD, "")
    expected = session.get(CSRF_FIELD, "")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        abort(
            400,
            description="The form has expired or did not come from this site. "
            "Reload and try again.",
        )


def start_session(user: User) -> None:
    """A fresh session id and CSRF token at sign-in (no session fixation)."""
    session.clear()
    sid = secrets.token_urlsafe(32)
    hours = current_app.config["PORTAL"].session_hours
    now = datetime.now(UTC)
    portal_db()["web_sessions"].insert_one(
        {
            "_id": sid,
            "user_id": user.id,
            "created_at": now,
            "expires_at": now + timedelta(hours=hours),
        }
    )
    session["sid"] = sid
    session[CSRF_FIELD] = secrets.token_urlsafe(32)
    session.permanent = True


def end_session() -> None:
    sid = session.get("sid")
    if sid:
        portal_db()["web_sessions"].delete_one({"_id": sid})
    session.clear()


def current_user() -> User | None:
    if "portal_user" in g:
        return g.portal_user
    user = None
    sid = session.get("sid")
    if sid:
        doc = portal_db()["web_sessions"].find_one({"_id": sid})
        if doc and doc["expires_at"] > datetime.now(UTC):
            user = user_store().get(doc["user_id"])
    g.portal_user = user
    return user


def backend_token(user: User) -> str:
    return user_token(user, BACKEND_TOKEN_SECONDS)


def user_token(user: User, ttl_seconds: int, now: datetime | None = None) -> str:
    """A bearer token the services accept, saying who `user` is and in which role."""
    settings = current_app.config["RAPPORT_SETTINGS"]
    return issue_token(
        settings.token_secret,
        sub=user.id,
        role=user.role,
        email=user.email,
        name=user.name,
        therapist_id=user.therapist_id,
        ttl_seconds=ttl_seconds,
        now=now,
    )


def safe_next(target: str | None) -> str:
    """Only a path on this site (no open redirect)."""
    if not target:
        return url_for("pages.home")
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("pages.home")
    return target


def signed_in(*roles: str):
    """Page decorator: a signed-in user (redirect to sign-in otherwise) with one of `roles`."""

    def decorate(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            user = current_user()
            if user is None:
                return redirect(url_for("pages.sign_in", next=request.full_path.rstrip("?")))
            if roles and user.role not in roles:
                abort(403, description="Your role does not give access to this page.")
            return view(*args, **kwargs)

        wrapped._portal_roles = roles or ("signed_in",)
        return wrapped

    return decorate


def security_headers(response):
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    if current_app.config.get("SESSION_COOKIE_SECURE"):
        response.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    return response
