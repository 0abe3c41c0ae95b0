"""Command handling: load the stream, decide, append with the expected version. A concurrent
writer makes the append fail; the handler then decides again on the fresh state, so the
second of two racing commands is judged against the first one's outcome."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pymongo.client_session import ClientSession

from .domain import Conflict, Decider, fold
from .events import Event
from .eventstore import ConcurrencyError, EventStore, Metadata


class CommandHandler:
    def __init__(self, store: EventStore, decider: Decider, *, attempts: int = 5):
        self.store, self.decider, self.attempts = store, decider, attempts

    def state(self, stream_id: str) -> tuple[Any, int]:
        events = self.store.load(stream_id)
        return fold(self.decider, events), len(events)

    def execute(
        self,
        stream_id: str,
        command: Any,
        meta: Metadata,
        *,
        also: Callable[[ClientSession], None] | None = None,
    ) -> list[Event]:
        for _ in range(self.attempts):
            state, version = self.state(stream_id)
            new_events = self.decider.decide(state, command)
            if not new_events:
                return []
            try:
                return self.store.append(stream_id, version, new_events, meta, also=also)
            except ConcurrencyError:
                continue
        raise Conflict("the record was changed by someone else at the same time; try again")
