"""HTTP API: the delivery log, pending messages, the staff inbox, client preferences.
Reception (admin) sees the delivery log and the schedule but never a risk alert (that a
client answered a risk item is clinical information)."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from shared.audit import record_read
from shared.auth import current_identity, requires
from shared.directory import check_client_access, client_or_404
from shared.domain import NotFound
from shared.events import utcnow
from shared.web import context, request_metadata

from . import book as states
from .application import preferences_view, set_preferences
from .book import MessageBook, ensure_indexes
from .config import NotifyConfig
from .domain import LEAD, SetPreferences
from .planner import Planner
from .schemas import (
    InboxItem,
    InboxQuery,
    NotificationOut,
    NotificationQuery,
    PreferencesIn,
    PreferencesOut,
    ScheduledQuery,
)

blp = Blueprint(
    "notifications",
    __name__,
    description="Confirmations, reminders, questionnaire "
    "links and risk alerts: the delivery log, the schedule, the staff inbox",
)
_indexed: set[str] = set()


def _book() -> MessageBook:
    db = context().db
    if db.name not in _indexed:
        ensure_indexes(db)
        _indexed.add(db.name)
    return MessageBook(db)


def _planner():
    return context().projection(Planner())


def _out(doc: dict) -> dict:
    return {**doc, "id": doc["_id"]}


def _role_scope(query: dict) -> dict:
    identity = current_identity()
    if identity.role == "admin":
        if query.get("kind") == "risk_alert":
            query["_id"] = None  # matches nothing: reception never sees risk alerts
        query.setdefault("kind", {"$ne": "risk_alert"})
    if identity.role == "therapist":
        query["therapist_id"] = identity.therapist_id or "-"
    return query


@blp.route("/notifications")
class DeliveryLog(MethodView):
    @blp.arguments(NotificationQuery, location="query")
    @blp.response(200, NotificationOut(many=True))
    @requires("clinical_lead", "admin")
    def get(self, args):
        """The delivery log, newest first: every planned, sent, failed and voided message."""
        query = {k: args[k] for k in ("status", "kind", "channel", "client_id") if k in args}
        if "since" in args or "until" in args:
            query["created_at"] = {
                **({"$gte": args["since"]} if "since" in args else {}),
                **({"$lt": args["until"]} if "until" in args else {}),
            }
        cursor = (
            _book().messages.find(_role_scope(query)).sort("created_at", -1).limit(args["limit"])
        )
        return [_out(d) for d in cursor]


@blp.route("/scheduled")
class Scheduled(MethodView):
    @blp.arguments(ScheduledQuery, location="query")
    @blp.response(200, NotificationOut(many=True))
    @requires("clinical_lead", "admin", "therapist")
    def get(self, args):
        """Messages waiting to go (or going now), soonest first; a therapist sees their clients'."""
        query = {
            "status": {"$in": [states.PENDING, states.SENDING]},
            **{k: args[k] for k in ("kind", "client_id") if k in args},
        }
        cursor = _book().messages.find(_role_scope(query)).sort("next_at", 1).limit(args["limit"])
        return [_out(d) for d in cursor]


def _audience() -> str:
    identity = current_identity()
    return LEAD if identity.role == "clinical_lead" else (identity.therapist_id or "-")


@blp.route("/inbox")
class Inbox(MethodView):
    @blp.arguments(InboxQuery, location="query")
    @blp.response(200, InboxItem(many=True))
    @requires("therapist", "clinical_lead")
    def get(self, args):
        """The current user's staff inbox: a therapist's own alerts; the lead's, all risk alerts."""
        query = {"audience": _audience()}
        if args.get("unread"):
            query["read_at"] = None
        items = list(_book().inbox.find(query).sort("created_at", -1).limit(args["limit"]))
        clients = _planner().reader("clients")
        for client_id in sorted({i["client_id"] for i in items if i.get("client_id")}):
            record_read("notifications/inbox", client_id)
        names = {
            c["_id"]: f"{c.get('given_name') or ''} {c.get('family_name') or ''}".strip()
            for c in clients.find({"_id": {"$in": [i.get("client_id") for i in items]}})
        }
        return [{**_out(i), "client_name": names.get(i.get("client_id"))} for i in items]


@blp.route("/inbox/<item_id>/read")
class InboxRead(MethodView):
    @blp.response(200, InboxItem)
    @requires("therapist", "clinical_lead")
    def post(self, item_id):
        """Mark one of your inbox items read (marking it again changes nothing)."""
        inbox = _book().inbox
        mine = {"_id": item_id, "audience": _audience()}
        inbox.update_one(
            {**mine, "read_at": None},
            {"$set": {"read_at": utcnow(), "read_by": current_identity().sub}},
        )
        item = inbox.find_one(mine)
        if item is None:
            raise NotFound(f"no inbox item {item_id} for you")
        return _out(item)


def _client(client_id: str) -> dict:
    client = client_or_404(_planner().reader("clients"), client_id)
    check_client_access(current_identity(), client)
    return client


def _default_quiet():
    return NotifyConfig.from_env(context().settings).default_quiet


@blp.route("/clients/<client_id>/preferences")
class Preferences(MethodView):
    @blp.response(200, PreferencesOut)
    @requires("admin", "therapist", "clinical_lead")
    def get(self, client_id):
        """A client's contact preferences (the practice defaults until some are set)."""
        client = _client(client_id)
        return preferences_view(client, _book().preferences_of(client_id), _default_quiet())

    @blp.arguments(PreferencesIn)
    @blp.response(200, PreferencesOut)
    @requires("admin", "therapist", "clinical_lead")
    def put(self, body, client_id):
        """Set a client's channels, reminder lead time and quiet hours; pending messages follow."""
        client = _client(client_id)
        _book()
        if "quiet_hours" in body:
            quiet = body["quiet_hours"]
        else:
            default = _default_quiet()
            quiet = (
                {"start": default.start.strftime("%H:%M"), "end": default.end.strftime("%H:%M")}
                if default
                else None
            )
        command = SetPreferences(
            client_id=client_id,
            channels=tuple(body["channels"]),
            reminder_lead_minutes=body["reminder_lead_hours"] * 60,
            quiet_start=quiet["start"] if quiet else None,
            quiet_end=quiet["end"] if quiet else None,
            consented=tuple(client.get("reminder_channels") or ()),
        )
        set_preferences(context().store, _planner(), command, request_metadata())
        return preferences_view(client, _book().preferences_of(client_id), _default_quiet())
