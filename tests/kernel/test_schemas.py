"""An event schema's plan (shared.schemas) loads and dumps exactly as marshmallow does, or
leaves the value to marshmallow: checked on every registered schema with generated values,
right and wrong, and through the registry."""

from __future__ import annotations

import datetime as dt
import random
import string

import pytest
from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate

from shared import contracts  # noqa: F401  (registers every event schema)
from shared.events import InvalidEventData, _jsonable, registry
from shared.schemas import Fallback, plan

ZONES = [
    dt.UTC,
    dt.timezone(dt.timedelta(hours=5, minutes=30)),
    dt.timezone(-dt.timedelta(hours=8)),
]


def registered() -> list[tuple[str, int, Schema]]:
    found = []
    for type_ in registry.types():
        info = registry._info(type_)
        for version in info.schemas:
            found.append((type_, version, info.schema(version)))
    return found


SCHEMAS = registered()


def same(a, b) -> bool:
    """Equal, of the same types, dicts with their keys in the same order, datetimes with the
    same offset and form."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dt.datetime):
        return a == b and a.utcoffset() == b.utcoffset() and a.isoformat() == b.isoformat()
    return a == b


def _choices(field) -> list | None:
    for v in field.validators:
        if isinstance(v, validate.OneOf):
            return list(v.choices)
    return None


def _range(field) -> tuple[int, int]:
    for v in field.validators:
        if isinstance(v, validate.Range):
            return (v.min if v.min is not None else -50, v.max if v.max is not None else 50)
    return (-10_000, 10_000)


def _moment(rng: random.Random) -> dt.datetime:
    return dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(
        seconds=rng.randrange(-(10**8), 10**8), microseconds=rng.choice([0, rng.randrange(10**6)])
    )


def good(field, rng: random.Random):
    """A value marshmallow loads for `field`, in a form the plan must take too."""
    kind = type(field)
    if kind is fields.String:
        choices = _choices(field)
        if choices:
            return rng.choice(choices)
        if any(isinstance(v, validate.Regexp) for v in field.validators):
            return rng.choice(["PHQ-9", "GAD-7", "CORE-10", "WSAS", "X" * 21])
        return "".join(rng.choice(string.printable + "éß✓") for _ in range(rng.randrange(12)))
    if kind is fields.Integer:
        return rng.randint(*_range(field))
    if kind is fields.Boolean:
        return rng.choice([True, False])
    if kind is fields.Float:
        return rng.uniform(-1e6, 1e6)
    if kind is fields.Date:
        day = _moment(rng).date()
        return rng.choice([day.isoformat(), day])
    if kind is fields.AwareDateTime:
        moment = _moment(rng).astimezone(rng.choice(ZONES))
        return rng.choice([moment.isoformat(), moment, moment.isoformat().replace("+00:00", "Z")])
    if kind is fields.List:
        return [good_or_none(field.inner, rng) for _ in range(rng.randrange(4))]
    if kind is fields.Nested:
        return payload(field.schema, rng, wrong=0.0)
    raise AssertionError(f"no generator for {kind}")


def good_or_none(field, rng):
    if field.allow_none and rng.random() < 0.2:
        return None
    return good(field, rng)


def bad(field, rng: random.Random):
    """A value of another kind, or a near miss of the right kind."""
    options = [
        rng.randint(-5, 5),
        True,
        False,
        1.5,
        float("nan"),
        "",
        "not a value",
        "2026-13-40",
        "2026-01-01T10:00:00",  # naive
        "2026-01-01",
        dt.datetime(2026, 1, 1, 10, 0),  # naive
        dt.datetime(2026, 1, 1, 10, 0, tzinfo=dt.UTC),
        dt.date(2026, 1, 1),
        b"bytes",
        ["x"],
        [None],
        {"unexpected": 1},
        (1, 2),
        10**30,
    ]
    kind = type(field)
    if kind is fields.Nested:
        nested = payload(field.schema, rng, wrong=0.0)
        nested["unknown_key"] = 1  # a nested schema loads with RAISE
        options += [nested, payload(field.schema, rng, wrong=0.5), [nested]]
    if kind is fields.List:
        options += [[bad(field.inner, rng)], [good(field.inner, rng), None], "abc"]
    if _choices(field):
        options.append(_choices(field)[0].upper() + "!")
    if kind is fields.Integer:
        low, high = _range(field)
        options += [low - 1, high + 1, str(low)]
    return rng.choice(options)


def payload(schema: Schema, rng: random.Random, wrong: float) -> dict:
    """A dict for `schema`: each field present or not, None, right or (with `wrong`) wrong."""
    data = {}
    for name, field in schema.load_fields.items():
        roll = rng.random()
        if roll < wrong / 3:
            continue  # missing
        if roll < wrong / 2:
            data[name] = None
        elif roll < wrong:
            data[name] = bad(field, rng)
        elif field.required or rng.random() < 0.8:
            data[name] = good_or_none(field, rng)
    return data


def load_both(schema, data):
    try:
        ours = plan(schema).load(data)
    except Fallback:
        ours = Fallback
    try:
        theirs = schema.load(data, unknown=EXCLUDE)
    except ValidationError:
        theirs = ValidationError
    return ours, theirs


def dump_both(schema, obj):
    try:
        ours = plan(schema).dump(obj)
    except Fallback:
        ours = Fallback
    return ours, schema.dump(obj)


def test_every_registered_event_schema_has_a_plan():
    assert len(SCHEMAS) > 50
    assert [(t, v) for t, v, s in SCHEMAS if plan(s) is None] == []


@pytest.mark.parametrize("type_,version,schema", SCHEMAS, ids=[f"{t}v{v}" for t, v, _ in SCHEMAS])
def test_a_plan_loads_and_dumps_as_marshmallow_or_leaves_it_to_marshmallow(type_, version, schema):
    rng = random.Random(f"{type_}:{version}")
    planned = taken = 0
    for i in range(150):
        right = i % 3 == 0
        data = payload(schema, rng, wrong=0.0 if right else 0.4)
        if not right and rng.random() < 0.5:
            data["someone_elses_field"] = "ignored"  # unknown keys are excluded at the top
        ours, theirs = load_both(schema, data)
        if ours is not Fallback:
            planned += 1
            assert theirs is not ValidationError, (data, ours)
            assert same(ours, theirs), (data, ours, theirs)
        if right and theirs is not ValidationError:
            assert ours is not Fallback, data  # what was written loads through the plan
            taken += 1
        if theirs is not ValidationError:
            dumped, expected = dump_both(schema, theirs)
            assert dumped is not Fallback, theirs
            assert same(dumped, expected), (theirs, dumped, expected)
    assert taken >= 20 and planned >= taken  # neither check above went unexercised


@pytest.mark.parametrize("type_,version,schema", SCHEMAS, ids=[f"{t}v{v}" for t, v, _ in SCHEMAS])
def test_a_plan_dumps_values_of_another_type_as_marshmallow_or_not_at_all(type_, version, schema):
    rng = random.Random(f"dump:{type_}:{version}")
    for _ in range(60):
        obj = payload(schema, rng, wrong=0.4)
        ours, theirs = None, None
        try:
            ours = plan(schema).dump(obj)
        except Fallback:
            continue
        try:
            theirs = schema.dump(obj)
        except Exception as err:  # marshmallow could not dump it: the plan must not have
            raise AssertionError((obj, ours, err)) from err
        assert same(ours, theirs), (obj, ours, theirs)


@pytest.mark.parametrize("type_,version,schema", SCHEMAS, ids=[f"{t}v{v}" for t, v, _ in SCHEMAS])
def test_a_strict_plan_refuses_unknown_keys_as_marshmallow_does(type_, version, schema):
    rng = random.Random(f"strict:{type_}:{version}")
    for i in range(60):
        data = payload(schema, rng, wrong=0.0 if i % 2 else 0.3)
        if i % 3 == 0:
            data["someone_elses_field"] = 1
        try:
            ours = plan(schema).load(data, strict=True)
        except Fallback:
            continue
        assert "someone_elses_field" not in data
        assert same(ours, schema.load(data, unknown=RAISE)), data


def marshmallow_serialise(type_: str, data) -> dict:
    """`EventRegistry.serialise` as it was, through marshmallow alone."""
    schema = registry._info(type_).schema(registry.current_version(type_))
    return schema.dump(schema.load(_jsonable(schema, data), unknown=RAISE))


@pytest.mark.parametrize("type_,version,schema", SCHEMAS, ids=[f"{t}v{v}" for t, v, _ in SCHEMAS])
def test_new_events_are_written_as_marshmallow_alone_writes_them(type_, version, schema):
    """What a decider hands over (Python values, wire strings, wrong values, keys the schema
    does not have): the registry writes what marshmallow alone wrote, and refuses what it
    refused with the same messages."""
    if version != registry.current_version(type_):
        pytest.skip("only the current version is written")
    rng = random.Random(f"write:{type_}")
    written = 0
    for i in range(90):
        data = payload(schema, rng, wrong=0.0 if i % 3 else 0.4)
        if i % 3 == 1:
            try:  # as a decider holds them: dates and datetimes, not strings
                data = schema.load(data, unknown=EXCLUDE)
            except ValidationError:
                pass
        if i % 5 == 0:
            data["not_in_the_schema"] = "x"
        try:
            expected = marshmallow_serialise(type_, data)
        except ValidationError as err:
            with pytest.raises(InvalidEventData) as raised:
                registry.serialise(type_, data)
            assert raised.value.messages == err.messages, data
            continue
        version_written, ours = registry.serialise(type_, data)
        assert version_written == version and same(ours, expected), (data, ours, expected)
        written += 1
    assert written >= 20


def test_the_registry_answers_as_marshmallow_does_through_its_plans():
    """A booking's data through the registry's load and dump, and the same through
    marshmallow: the same values; a wrong value still raises marshmallow's error."""
    info = registry._info("SessionBooked")
    schema = info.schema(info.current)
    rng = random.Random(7)
    for _ in range(50):
        data = payload(schema, rng, wrong=0.0)
        _, loaded = registry.deserialise("SessionBooked", info.current, data)
        assert same(loaded, schema.load(data, unknown=EXCLUDE))
        assert same(registry.dump("SessionBooked", loaded), schema.dump(loaded))
    broken = dict(payload(schema, rng, wrong=0.0), starts_at="2026-01-01T10:00:00")
    with pytest.raises(Exception) as raised:
        registry.deserialise("SessionBooked", info.current, broken)
    assert "starts_at" in str(raised.value)


def test_what_a_plan_does_not_know_is_not_planned():
    class Hooked(Schema):
        a = fields.String()

        from marshmallow import post_load

        @post_load
        def shout(self, data, **kwargs):
            return {k: v.upper() for k, v in data.items()}

    class Keyed(Schema):
        a = fields.String(data_key="b")

    class Emailed(Schema):
        a = fields.Email()

    class Named(Schema):
        items = fields.String()  # a dict's method name: marshmallow reads it off the dict

    for schema in (Hooked(), Keyed(), Emailed(), Named()):
        assert plan(schema) is None
