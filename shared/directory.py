"""The client directory every service keeps from records' events: who the client is, who
their therapist is, whether they are still in treatment, how they may be contacted, and
their IPT problem areas. Each service has its own copy (its own database); access checks
("a therapist reaches only their own clients") read it."""

from __future__ import annotations

from pymongo import IndexModel
from pymongo.collection import Collection

from .auth import Forbidden, Identity
from .domain import NotFound
from .projections import Projection

_CONTACT = (
    "given_name",
    "family_name",
    "email",
    "phone",
    "preferred_modality",
    "reminder_channels",
    "therapist_id",
    "date_of_birth",
)


class ClientDirectory(Projection):
    name = "client_directory"
    sources = ("records",)
    collections = {"clients": [IndexModel("therapist_id"), IndexModel("status")]}

    def __init__(self, service: str):
        self.service = service

    def on_ClientRegistered(self, event, view):
        d = event.data
        doc = {k: d.get(k) for k in _CONTACT}
        doc["date_of_birth"] = d["date_of_birth"].isoformat() if d.get("date_of_birth") else None
        view["clients"].update_one(
            {"_id": d["client_id"]},
            {
                "$set": {
                    **doc,
                    "status": "active",
                    "phase": None,
                    "problem_areas": [],
                    "registered_at": event.occurred_at,
                }
            },
            upsert=True,
        )

    def on_ClientDetailsCorrected(self, event, view):
        d = event.data
        changes = {k: d[k] for k in _CONTACT if k in d}
        if "date_of_birth" in changes and changes["date_of_birth"] is not None:
            changes["date_of_birth"] = changes["date_of_birth"].isoformat()
        if changes:
            view["clients"].update_one({"_id": d["client_id"]}, {"$set": changes})

    def on_FormulationRecorded(self, event, view):
        view["clients"].update_one(
            {"_id": event.data["client_id"]},
            {"$set": {"problem_areas": list(event.data["problem_areas"])}},
        )

    def on_PhaseChanged(self, event, view):
        view["clients"].update_one(
            {"_id": event.data["client_id"]}, {"$set": {"phase": event.data["to_phase"]}}
        )

    def on_ClientDisposed(self, event, view):
        # the personal fields already read "[disposed]" after the rebuild that follows a
        # disposal; say so in the status too
        view["clients"].update_one(
            {"_id": event.data["client_id"]},
            {"$set": {"status": "disposed", "disposed_at": event.data["disposed_at"]}},
        )

    def on_ClientDischarged(self, event, view):
        view["clients"].update_one(
            {"_id": event.data["client_id"]},
            {"$set": {"status": "discharged", "discharged_at": event.data["discharged_at"]}},
        )


def client_or_404(clients_collection: Collection, client_id: str) -> dict:
    doc = clients_collection.find_one({"_id": client_id})
    if doc is None:
        raise NotFound(f"no client {client_id}")
    return doc


def check_client_access(identity: Identity, client: dict | None, *, clinical: bool = False) -> None:
    """A therapist reaches only their own clients; admin reaches contact and diary data but
    never clinical content (`clinical=True`); the clinical lead and services reach all."""
    if identity.role == "admin":
        if clinical:
            raise Forbidden("reception staff do not see clinical information")
        return
    if client is None:
        if identity.role == "therapist":
            raise NotFound("no such client on your caseload")
        return
    if not identity.can_see_client_of(client.get("therapist_id")):
        raise Forbidden("this client is not on your caseload")
