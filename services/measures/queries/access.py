"""What a request reads, and who may see which client: the client directory (records'
events) decides. Used by the write routes (api) as well as the reads."""

from __future__ import annotations

from flask import current_app

from shared.auth import current_identity
from shared.directory import ClientDirectory, check_client_access
from shared.domain import NotFound
from shared.web import context

from ..application import Application
from ..application.links import Links
from ..projections import MeasuresBoard, QuestionnairePlans


def clients():
    return context().projection(ClientDirectory("measures")).reader("clients")


def board(collection: str):
    return context().projection(MeasuresBoard()).reader(collection)


def plans():
    return context().projection(QuestionnairePlans()).reader("plans")


def application() -> Application:
    return Application(context().store)


def links() -> Links:
    """The questionnaire links (indexes made once per app)."""
    found = current_app.extensions.get("measures_links")
    if found is None:
        found = Links(context().db)
        found.ensure_indexes()
        current_app.extensions["measures_links"] = found
    return found


def client_for(client_id: str, *, clinical: bool = True) -> dict | None:
    """The directory entry after the access check (403 admin on clinical data, 403 another
    therapist's client, 404 a therapist asking about a client nobody registered)."""
    identity = current_identity()
    client = clients().find_one({"_id": client_id})
    check_client_access(identity, client, clinical=clinical)
    return client


def known_client_for(client_id: str) -> dict:
    client = client_for(client_id)
    if client is None:
        raise NotFound(f"no client {client_id}")
    return client


def visible_therapist(therapist_id: str | None) -> dict:
    """A Mongo filter narrowing to what the caller may see (therapist: own clients only)."""
    identity = current_identity()
    if identity.role == "therapist":
        return {"therapist_id": identity.therapist_id or "-"}
    return {"therapist_id": therapist_id} if therapist_id else {}
