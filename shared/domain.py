"""Domain building blocks: the decider shape and the errors the API maps to HTTP.
No Flask and no pymongo here."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from .events import NewEvent


class DomainError(Exception):
    """A rule of the domain refused the command (HTTP 409 unless a subclass says otherwise)."""

    status = 409
    title = "Conflict"

    def __init__(self, detail: str, *, field: str | None = None, code: str | None = None):
        super().__init__(detail)
        self.detail, self.field, self.code = detail, field, code


class Conflict(DomainError):
    pass


class NotFound(DomainError):
    status, title = 404, "Not Found"


class Invalid(DomainError):
    """Input that is well-formed but breaks a rule about one field (HTTP 422)."""

    status, title = 422, "Unprocessable Entity"


class Decider(Protocol):
    """Emmett's decider: `decide(state, command) -> events`, `evolve(state, event) -> state`."""

    def initial_state(self) -> Any: ...

    def evolve(self, state: Any, event: Any) -> Any: ...

    def decide(self, state: Any, command: Any) -> list[NewEvent]: ...


def fold(decider: Decider, events: Iterable[Any]) -> Any:
    state = decider.initial_state()
    for event in events:
        state = decider.evolve(state, event)
    return state
