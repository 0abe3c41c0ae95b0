"""The measures service's Flask app (gunicorn: services.measures.wsgi:app)."""
from __future__ import annotations

import os

from flask import Flask

from shared.config import Settings
from shared.directory import ClientDirectory
from shared.web import create_service_app

from . import api, dashboards, form, views
from .projections import MeasuresBoard, QuestionnairePlans

DEFAULT_PUBLIC_URL = "http://127.0.0.1:8103"


def projections() -> list:
    return [ClientDirectory("measures"), QuestionnairePlans(), MeasuresBoard()]


def create_app(settings: Settings) -> Flask:
    app = create_service_app(
        "measures", settings, title="Rapport measures",
        description="Instruments, pre-session questionnaires, scores, risk alerts, outcomes "
                    "and dashboards.",
        blueprints=[api.blp, views.blp, dashboards.blp, form.blp], projections=projections())
    app.config["MEASURES_PUBLIC_URL"] = settings.extra.get(
        "measures_public_url", os.environ.get("RAPPORT_MEASURES_PUBLIC_URL", DEFAULT_PUBLIC_URL))
    # (attempts, window seconds) per client IP on /q/<token>
    app.config["MEASURES_LINK_RATE"] = settings.extra.get("link_rate", (30, 600))
    return app
