"""The scheduling app factory (gunicorn: services.scheduling.wsgi:app)."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime

from flask import Flask

from shared.config import Settings
from shared.events import utcnow
from shared.web import create_service_app

from . import api, queries
from .application import claims
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
    app.config["SCHEDULING_VIDEO_BASE"] = settings.extra.get(
        "video_base", os.environ.get("RAPPORT_VIDEO_BASE_URL", "https://video.rapport.test/session")
    )
    app.extensions["scheduling_indexes"] = _IndexesOnce(settings)
    app.before_request(app.extensions["scheduling_indexes"])
    return app


class _IndexesOnce:
    """Create the claims indexes on the first request (never before gunicorn forks)."""

    def __init__(self, settings: Settings):
        self.settings, self.done = settings, False

    def __call__(self) -> None:
        if not self.done:
            from shared.web import context

            claims.ensure_indexes(context().db[claims.COLLECTION])
            self.done = True
