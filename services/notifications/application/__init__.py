"""The notifications service's Application: one method per command.

- `set_preferences`: decide on the client's preferences stream and, in the same
  transaction, keep the `preferences` document the planner reads and re-plan the client's
  pending messages (reminder times move, channels no longer wanted are voided).
- `record` / `record_all`: a notification's life as the dispatcher reports it (scheduled,
  sent, failed, voided), appended with the message book's change in one transaction.

The message book (book.py) and the service's settings (config.py) live beside it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pymongo.client_session import ClientSession

from shared.application import CommandHandler, Outcome
from shared.domain import Conflict, fold
from shared.events import utcnow
from shared.eventstore import ConcurrencyError, EventStore, Metadata, StreamAppend
from shared.mongo import in_transaction
from shared.projections import ProjectionStore, View

from ..domain import NotificationDecider, PreferencesDecider, SetPreferences, stream_id
from .book import MessageBook

if TYPE_CHECKING:
    from ..projections import Planner

Mark = Callable[[ClientSession], None]


def preferences_stream(client_id: str) -> str:
    return f"preferences-{client_id}"


class Application:
    def __init__(self, store: EventStore):
        self.store = store
        self.notifications = NotificationDecider()

    def set_preferences(
        self, planner: ProjectionStore, command: SetPreferences, meta: Metadata
    ) -> Outcome:
        def also(session) -> None:
            now = utcnow()
            book = MessageBook(self.store.db, session)
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

        return CommandHandler(self.store, PreferencesDecider()).run(
            preferences_stream(command.client_id), command, meta, also=also
        )

    def record(self, key: str, command: Any, meta: Metadata, mark: Mark) -> None:
        """Append the notification's events (if any) and update the book in one transaction."""
        sid = stream_id(key)
        for _ in range(5):
            events = self.store.load(sid)
            new = self._decide_all(fold(self.notifications, events), [command])
            if not new:
                in_transaction(self.store.mongo, mark)
                return
            try:
                self.store.append(sid, len(events), new, meta, also=mark)
                return
            except ConcurrencyError:
                continue
        raise RuntimeError(f"could not record {type(command).__name__} for {key}")

    def record_all(self, batch: list[tuple[str, list]], meta: Metadata, mark: Mark) -> None:
        """Several notifications' commands [(key, [command, ...])] in one transaction with
        `mark`; ConcurrencyError when a sender recorded one of them meanwhile."""
        appends = []
        streams = self.store.load_many([stream_id(key) for key, _ in batch])
        for key, commands in batch:
            sid = stream_id(key)
            events = streams[sid]
            new = self._decide_all(fold(self.notifications, events), commands)
            if new:
                appends.append(StreamAppend(sid, len(events), new))
        if appends:
            self.store.append_streams(appends, meta, also=mark)
        else:
            in_transaction(self.store.mongo, mark)

    def _decide_all(self, state, commands) -> list:
        new = []
        for command in commands:
            try:
                decided = self.notifications.decide(state, command)
            except Conflict:
                decided = []
            for event in decided:
                state = self.notifications.evolve(state, event)
            new += decided
        return new
