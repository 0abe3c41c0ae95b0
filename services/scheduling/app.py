"""The scheduling app factory (gunicorn: services.scheduling.wsgi:app)."""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable
from datetime import datetime

from flask import Flask

from shared.config import DEMO_TOKEN_SECRET, ConfigError, Settings
from shared.events import utcnow
from shared.web import create_service_app

from . import api, queries
from .application import claims
from .domain.rooms import JitsiRooms, RoomProvider, UrlRooms
from .projections import all_projections

DESCRIPTION = """Therapists' availability, sessions, 16-session IPT courses and boosters.
Times are UTC on the wire; working hours and course times follow Europe/London wall-clock
time across the clock changes."""


def create_app(settings: Settings, *, clock: Callable[[], datetime] = utcnow) -> Flask:
    """`clock` is injectable so tests can step past a session's start to mark it attended."""
    app = create_service_app(
        "scheduling",
        settings,
        title="Rapport scheduling",
        description=DESCRIPTION,
        blueprints=[*queries.BLUEPRINTS, *api.BLUEPRINTS],
        projections=all_projections(),
    )
    app.config["SCHEDULING_CLOCK"] = clock
    app.config["SCHEDULING_ROOMS"] = room_provider(settings)
    app.extensions["scheduling_indexes"] = _IndexesOnce(settings)
    app.before_request(app.extensions["scheduling_indexes"])
    return app


DEMO_JITSI_SECRET = "rapport-demo-jitsi-secret-not-for-production"


def room_provider(settings: Settings) -> RoomProvider:
    """The video room provider from the environment (README "Video rooms"; `settings.extra`
    overrides for tests): `RAPPORT_VIDEO_PROVIDER=jitsi` (default) or `url`."""

    def setting(name: str, default: str = "") -> str:
        return str(settings.extra.get(name.lower(), os.environ.get(f"RAPPORT_{name}", default)))

    # room names are keyed by a secret of their own, derived so that no setting is needed
    room_secret = hmac.new(settings.token_secret.encode(), b"rapport video rooms", "sha256")
    kind = setting("VIDEO_PROVIDER", "jitsi")
    if kind == "url":
        base = setting("VIDEO_BASE_URL", "https://video.rapport.test/session")
        return UrlRooms(base, room_secret.hexdigest())
    if kind != "jitsi":
        raise ConfigError(f"RAPPORT_VIDEO_PROVIDER must be jitsi or url, not {kind!r}")
    secret = setting("JITSI_APP_SECRET")
    if not secret:
        # a practice running on its own secrets (Settings.check refuses the demo ones outside
        # demo mode) must give Jitsi's too: a public demo secret would let anyone mint tokens
        if not settings.demo_mode and settings.token_secret != DEMO_TOKEN_SECRET:
            raise ConfigError(
                "RAPPORT_JITSI_APP_SECRET must be set (or RAPPORT_VIDEO_PROVIDER=url)"
            )
        secret = DEMO_JITSI_SECRET
    return JitsiRooms(
        base_url=setting("JITSI_URL", "https://meet.rapport.test"),
        app_id=setting("JITSI_APP_ID", "rapport"),
        app_secret=secret,
        room_secret=room_secret.hexdigest(),
        subject=setting("JITSI_SUB"),
        audience=setting("JITSI_AUD", "jitsi"),
    )


class _IndexesOnce:
    """Create the claims indexes on the first request (never before gunicorn forks)."""

    def __init__(self, settings: Settings):
        self.settings, self.done = settings, False

    def __call__(self) -> None:
        if not self.done:
            from shared.web import context

            claims.ensure_indexes(context().db[claims.COLLECTION])
            self.done = True
