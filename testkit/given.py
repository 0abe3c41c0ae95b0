"""Given/when/then for deciders (Emmett's form), with no database and no Flask:

given(decider, [past events]).when(command).then([new events])
given(decider, [past events]).when(command).then_raises(Conflict, "overlap")
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from shared.domain import Decider, fold
from shared.events import NewEvent


class _When:
    def __init__(self, decider: Decider, history: list, command: Any):
        self.decider, self.history, self.command = decider, history, command

    def _run(self) -> list[NewEvent]:
        return self.decider.decide(fold(self.decider, self.history), self.command)

    def then(self, expected: Iterable[NewEvent]) -> list[NewEvent]:
        produced = self._run()
        expected = list(expected)
        got = [(e.type, dict(e.data)) for e in produced]
        want = [(e.type, dict(e.data)) for e in expected]
        assert got == want, f"\nexpected {want}\n     got {got}"
        return produced

    def then_types(self, *types: str) -> list[NewEvent]:
        produced = self._run()
        assert [e.type for e in produced] == list(types), [e.type for e in produced]
        return produced

    def then_raises(self, error: type[BaseException], match: str | None = None) -> BaseException:
        try:
            produced = self._run()
        except error as raised:
            if match is not None:
                assert match.lower() in str(raised).lower(), f"{match!r} not in {raised!r}"
            return raised
        raise AssertionError(f"expected {error.__name__}, got events {produced}")


class _Given:
    def __init__(self, decider: Decider, history: Iterable[Any]):
        self.decider, self.history = decider, list(history)

    def when(self, command: Any) -> _When:
        return _When(self.decider, self.history, command)


def given(decider: Decider, history: Iterable[Any] = ()) -> _Given:
    return _Given(decider, history)
