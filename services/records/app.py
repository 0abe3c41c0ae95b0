"""The records service's Flask app (gunicorn: services.records.wsgi:app)."""

from __future__ import annotations

from flask import Flask

import shared.contracts  # noqa: F401  (registers every event type the projections read)
from shared.config import Settings
from shared.events import utcnow
from shared.web import create_service_app

from . import api, queries
from .projections import projections

DESCRIPTION = """The clinical record of an IPT course. Every change is an event: the record as
known on any past date is `GET /clients/{id}?as_of=...`. Reception (admin) sees contact and
diary data only; notes, assessment, formulation and risk are for the client's therapist and
the clinical lead, and every read of them is written to the tamper-evident audit trail."""


def create_app(settings: Settings) -> Flask:
    app = create_service_app(
        "records",
        settings,
        title="Rapport records",
        description=DESCRIPTION,
        blueprints=[*queries.BLUEPRINTS, *api.BLUEPRINTS],
        projections=projections(),
    )
    app.config.setdefault("RECORDS_CLOCK", utcnow)  # tests move it 20 years on
    return app
