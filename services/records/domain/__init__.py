"""The client record as a decider: `decide(state, command) -> [NewEvent]` and
`evolve(state, event) -> state`. Pure: no Flask, no pymongo. One stream per client
(stream id = client id); every change is an event, so folding the events recorded up to a
moment gives the record as it stood then.

- `commands`: what a user asks for (frozen dataclasses, named after the intent)
- `state`: the record and `evolve`, one function per event type (shared/contracts/records.py)
- `decisions`: `decide`, one function per command
- `rules`, `retention`: the clinical and legal rules, with their sources
"""

from __future__ import annotations

from shared.events import NewEvent

from .decisions import decide
from .state import RECORD_EVENT_TYPES, ClientState, evolve

__all__ = ["RECORD_EVENT_TYPES", "ClientRecord", "ClientState", "record"]


class ClientRecord:
    """The decider (shared.domain.Decider) of one client's record."""

    def initial_state(self) -> ClientState:
        return ClientState()

    def evolve(self, state: ClientState, event) -> ClientState:
        return evolve(state, event)

    def decide(self, state: ClientState, command) -> list[NewEvent]:
        return decide(state, command)


record = ClientRecord()
