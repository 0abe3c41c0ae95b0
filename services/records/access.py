"""Who may reach a record, and the per-app Records handle the routes share."""

from __future__ import annotations

from datetime import datetime

from flask import current_app

from shared.auth import Forbidden, current_identity
from shared.directory import check_client_access
from shared.web import context, request_metadata

from .application import Records
from .domain import ClientState
from .projections import ClientSummaries

CLINICAL_ROLES = ("therapist", "clinical_lead")


def records() -> Records:
    found = current_app.extensions.get("records")
    if found is None:
        ctx = context()
        Records.ensure_indexes(ctx.store)
        found = current_app.extensions["records"] = Records(
            ctx.store, ctx.projection(ClientSummaries())
        )
    return found


def sees_clinical() -> bool:
    return current_identity().role in CLINICAL_ROLES


def authorised(client_id: str, *, clinical: bool, until: datetime | None = None) -> ClientState:
    """The record (as of `until`) if the caller may reach it: 404 if there is no such
    client, 403 if it is not on a therapist's caseload or is clinical and the caller is
    reception (shared.directory.check_client_access)."""
    now, then = records().states(client_id, until)
    check_client_access(
        current_identity(), {"therapist_id": now.details["therapist_id"]}, clinical=clinical
    )
    return then


def run(client_id: str, command) -> ClientState:
    """A clinical command: only the client's therapist or the clinical lead."""
    authorised(client_id, clinical=True)
    return records().execute(client_id, command, request_metadata())


def run_on_session(client_id: str, session_id: str | None, command) -> ClientState:
    """A clinical command that names a session: access first (403 before anything is said
    about sessions), then the session must be the client's (422 naming `session_id`). A
    closed record skips the check so the command's own 409 (discharged, disposed) answers."""
    state = authorised(client_id, clinical=True)
    if session_id and state.status == "active":
        records().check_session(client_id, session_id)
    return records().execute(client_id, command, request_metadata())


def own_caseload_only(therapist_id: str | None) -> None:
    identity = current_identity()
    if identity.role == "therapist" and therapist_id != identity.therapist_id:
        raise Forbidden("a therapist reaches only their own caseload")
