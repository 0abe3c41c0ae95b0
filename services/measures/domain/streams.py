"""Stream names and deterministic ids of the measures service, and the one way its
deciders fold events: a table {event type: function}."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

_IDS = uuid.UUID("5f0c6a52-7d0e-4c0c-9b7e-2a61f7f3c0de")


def request_id_for(session_id: str) -> str:
    """Deterministic: a redelivered SessionBooked maps to the same request."""
    return str(uuid.uuid5(_IDS, f"session:{session_id}"))


def alert_id_for(response_id: str, instrument: str, item: int) -> str:
    return str(uuid.uuid5(_IDS, f"alert:{response_id}:{instrument}:{item}"))


def request_stream(request_id: str) -> str:
    return f"questionnaire-request-{request_id}"


def response_stream(response_id: str) -> str:
    return f"questionnaire-response-{response_id}"


def alert_stream(alert_id: str) -> str:
    return f"risk-alert-{alert_id}"


def outcome_stream(episode_id: str) -> str:
    return f"outcome-{episode_id}"


def instruments_stream(client_id: str) -> str:
    return f"client-instruments-{client_id}"


Evolve = Mapping[str, Callable[[Any, Any], Any]]


def evolve_by(table: Evolve, state: Any, event: Any) -> Any:
    """The state after `event`: the table's function for its type, or the same state for a
    type the stream's decider does not follow."""
    step = table.get(event.type)
    return state if step is None else step(state, event)
