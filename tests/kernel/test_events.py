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


def test_consumers_ignore_unknown_fields():
    message = json.dumps(
        {
            "event_id": "e1",
            "type": "CounterOpened",
            "schema_version": 1,
            "stream_id": "s1",
            "stream_version": 1,
            "occurred_at": "2026-11-26T10:00:00+00:00",
            "recorded_at": "2026-11-26T10:00:01+00:00",
            "actor": {"id": "u", "role": "admin"},
            "correlation_id": "c",
            "causation_id": None,
            "data": {"name": "n", "added_later": 1},
        }
    )
    event = reg.from_message(message)
    assert event.data == {"name": "n"}
    assert event.occurred_at.tzinfo is not None
