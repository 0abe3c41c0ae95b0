"""CommandHandler against the real local MongoDB-wire server: `commit` appends what was
decided on a state and returns that state with the events applied, or None when the stream
moved on meanwhile (the caller decides again), writing nothing."""

import pytest

from shared.application import Command, CommandHandler, run_together
from shared.domain import DomainError
from shared.events import NewEvent
from shared.eventstore import ConcurrencyError
from testkit.kernel import META, kernel_store


class Counter:
    def initial_state(self) -> int:
        return 0

    def evolve(self, state: int, event) -> int:
        return state + event.data.get("by", 0)

    def decide(self, state: int, command: int) -> list[NewEvent]:
        return [NewEvent("CounterIncremented", {"by": command, "reason": "test"})]


OPEN = NewEvent("CounterOpened", {"name": "a"})


def test_commit_returns_the_state_with_the_events_applied(settings):
    store = kernel_store(settings)
    store.append("c-1", 0, [OPEN], META)
    handler = CommandHandler(store, Counter())
    state, version = handler.state("c-1")
    outcome = handler.commit("c-1", state, version, Counter().decide(state, 3), META)
    assert outcome is not None
    assert (outcome.state, outcome.version) == (3, 2)
    assert [e.type for e in outcome.events] == ["CounterIncremented"]
    assert handler.state("c-1") == (3, 2)


def test_commit_on_a_stale_state_writes_nothing_and_says_so(settings):
    store = kernel_store(settings)
    store.append("c-1", 0, [OPEN], META)
    handler = CommandHandler(store, Counter())
    state, version = handler.state("c-1")
    handler.run("c-1", 5, META)  # someone else, meanwhile
    assert handler.commit("c-1", state, version, Counter().decide(state, 3), META) is None
    assert handler.state("c-1") == (5, 2)


class Capped(Counter):
    """Refuses to count past 10."""

    def decide(self, state: int, command: int) -> list[NewEvent]:
        if state + command > 10:
            raise DomainError("past ten", code="capped")
        return super().decide(state, command)


def test_run_together_appends_every_stream_in_one_transaction_and_says_which_were_refused(
    settings,
):
    """shared.application.run_together: commands on distinct streams, decided on states read
    in one query; the ones a rule refuses append nothing, the others go together."""
    store = kernel_store(settings)
    for sid in ("c-1", "c-2", "c-3"):
        store.append(sid, 0, [OPEN], META)
    before = store.events.count_documents({})
    refused = run_together(
        store,
        [
            Command(Capped(), "c-1", 4, META),
            Command(Capped(), "c-2", 11, META),  # refused
            Command(Capped(), "c-3", 6, META),
            Command(Capped(), "c-4", 1, META),  # a stream with no events yet
        ],
    )
    assert [type(r).__name__ if r else None for r in refused] == [None, "DomainError", None, None]
    handler = CommandHandler(store, Counter())
    states = {sid: handler.state(sid) for sid in ("c-1", "c-2", "c-3", "c-4")}
    assert states == {"c-1": (4, 2), "c-2": (0, 1), "c-3": (6, 2), "c-4": (1, 1)}
    assert store.events.count_documents({}) == before + 3


def test_run_together_appends_nothing_when_a_stream_moved_since_it_was_read(settings, monkeypatch):
    store = kernel_store(settings)
    for sid in ("c-1", "c-2"):
        store.append(sid, 0, [OPEN], META)
    load_many = store.load_many

    def read_then_moved(streams):
        histories = load_many(streams)
        store.append("c-2", 1, Counter().decide(0, 1), META)  # someone else, meanwhile
        return histories

    monkeypatch.setattr(store, "load_many", read_then_moved)
    with pytest.raises(ConcurrencyError):
        run_together(
            store, [Command(Counter(), "c-1", 2, META), Command(Counter(), "c-2", 3, META)]
        )
    handler = CommandHandler(store, Counter())
    assert handler.state("c-1") == (0, 1), "nothing of the batch was appended"
    assert handler.state("c-2") == (1, 2)
