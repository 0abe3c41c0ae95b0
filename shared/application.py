"""Command handling: load the stream, decide, append with the expected version. A concurrent
writer makes the append fail; the handler then decides again on the fresh state, so the
second of two racing commands is judged against the first one's outcome."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pymongo.client_session import ClientSession

from .domain import Conflict, Decider, DomainError, fold
from .events import Event
from .eventstore import ConcurrencyError, EventStore, Metadata, StreamAppend


@dataclass(frozen=True)
class Outcome:
    """What a command did: the stream's state after it, the events it appended (none when
    the decider found nothing to do) and the stream's version after them."""

    state: Any
    events: list[Event]
    version: int


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
        return self.run(stream_id, command, meta, also=also).events

    def run(
        self,
        stream_id: str,
        command: Any,
        meta: Metadata,
        *,
        check: Callable[[Any], None] | None = None,
        also: Callable[[ClientSession], None] | None = None,
    ) -> Outcome:
        """`execute` that loads the stream once per attempt: `check(state)` (e.g. an access
        rule) runs on the state the decision is made on, and the state returned is that one
        with the new events applied, so a route never loads the stream again."""
        for _ in range(self.attempts):
            state, version = self.state(stream_id)
            if check is not None:
                check(state)
            new_events = self.decider.decide(state, command)
            if not new_events:
                return Outcome(state, [], version)
            outcome = self.commit(stream_id, state, version, new_events, meta, also=also)
            if outcome is not None:
                return outcome
        raise Conflict("the record was changed by someone else at the same time; try again")

    def commit(
        self,
        stream_id: str,
        state: Any,
        version: int,
        new_events: list,
        meta: Metadata,
        *,
        also: Callable[[ClientSession], None] | None = None,
    ) -> Outcome | None:
        """Append what was decided on `state` (read at `version`) and return the state with
        the events applied; None when someone else wrote the stream meanwhile (decide again
        on the fresh state). For a caller with its own loop: a command made from the state,
        or writes that depend on the events decided."""
        try:
            stored = self.store.append(stream_id, version, new_events, meta, also=also)
        except ConcurrencyError:
            return None
        for event in stored:
            state = self.decider.evolve(state, event)
        return Outcome(state, stored, version + len(stored))


@dataclass(frozen=True)
class Command:
    """One command for `run_together`: what decides it, on which stream, with what cause."""

    decider: Decider
    stream_id: str
    command: Any
    meta: Metadata


def run_together(store: EventStore, commands: Sequence[Command]) -> list[DomainError | None]:
    """Commands on distinct streams, each decided on its stream's state, the streams read in
    one query and every command's events appended in one transaction: a loop acting on fifty
    pending documents made fifty transactions one after another, each waiting for the
    store's queue and holding the service's append lock (issue 14: measures' reactor, one
    questionnaire request per booking). Per command, the rule that refused it (nothing of it
    is appended) or None. Raises ConcurrencyError, appending nothing, when a stream moved
    since it was read: run them one by one then (CommandHandler.run decides again)."""
    streams = [c.stream_id for c in commands]
    if len(set(streams)) != len(streams):
        raise ValueError(f"a stream appears twice: {sorted(streams)}")
    histories = store.load_many(streams)
    refused: list[DomainError | None] = []
    appends = []
    for c in commands:
        history = histories[c.stream_id]
        try:
            new = c.decider.decide(fold(c.decider, history), c.command)
        except DomainError as err:
            refused.append(err)
            continue
        refused.append(None)
        if new:
            appends.append(StreamAppend(c.stream_id, len(history), new, c.meta))
    if appends:
        store.append_streams(appends, commands[0].meta)
    return refused
