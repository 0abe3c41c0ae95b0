"""Staff identity: signed bearer tokens (JWT, HS256) carrying the user, the role and, for a
therapist, their therapist id. The portal issues them; every service verifies them.
Services calling services use a `service` role token minted with the same secret."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ParamSpec, TypeVar

import jwt
from flask import current_app, g, request

from .config import Settings

ROLES = ("admin", "therapist", "clinical_lead", "service")
STAFF_ROLES = ("admin", "therapist", "clinical_lead")
ISSUER, AUDIENCE = "rapport", "rapport-api"


class AuthError(Exception):
    status = 401

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


class Forbidden(AuthError):
    status = 403


@dataclass(frozen=True)
class Identity:
    sub: str
    role: str
    email: str | None = None
    name: str | None = None
    therapist_id: str | None = None

    @property
    def is_service(self) -> bool:
        return self.role == "service"

    def can_see_client_of(self, therapist_id: str | None) -> bool:
        """A therapist reaches only their own clients; lead and services reach all."""
        if self.role in ("clinical_lead", "service"):
            return True
        if self.role == "therapist":
            return therapist_id is not None and therapist_id == self.therapist_id
        return False


def issue_token(
    secret: str,
    *,
    sub: str,
    role: str,
    email: str | None = None,
    name: str | None = None,
    therapist_id: str | None = None,
    ttl_seconds: int = 3600,
    now: datetime | None = None,
) -> str:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    issued = now or datetime.now(UTC)
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": sub,
        "role": role,
        "iat": issued,
        "exp": issued + timedelta(seconds=ttl_seconds),
    }
    if email:
        claims["email"] = email
    if name:
        claims["name"] = name
    if therapist_id:
        claims["therapist_id"] = therapist_id
    return jwt.encode(claims, secret, algorithm="HS256")


def verify_token(secret: str, token: str) -> Identity:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub"]},
        )
    except jwt.ExpiredSignatureError:
        raise AuthError("token expired") from None
    except jwt.InvalidTokenError:
        raise AuthError("invalid token") from None
    role = claims.get("role")
    if role not in ROLES:
        raise AuthError("invalid token")
    return Identity(
        sub=claims["sub"],
        role=role,
        email=claims.get("email"),
        name=claims.get("name"),
        therapist_id=claims.get("therapist_id"),
    )


def verify_rotating(settings: Settings, token: str, now: datetime | None = None) -> Identity:
    """Verify with the current secret and, during a rotation, with the previous one until
    `token_secret_previous_until` (RAPPORT_TOKEN_SECRET_PREVIOUS_UNTIL): tokens issued
    before the switch keep working for their grace period instead of signing everyone out
    at once. The previous secret only verifies; every new token is signed with the current."""
    try:
        return verify_token(settings.token_secret, token)
    except AuthError as current_refused:
        previous, until = settings.token_secret_previous, settings.token_secret_previous_until
        if not previous or until is None or (now or datetime.now(UTC)) >= until:
            raise
        try:
            return verify_token(previous, token)
        except AuthError:
            raise current_refused from None


def service_token(secret: str, service: str, ttl_seconds: int = 300) -> str:
    return issue_token(secret, sub=f"service:{service}", role="service", ttl_seconds=ttl_seconds)


def authenticate() -> Identity:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("missing bearer token")
    identity = verify_rotating(current_app.config["RAPPORT_SETTINGS"], token.strip())
    g.identity = identity
    return identity


def current_identity() -> Identity:
    identity = g.get("identity")
    if identity is None:
        raise AuthError("missing bearer token")
    return identity


# The attribute of a view function that holds the roles it admits: set by `requires` and
# `public`, read by the request hook that checks them before the body (shared/request_hooks.py)
# and by the tests that enumerate the rule table.
ROLES_ATTRIBUTE = "_rapport_roles"


P = ParamSpec("P")
R = TypeVar("R")
View = TypeVar("View", bound=Callable[..., Any])


def _declare(view: Callable[..., Any], roles: tuple[str, ...]) -> None:
    setattr(view, ROLES_ATTRIBUTE, roles)


def requires(*roles: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Route decorator: a valid token whose role is one of `roles` (401 / 403 otherwise)."""
    for role in roles:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")

    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(view)
        def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
            identity = authenticate()
            if identity.role not in roles:
                raise Forbidden(f"role {identity.role} may not do this")
            return view(*args, **kwargs)

        _declare(wrapped, tuple(roles))
        return wrapped

    return decorate


def public(view: View) -> View:
    """Mark a route as deliberately open (health, the client's questionnaire link)."""
    _declare(view, ("public",))
    return view
