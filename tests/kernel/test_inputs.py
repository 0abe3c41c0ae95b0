"""The kernel's input fields (shared/inputs.py), without I/O: the one date range every API
keeps, text without control or direction characters, safe ids, strict integers."""

from datetime import UTC, datetime

import pytest
from marshmallow import Schema, ValidationError

from shared.inputs import Moment, day, free_text, instant, line_text, safe_id, strict_integer


class Probe(Schema):
    at = instant()
    on = day()
    moment = Moment()
    name = line_text(100)
    note = free_text(1000)
    id = safe_id()
    count = strict_integer()


def errors(**data) -> dict:
    try:
        Probe().load(data)
    except ValidationError as err:
        return err.messages
    return {}


@pytest.mark.parametrize(
    "field, value",
    [
        ("at", "9999-12-31T23:59:59-01:00"),
        ("at", "0001-01-01T00:00:00+01:00"),
        ("at", "1999-12-31T23:59:59Z"),
        ("at", "2100-01-01T00:00:00Z"),
        ("on", "0001-01-01"),
        ("on", "9999-12-31"),
        ("moment", "0001-01-01T00:00:00+01:00"),
        ("moment", "9999-12-31"),
        ("moment", "1970-01-01T00:00"),
    ],
)
def test_a_time_outside_2000_2099_is_refused_naming_the_range(field, value):
    assert errors(**{field: value}) == {field: ["must be between 2000-01-01 and 2099-12-31"]}


def test_the_edges_of_the_range_are_accepted_and_a_moment_is_utc():
    loaded = Probe().load(
        {"at": "2099-12-31T23:59:59-01:00", "on": "2000-01-01", "moment": "2099-12-31"}
    )
    assert loaded["at"].tzinfo is not None
    assert loaded["moment"].tzinfo == UTC and loaded["moment"] > datetime(
        2099, 12, 31, 23, tzinfo=UTC
    )


def test_the_range_is_stated_in_the_openapi_description():
    for field in ("at", "on", "moment"):
        assert "between 2000-01-01 and 2099-12-31" in Probe().fields[field].metadata["description"]


@pytest.mark.parametrize(
    "value", ["a\x00b", "Emma\u202e", "\u2066x", "zero\u200bwidth", "bell\x07"]
)
def test_control_and_direction_characters_are_refused_in_text(value):
    assert set(errors(name=value, note=value)) == {"name", "note"}


def test_ordinary_text_in_any_script_passes_and_notes_keep_line_breaks():
    assert errors(name="Zoë O’Brien-Müller", note="Line one\r\nLine two\tindented") == {}
    assert (
        errors(name="محمد", note="می\u200cخواهم") == {}
    )  # Persian needs the zero-width non-joiner
    assert "name" in errors(name="two\nlines")


@pytest.mark.parametrize("value", ["../x", "a/b", " ", "", ".hidden", "x" * 65, "a b"])
def test_unsafe_ids_are_refused(value):
    assert "id" in errors(id=value)


def test_safe_ids_pass_and_counts_must_be_whole_numbers():
    assert errors(id="sarah-okafor", count=16) == {}
    assert errors(id="3f2b6c1e-9d4a-4b8e-8f7a-1c2d3e4f5a6b") == {}
    assert "count" in errors(count=1.5) and "count" in errors(count="16")
