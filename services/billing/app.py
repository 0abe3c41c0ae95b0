"""The billing app factory (gunicorn: services.billing.wsgi:app). `make openapi` (flask-smorest's
`flask --app services.billing.wsgi openapi write`) regenerates the committed openapi.json."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from flask import Flask

from shared.config import Settings
from shared.events import utcnow
from shared.web import create_service_app

from . import api, queries
from .projections import all_projections

DESCRIPTION = """Fees, funding, charges from the diary, invoices, credit notes, payments and
reports. Amounts are whole pence with their currency ({"amount": 9000, "currency": "GBP"});
dates are practice dates (Europe/London)."""


def create_app(settings: Settings, *, clock: Callable[[], datetime] = utcnow) -> Flask:
    """`clock` is injectable so tests can issue invoices and age debt on chosen days."""
    app = create_service_app(
        "billing",
        settings,
        title="Rapport billing",
        description=DESCRIPTION,
        blueprints=[*queries.BLUEPRINTS, *api.BLUEPRINTS],
        projections=all_projections(),
    )
    app.config["BILLING_CLOCK"] = clock
    return app
