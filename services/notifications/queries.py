"""Reads: the delivery log, the schedule, the staff inbox and a client's contact preferences.
Reception (admin) sees the delivery log and the schedule but never a clinical kind (a risk
alert: that a client answered a risk item is clinical information). The blueprint carries the
writes of the same resources too (api.py: marking an inbox item read, setting preferences)."""

from __future__ import annotations

from datetime import timedelta

from flask_smorest import Blueprint

from shared.audit import record_read
from shared.auth import current_identity, requires
from shared.directory import check_client_access, client_or_404
from shared.subject_access import PartOut, events_about, part, plain
from shared.web import context

from .application import book as states
from .application.book import MessageBook, ensure_indexes
from .application.config import NotifyConfig
from .domain import CLIENT, LEAD, clinical_kinds
from .domain.plans import ENQUIRER
from .projections import Planner
from .schemas import (
    InboxItem,
    InboxQuery,
    NotificationOut,
    NotificationQuery,
    PreferencesOut,
    ScheduledQuery,
)

blp = Blueprint(
    "notifications",
    __name__,
    description="The delivery log, the schedule, the staff inbox and client contact preferences "
    "(pending messages follow them)",
)
BLUEPRINTS = [blp]
_indexed: set[str] = set()


def message_book() -> MessageBook:
    db = context().db
    if db.name not in _indexed:
        ensure_indexes(db)
        _indexed.add(db.name)
    return MessageBook(db)


def planner():
    return context().projection(Planner())


def out(doc: dict) -> dict:
    return {**doc, "id": doc["_id"]}


def audience() -> str:
    """Whose inbox the caller reads: the lead's (all risk alerts) or a therapist's own."""
    identity = current_identity()
    return LEAD if identity.role == "clinical_lead" else (identity.therapist_id or "-")


def client_for(client_id: str) -> dict:
    client = client_or_404(planner().reader("clients"), client_id)
    check_client_access(current_identity(), client)
    return client


def default_quiet():
    return NotifyConfig.from_env(context().settings).default_quiet


def preferences_view(client: dict, prefs: dict | None, quiet_default) -> dict:
    consented = list(client.get("reminder_channels") or [])
    if prefs is None:
        quiet = (
            {
                "start": quiet_default.start.strftime("%H:%M"),
                "end": quiet_default.end.strftime("%H:%M"),
            }
            if quiet_default
            else None
        )
        return {
            "client_id": client["_id"],
            "channels": consented,
            "reminder_lead_hours": 24,
            "quiet_hours": quiet,
            "consented_channels": consented,
            "default": True,
        }
    quiet = (
        {"start": prefs["quiet_start"], "end": prefs["quiet_end"]}
        if prefs.get("quiet_start")
        else None
    )
    lead = timedelta(minutes=prefs["reminder_lead_minutes"])
    return {
        "client_id": client["_id"],
        "channels": prefs["channels"],
        "reminder_lead_hours": lead.total_seconds() / 3600,
        "quiet_hours": quiet,
        "consented_channels": consented,
        "default": False,
    }


def _role_scope(query: dict) -> dict:
    identity = current_identity()
    if identity.role == "admin":
        hidden = clinical_kinds()
        if query.get("kind") in hidden:
            query["_id"] = None  # matches nothing: reception never sees clinical kinds
        query.setdefault("kind", {"$nin": hidden})
    if identity.role == "therapist":
        query["therapist_id"] = identity.therapist_id or "-"
    return query


@blp.route("/notifications", methods=["GET"])
@requires("clinical_lead", "admin")
@blp.arguments(NotificationQuery, location="query")
@blp.response(200, NotificationOut(many=True))
def delivery_log(args):
    """The delivery log, newest first: every planned, sent, failed and voided message."""
    query = {k: args[k] for k in ("status", "kind", "channel", "client_id") if k in args}
    if "since" in args or "until" in args:
        query["created_at"] = {
            **({"$gte": args["since"]} if "since" in args else {}),
            **({"$lt": args["until"]} if "until" in args else {}),
        }
    messages = message_book().messages
    cursor = messages.find(_role_scope(query)).sort("created_at", -1).limit(args["limit"])
    return [out(d) for d in cursor]


@blp.route("/scheduled", methods=["GET"])
@requires("clinical_lead", "admin", "therapist")
@blp.arguments(ScheduledQuery, location="query")
@blp.response(200, NotificationOut(many=True))
def scheduled(args):
    """Messages waiting to go (or going now), soonest first; a therapist sees their clients'."""
    query = {
        "status": {"$in": [states.PENDING, states.SENDING]},
        **{k: args[k] for k in ("kind", "client_id") if k in args},
    }
    messages = message_book().messages
    cursor = messages.find(_role_scope(query)).sort("next_at", 1).limit(args["limit"])
    return [out(d) for d in cursor]


@blp.route("/inbox", methods=["GET"])
@requires("therapist", "clinical_lead")
@blp.arguments(InboxQuery, location="query")
@blp.response(200, InboxItem(many=True))
def inbox(args):
    """The current user's staff inbox: a therapist's own alerts; the lead's, all risk alerts."""
    query = {"audience": audience()}
    if args.get("unread"):
        query["read_at"] = None
    items = list(message_book().inbox.find(query).sort("created_at", -1).limit(args["limit"]))
    clients = planner().reader("clients")
    for client_id in sorted({i["client_id"] for i in items if i.get("client_id")}):
        record_read("notifications/inbox", client_id)
    names = {
        c["_id"]: f"{c.get('given_name') or ''} {c.get('family_name') or ''}".strip()
        for c in clients.find({"_id": {"$in": [i.get("client_id") for i in items]}})
    }
    return [{**out(i), "client_name": names.get(i.get("client_id"))} for i in items]


@blp.route("/clients/<client_id>/preferences", methods=["GET"])
@requires("admin", "therapist", "clinical_lead")
@blp.response(200, PreferencesOut)
def preferences(client_id):
    """A client's contact preferences (the practice defaults until some are set)."""
    client = client_for(client_id)
    return preferences_view(client, message_book().preferences_of(client_id), default_quiet())


TO_THE_CLIENT = (CLIENT, ENQUIRER)  # the same person, before and after registration
# what a message sent to the client is, for their export: never its wording's details (the
# context holds the session's sealed link), an address, or a provider's error text
MESSAGE_FACTS = (
    "kind",
    "channel",
    "status",
    "session_id",
    "due_at",
    "created_at",
    "sent_at",
    "failed_at",
    "voided_at",
    "void_reason",
    "attempts",
)


@blp.route("/clients/<client_id>/subject-access", methods=["GET"])
@requires("service")
@blp.response(200, PartOut)
def subject_access(client_id):
    """Notifications' part of the client's subject access export (records' `GET
    /clients/{id}/export` gathers it): the messages sent (or planned, failed, voided) to the
    client (kind, channel, times, status), including those sent while they were an enquirer
    (the booking link), their contact preferences, and the notification events about them.
    Messages to others about the client (risk alerts to staff, invoices to a funder) are
    not theirs: not here."""
    record_read("notifications/subject-access", client_id, action="export")
    mine = {"client_id": client_id, "recipient": {"$in": list(TO_THE_CLIENT)}}
    found = message_book().messages.find(mine)
    messages = [
        {"id": d["_id"], **{k: plain(d[k]) for k in MESSAGE_FACTS if d.get(k) is not None}}
        for d in found.sort("created_at", 1)
    ]
    prefs = message_book().preferences_of(client_id)
    held = {"messages": messages, "preferences": [plain(prefs)] if prefs else []}
    events = events_about(
        context().store, client_id, keep=lambda e: e.data.get("recipient", CLIENT) in TO_THE_CLIENT
    )
    return part("notifications", client_id, held, events)
