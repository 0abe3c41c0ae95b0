"""The envelope, the registry and upcasters (pure: no broker, no store)."""

import json

import pytest

from shared.events import InvalidEventData, UnknownEventType
from testkit.kernel import reg


def test_new_data_is_validated_strictly():
    with pytest.raises(InvalidEventData) as err:
        reg.serialise("CounterIncremented", {"by": 1, "reason": "x", "surprise": True})
    assert "surprise" in str(err.value.messages)
    with pytest.raises(InvalidEventData) as err:
        reg.serialise("CounterIncremented", {"by": "three", "reason": "x"})
    assert "by" in err.value.messages


def test_unknown_type_is_a_loud_error():
    with pytest.raises(UnknownEventType):
        reg.serialise("CounterExploded", {})
    with pytest.raises(UnknownEventType):
        reg.deserialise("CounterExploded", 1, {})


def test_old_version_is_upcast_to_current():
    version, data = reg.deserialise("CounterIncremented", 1, {"by": 2})
    assert (version, data) == (2, {"by": 2, "reason": "unspecified"})


def test_newer_version_than_code_is_refused():
    with pytest.raises(UnknownEventType):
        reg.deserialise("CounterIncremented", 3, {"by": 2, "reason": "x"})


def _message(type_: str, version: int, data: dict) -> str:
    return json.dumps(
        {
            "event_id": "e1",
            "type": type_,
            "schema_version": version,
            "stream_id": "s1",
            "stream_version": 1,
            "occurred_at": "2026-11-26T10:00:00+00:00",
            "recorded_at": "2026-11-26T10:00:01+00:00",
            "actor": {"id": "u", "role": "admin"},
            "correlation_id": "c",
            "causation_id": None,
            "data": data,
            "position": 7,
        }
    )


def test_consumers_ignore_unknown_fields():
    event = reg.from_message(_message("CounterOpened", 1, {"name": "n", "added_later": 1}))
    assert event.data == {"name": "n"}
    assert event.occurred_at.tzinfo is not None


def test_a_type_not_wanted_comes_with_its_envelope_and_no_data():
    """A consumer with no handler for a type does not decode its data (issue 14): invalid data
    of such a type is not even looked at, the envelope is all there, and an unknown type or a
    version newer than the code is still refused."""
    wanted = frozenset({"CounterOpened"})
    event = reg.from_message(_message("CounterIncremented", 2, {"by": "three"}), decoded=wanted)
    assert (event.type, event.event_id, event.position, event.data) == (
        "CounterIncremented",
        "e1",
        7,
        {},
    )
    with pytest.raises(InvalidEventData):  # wanted, it is decoded and checked as ever
        reg.from_message(_message("CounterIncremented", 2, {"by": "three"}))
    opened = reg.from_message(_message("CounterOpened", 1, {"name": "n"}), decoded=wanted)
    assert opened.data == {"name": "n"}
    with pytest.raises(UnknownEventType):
        reg.from_message(_message("CounterExploded", 1, {}), decoded=wanted)
    with pytest.raises(UnknownEventType):
        reg.from_message(_message("CounterIncremented", 3, {}), decoded=wanted)


def test_a_projection_decodes_the_types_it_handles_or_all_with_a_handle_of_its_own():
    from shared.projections import Projection

    class Handlers(Projection):
        name = "handlers"

        def on_CounterOpened(self, event, view): ...

        def on_CounterIncremented(self, event, view): ...

    class Everything(Handlers):
        def handle(self, event, view): ...

    assert Handlers().decoded_types() == {"CounterOpened", "CounterIncremented"}
    assert Everything().decoded_types() is None
