"""Subject access (UK GDPR Art. 15): everything held about one client, gathered from every
service into the clinical lead's one download (records' `GET /clients/{id}/export`).

Each service answers its own part at `GET /clients/{id}/subject-access`, a route for the
`service` role alone (records calls it with a short-lived service token, as notifications
fetches an invoice's PDF from billing). A part is what the service holds about the client,
shaped for a reader (`held`: its sessions, answers, messages, charges...), and its own events
about the client (`events`: every fact it recorded, sealed fields opened; after the client's
key was destroyed they read "[disposed]", so a shredded client exports nothing readable).

Credentials are never exported: a video join link (it carries the room's JWT), link tokens
and their hashes are left out wherever they appear (`SECRETS`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import Any
from urllib.parse import quote

import requests
from marshmallow import Schema, fields
from pymongo.collection import Collection

from .auth import service_token
from .config import Settings
from .events import Event, registry
from .eventstore import EventStore

log = logging.getLogger(__name__)

PATH = "/clients/{client_id}/subject-access"
# keys whose values are credentials, wherever they appear in a document or an event
SECRETS = frozenset(
    {"video_link", "token", "token_hash", "link_hash", "secret", "jwt", "claim", "lease_until"}
)


def plain(value: Any, hide: Iterable[str] = ()) -> Any:
    """A stored value as JSON: ISO dates and times, `id` for `_id`, credentials and the
    keys named in `hide` left out."""
    dropped = SECRETS | set(hide)
    if isinstance(value, dict):
        return {
            ("id" if k == "_id" else k): plain(v, hide)
            for k, v in value.items()
            if k not in dropped
        }
    if isinstance(value, list | tuple):
        return [plain(v, hide) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def event_out(event: Event, hide: Iterable[str] = ()) -> dict:
    return {
        "event_id": event.event_id,
        "type": event.type,
        "stream_id": event.stream_id,
        "occurred_at": event.occurred_at.isoformat(),
        "recorded_at": event.recorded_at.isoformat(),
        "actor": {"id": event.actor.id, "role": event.actor.role},
        "data": plain(registry.dump(event.type, event.data), hide),
    }


def events_about(
    store: EventStore,
    client_id: str,
    *,
    keep: Callable[[Event], bool] = lambda e: True,
    hide: Iterable[str] = (),
) -> list[dict]:
    """The service's own events about the client (`data.client_id`), in the order they were
    recorded, opened with the store's cipher. A full read of the store: exports are rare."""
    docs = store.events.find({"data.client_id": client_id}).sort("position", 1)
    found = (store.from_document(d) for d in docs)
    return [event_out(e, hide) for e in found if keep(e)]


def documents(
    collection: Collection, query: dict, hide: Iterable[str] = (), sort: str = "_id"
) -> list[dict]:
    return [plain(d, hide) for d in collection.find(query).sort(sort, 1)]


def part(service: str, client_id: str, held: dict, events: list[dict]) -> dict:
    return {"service": service, "client_id": client_id, "held": held, "events": events}


class PartOut(Schema):
    service = fields.String()
    client_id = fields.String()
    held = fields.Dict(
        metadata={"description": "what the service holds, by kind (lists of documents)"}
    )
    events = fields.List(
        fields.Dict(), metadata={"description": "the service's own events about the client"}
    )


def fetch_parts(
    settings: Settings, client_id: str, services: Iterable[str], *, timeout: float = 15.0
) -> tuple[dict[str, dict], dict[str, str]]:
    """Each service's part, asked with a service token; and, by service, why a part is
    missing (unreachable, or an error answer) so the export says it is incomplete."""
    token = service_token(settings.token_secret, "records", ttl_seconds=60)
    parts: dict[str, dict] = {}
    missing: dict[str, str] = {}
    for name in services:
        path = PATH.format(client_id=quote(client_id, safe=""))  # an id is one path segment
        url = settings.service_urls[name].rstrip("/") + path
        try:
            answer = requests.get(
                url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout
            )
        except requests.RequestException as err:
            log.warning("subject access: %s unreachable (%s)", name, type(err).__name__)
            missing[name] = f"unreachable ({type(err).__name__})"
            continue
        if answer.status_code != 200:
            missing[name] = f"answered {answer.status_code}"
            continue
        parts[name] = answer.json()
    return parts, missing
