"""CommandHandler against the real local MongoDB-wire server: `commit` appends what was
decided on a state and returns that state with the events applied, or None when the stream
moved on meanwhile (the caller decides again), writing nothing."""

from shared.application import CommandHandler
from shared.events import NewEvent
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
