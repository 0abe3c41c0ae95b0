"""The billing app factory (gunicorn: services.billing.wsgi:app) and its `flask` commands:
`flask --app services.billing.wsgi openapi write` regenerates the committed openapi.json."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup

from shared.config import Settings
from shared.events import utcnow
from shared.web import create_service_app

from . import api, queries
from .projections import all_projections

DESCRIPTION = """Fees, funding, charges from the diary, invoices, credit notes, payments and
reports. Amounts are whole pence with their currency ({"amount": 9000, "currency": "GBP"});
dates are practice dates (Europe/London)."""
OPENAPI = Path(__file__).resolve().parent / "openapi.json"


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
    app.cli.add_command(openapi)
    return app


openapi = AppGroup("openapi", help="The committed OpenAPI document.")


@openapi.command("write")
def write_openapi() -> None:
    """Write openapi.json from the app's own routes and schemas."""
    spec = create_app(Settings()).test_client().get("/openapi.json").get_json()
    OPENAPI.write_text(json.dumps(spec, indent=2, sort_keys=True) + "\n")
    click.echo(f"wrote {OPENAPI}")
