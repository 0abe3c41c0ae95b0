"""The portal's JSON API: staff sign-in for programs (the services verify the token)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from shared.auth import AuthError, public

from .security import user_store, user_token
from .users import LockedOut

blp = Blueprint(
    "auth",
    __name__,
    url_prefix="/api/auth",
    description="Staff sign-in: a bearer token for the services' APIs",
)


class TokenRequest(Schema):
    email = fields.String(required=True, validate=validate.Length(min=3, max=254))
    password = fields.String(
        required=True, validate=validate.Length(min=1, max=1024), load_only=True
    )


class TokenResponse(Schema):
    token = fields.String(
        required=True, metadata={"description": "JWT (HS256) for Authorization: Bearer"}
    )
    expires_at = fields.DateTime(required=True)
    role = fields.String(
        required=True, validate=validate.OneOf(("admin", "therapist", "clinical_lead"))
    )
    therapist_id = fields.String(allow_none=True)


class TooManyAttempts(AuthError):
    status = 429


@blp.route("/token")
class Token(MethodView):
    @blp.arguments(TokenRequest)
    @blp.response(200, TokenResponse)
    @blp.alt_response(401, description="wrong e-mail or password")
    @blp.alt_response(
        429,
        description="locked for 15 minutes after 5 failed attempts on the "
        "address, or 20 from the same source address",
    )
    @public
    def post(self, body):
        """Exchange a staff e-mail and password for a bearer token."""
        try:
            user = user_store().authenticate(
                body["email"], body["password"], source=request.remote_addr
            )
        except LockedOut as locked:
            err = TooManyAttempts(
                f"too many failed attempts; try again after {locked.until.strftime('%H:%M')} UTC"
            )
            raise err from None
        if user is None:
            raise AuthError("wrong e-mail or password")
        settings = current_app.config["RAPPORT_SETTINGS"]
        ttl = settings.token_ttl_seconds
        now = datetime.now(UTC)
        token = user_token(user, ttl, now)
        return {
            "token": token,
            "expires_at": now + timedelta(seconds=ttl),
            "role": user.role,
            "therapist_id": user.therapist_id,
        }
