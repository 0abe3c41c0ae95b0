"""Writes: a client's contact preferences (pending messages follow them) and marking a
staff inbox item read. Parse, call the Application, map the result. The routes are on the
blueprint of queries.py, beside the reads of the same resources."""

from __future__ import annotations

from shared.auth import current_identity, requires
from shared.domain import NotFound
from shared.events import utcnow
from shared.web import context, request_metadata

from .application import Application
from .domain import SetPreferences
from .queries import (
    audience,
    blp,
    client_for,
    default_quiet,
    message_book,
    out,
    planner,
    preferences_view,
)
from .schemas import InboxItem, PreferencesIn, PreferencesOut

BLUEPRINTS: list = []  # every write belongs to a resource of queries.BLUEPRINTS


@blp.route("/inbox/<item_id>/read", methods=["POST"])
@requires("therapist", "clinical_lead")
@blp.response(200, InboxItem)
def mark_read(item_id):
    """Mark one of your inbox items read (marking it again changes nothing)."""
    inbox = message_book().inbox
    mine = {"_id": item_id, "audience": audience()}
    inbox.update_one(
        {**mine, "read_at": None},
        {"$set": {"read_at": utcnow(), "read_by": current_identity().sub}},
    )
    item = inbox.find_one(mine)
    if item is None:
        raise NotFound(f"no inbox item {item_id} for you")
    return out(item)


def _quiet_hours(body: dict) -> dict | None:
    """The quiet hours asked for: as given (null for none), else the practice default."""
    if "quiet_hours" in body:
        return body["quiet_hours"]
    default = default_quiet()
    if default is None:
        return None
    return {"start": default.start.strftime("%H:%M"), "end": default.end.strftime("%H:%M")}


@blp.route("/clients/<client_id>/preferences", methods=["PUT"])
@requires("admin", "therapist", "clinical_lead")
@blp.arguments(PreferencesIn)
@blp.response(200, PreferencesOut)
def set_preferences(body, client_id):
    """Set a client's channels, reminder lead time and quiet hours; pending messages follow."""
    client = client_for(client_id)
    book = message_book()
    quiet = _quiet_hours(body)
    command = SetPreferences(
        client_id=client_id,
        channels=tuple(body["channels"]),
        reminder_lead_minutes=body["reminder_lead_hours"] * 60,
        quiet_start=quiet["start"] if quiet else None,
        quiet_end=quiet["end"] if quiet else None,
        consented=tuple(client.get("reminder_channels") or ()),
    )
    Application(context().store).set_preferences(planner(), command, request_metadata())
    return preferences_view(client, book.preferences_of(client_id), default_quiet())
