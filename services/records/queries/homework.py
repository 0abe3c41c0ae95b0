"""The homework diary's reads, and the client's homework links.

A link is a credential for one purpose (this client's tasks and diary, nothing else) and
expires: only its SHA-256 is stored (architecture.md: secrets are not events), beside the
client id, never in an event. The portal's public page `/homework/{token}` reaches records
with its service token and the link in the body (never in a URL that a log could keep).
A wrong, expired or revoked link answers 404 alike. The therapist reads the entries on the
record (`GET /clients/{id}/diary-entries`, audited)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from flask import current_app
from flask_smorest import Blueprint
from pymongo import IndexModel

from shared.audit import record_read
from shared.auth import current_identity, requires
from shared.domain import NotFound
from shared.events import utcnow
from shared.mongo import delete_in_pieces
from shared.web import context

from ..application import application
from ..schemas import problems
from ..schemas.homework import DiaryEntriesOut, HomeworkOut, TokenIn
from .care import CLINICAL, blp
from .views import plain

homework_blp = Blueprint(
    "homework",
    __name__,
    url_prefix="/homework",
    description="The client's homework link (for the portal's public page, with its service "
    "token): their tasks and diary",
)
LIFETIME = timedelta(days=14)  # two weekly sessions: long enough, not a standing key
COLLECTION = "homework_links"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class HomeworkLinks:
    def __init__(self, db):
        self.links = db[COLLECTION]

    def ensure_indexes(self) -> None:
        self.links.create_indexes(
            [IndexModel("client_id"), IndexModel("expires_at", expireAfterSeconds=0)]
        )

    def issue(self, client_id: str, now: datetime) -> tuple[str, datetime]:
        token = secrets.token_urlsafe(32)
        expires_at = now + LIFETIME
        self.links.insert_one(
            {
                "_id": token_hash(token),
                "client_id": client_id,
                "issued_at": now,
                "expires_at": expires_at,
            }
        )
        return token, expires_at

    def client_of(self, token: str, now: datetime) -> tuple[str, datetime]:
        link = self.links.find_one({"_id": token_hash(token)})
        if link is None or link["expires_at"] <= now:
            raise NotFound("this link is not valid (it may have expired)")
        return link["client_id"], link["expires_at"]

    def forget(self, client_id: str) -> int:
        return delete_in_pieces(self.links, {"client_id": client_id})


def homework_links() -> HomeworkLinks:
    """The app's link store; its indexes are made on first use (never before gunicorn forks)."""
    links = current_app.extensions.get("homework_links")
    if links is None:
        links = current_app.extensions["homework_links"] = HomeworkLinks(context().db)
        links.ensure_indexes()
    return links


def entry_view(entry) -> dict:
    return {k: plain(entry.get(k)) for k in ("entry_id", "text", "task_id", "written_at")}


def task_brief(task) -> dict:
    keys = ("task_id", "description", "due_at", "status", "reflection")
    return {k: plain(task.get(k)) for k in keys}


@blp.route("/<client_id>/diary-entries", methods=["GET"])
@requires(*CLINICAL)
@problems(blp, 401, 403, 404)
@blp.response(200, DiaryEntriesOut)
def diary_entries(client_id):
    """The client's diary entries and reflections, newest first, and the tasks they marked
    done (audited)."""
    state = application().record(client_id, current_identity(), clinical=True)
    record_read("diary_entries", client_id)
    entries = sorted(state.diary.values(), key=lambda e: e["written_at"], reverse=True)
    done = [t for t in state.tasks.values() if t["status"] == "completed"]
    return {
        "client_id": client_id,
        "entries": [entry_view(e) for e in entries],
        "tasks_done": [task_brief(t) for t in done],
    }


def homework_view(state, expires_at) -> dict:
    entries = sorted(state.diary.values(), key=lambda e: e["written_at"], reverse=True)
    return {
        "given_name": state.details.get("given_name") or "",
        "tasks": [task_brief(t) for t in state.tasks.values()],
        "entries": [entry_view(e) for e in entries[:20]],
        "expires_at": expires_at,
    }


@homework_blp.route("/view", methods=["POST"])
@requires("service")
@problems(homework_blp, 401, 403, 404)
@homework_blp.arguments(TokenIn)
@homework_blp.response(200, HomeworkOut)
def homework(body):
    """What the client's homework page shows for a link: their first name, their tasks and
    their own recent entries; nothing of the clinical record. A POST so the link stays out
    of URLs and logs; 404 for any link that is not valid now."""
    client_id, expires_at = homework_links().client_of(body["token"], utcnow())
    state, _ = application().states(client_id)
    if state.status != "active":
        raise NotFound("this link is not valid (it may have expired)")
    return homework_view(state, expires_at)
