"""The measures service's Flask app (gunicorn: services.measures.wsgi:app)."""

from __future__ import annotations

import os

from flask import Flask, request

from shared.config import Settings
from shared.directory import ClientDirectory
from shared.web import create_service_app, trust_proxies

from . import api, queries
from .projections import MeasuresBoard, QuestionnairePlans

DEFAULT_PUBLIC_URL = "http://127.0.0.1:8103"


def projections() -> list:
    return [ClientDirectory("measures"), QuestionnairePlans(), MeasuresBoard()]


def create_app(settings: Settings) -> Flask:
    app = create_service_app(
        "measures",
        settings,
        title="Rapport measures",
        description="Instruments, pre-session questionnaires, scores, risk alerts, outcomes "
        "and dashboards.",
        blueprints=[*queries.BLUEPRINTS, *api.BLUEPRINTS],
        projections=projections(),
    )
    app.config["MEASURES_PUBLIC_URL"] = settings.extra.get(
        "measures_public_url", os.environ.get("RAPPORT_MEASURES_PUBLIC_URL", DEFAULT_PUBLIC_URL)
    )
    # (attempts, window seconds) on /q/<token>: per client address, and per link
    app.config["MEASURES_LINK_RATE"] = settings.extra.get("link_rate", (30, 600))
    app.config["MEASURES_LINK_RATE_PER_LINK"] = settings.extra.get("link_rate_per_link", (20, 600))
    trust_proxies(app, settings)
    _never_log_links(app)
    return app


def _never_log_links(app: Flask) -> None:
    """Flask logs an unhandled error as "Exception on <path>"; on /q/<token> the path is the
    client's credential, so the token is replaced before anything is logged."""
    original = app.log_exception

    def log_exception(exc_info) -> None:
        if request.path.startswith("/q/"):
            app.logger.error("Exception on /q/<link> [%s]", request.method, exc_info=exc_info)
            return
        original(exc_info)

    app.log_exception = log_exception
