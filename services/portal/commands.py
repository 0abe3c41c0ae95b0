"""The portal's `flask` commands, registered by the app factory:

    flask --app services.portal.wsgi users add --email E --name N --role R [--therapist-id T]

The password comes from RAPPORT_USER_PASSWORD, or is asked for (never an argument, which
would stay in the shell history and the process list)."""

from __future__ import annotations

import os

import click
from flask.cli import AppGroup

from shared.auth import STAFF_ROLES

from .security import user_store
from .users import UserError

users_cli = AppGroup("users", help="The portal's staff users.")


@users_cli.command("add")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--role", required=True, type=click.Choice(STAFF_ROLES))
@click.option("--therapist-id", help="A therapist's id in scheduling (therapists only).")
@click.pass_context
def add_user(
    ctx: click.Context, email: str, name: str, role: str, therapist_id: str | None
) -> None:
    """Add a staff user who can sign in to the portal."""
    password = os.environ.get("RAPPORT_USER_PASSWORD") or click.prompt(
        "Password", hide_input=True, confirmation_prompt=True
    )
    try:
        user = user_store().add(
            email=email, name=name, role=role, password=password, therapist_id=therapist_id
        )
    except UserError as err:
        click.echo(f"refused: {err.field}: {err.reason}", err=True)
        ctx.exit(2)
    click.echo(f"added {user.email} ({user.role}) id={user.id}")
