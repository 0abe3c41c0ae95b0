"""Command handling for client preferences: decide on the preferences stream, and in the
same transaction keep the `preferences` document the planner reads and re-plan the
client's pending messages (reminder times move, channels no longer wanted are voided)."""

from __future__ import annotations

from datetime import timedelta

from shared.application import CommandHandler
from shared.events import utcnow
from shared.eventstore import EventStore, Metadata
from shared.projections import ProjectionStore, View

from .book import MessageBook
from .domain import PreferencesDecider, SetPreferences
from .planner import Planner


def preferences_stream(client_id: str) -> str:
    return f"preferences-{client_id}"


def set_preferences(
    store: EventStore, planner: ProjectionStore, command: SetPreferences, meta: Metadata
) -> None:
    def also(session) -> None:
        book = MessageBook(store.db, session)
        now = utcnow()
        book.preferences.replace_one(
            {"_id": command.client_id},
            {
                "_id": command.client_id,
                "channels": list(command.channels),
                "reminder_lead_minutes": command.reminder_lead_minutes,
                "quiet_start": command.quiet_start,
                "quiet_end": command.quiet_end,
                "updated_at": now,
            },
            upsert=True,
            session=session,
        )
        book.void(
            {
                "client_id": command.client_id,
                "recipient": "client",
                "channel": {"$nin": list(command.channels)},
            },
            "the client chose other channels",
            now,
        )
        view = View(planner, planner.active_generation(), session)
        projection: Planner = planner.projection
        projection.replan_client(view, command.client_id, now)

    CommandHandler(store, PreferencesDecider()).execute(
        preferences_stream(command.client_id), command, meta, also=also
    )


def preferences_view(client: dict, prefs: dict | None, default_quiet) -> dict:
    consented = list(client.get("reminder_channels") or [])
    if prefs is None:
        quiet = (
            {
                "start": default_quiet.start.strftime("%H:%M"),
                "end": default_quiet.end.strftime("%H:%M"),
            }
            if default_quiet
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
    return {
        "client_id": client["_id"],
        "channels": prefs["channels"],
        "reminder_lead_hours": timedelta(minutes=prefs["reminder_lead_minutes"]).total_seconds()
        / 3600,
        "quiet_hours": quiet,
        "consented_channels": consented,
        "default": False,
    }
