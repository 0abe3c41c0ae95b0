"""The events' marshmallow schemas, loaded and dumped by a plan read from each schema once.

Every consumer loads each event it handles with its schema (`EventRegistry.deserialise`),
every rebuild each event of a topic, and every relay dumps each event it publishes. Through
marshmallow a booking's load was 40 us and its dump 28 us, most of a message's decoding
(75 us) and a fifth of a rebuild's time (issue 14). A `Plan` is the same schema's fields, in
their order, with what marshmallow 4 does to each kind of value written out for the plain
cases: a `str` for a String, an `int` for an Integer, an ISO string for a date or an aware
datetime (`fromisoformat`, as marshmallow parses them), a list, a nested schema, None where
allowed, a missing field's default, and the field's validators run as marshmallow runs them.

Anything else, a value of another type, a failed validator, a missing required field, an
unknown key in a nested schema, raises `Fallback`, and the caller asks marshmallow, which
answers (or raises its `ValidationError`) as it always did: a plan returns a value only where
marshmallow's would be that value. A schema with hooks, options or fields the plan does not
know is not planned at all (`plan` returns None). A new event is written the same way
(`EventRegistry.serialise`: dumped, loaded refusing unknown keys, dumped; 133 -> 29 us for a
booking), so whatever marshmallow refuses is still refused, by marshmallow, in its words.
`tests/kernel/test_schemas.py` compares the two on every registered schema with generated
values, reading and writing."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from typing import Any

from marshmallow import Schema, fields, missing


class Fallback(Exception):
    """Not a plain case: marshmallow decides."""


class _Field:
    __slots__ = ("name", "load", "dump", "required", "allow_none", "default", "dump_default")

    def __init__(self, name: str, load: Callable, dump: Callable, field: fields.Field):
        self.name, self.load, self.dump = name, load, dump
        self.required, self.allow_none = field.required, field.allow_none
        self.default, self.dump_default = field.load_default, field.dump_default


class Plan:
    """A schema's `load(data, unknown=EXCLUDE)` and `dump(obj)` for the plain cases (module
    docstring). `strict`: unknown keys fall back (a nested schema loads with RAISE)."""

    def __init__(self, fields_: list[_Field], dumped: list[_Field], strict: bool):
        self._fields, self._dumped, self._strict = fields_, dumped, strict
        self._names = frozenset(f.name for f in fields_)

    def load(self, data: Any, *, strict: bool = False) -> dict:
        """`strict`: as marshmallow's `unknown=RAISE` (a key not in the schema falls back)."""
        if type(data) is not dict:
            raise Fallback
        if (strict or self._strict) and not self._names.issuperset(data):
            raise Fallback
        out = {}
        for f in self._fields:
            value = data.get(f.name, missing)
            if value is missing:
                if f.required:
                    raise Fallback
                default = f.default
                value = default() if callable(default) else default
                if value is not missing:
                    out[f.name] = value
            elif value is None:
                if not f.allow_none:
                    raise Fallback
                out[f.name] = None
            else:
                out[f.name] = f.load(value)
        return out

    def declares(self, keys: Any) -> bool:
        """Whether every one of `keys` is a field the schema loads."""
        return self._names.issuperset(keys)

    def dump(self, obj: Any) -> dict:
        if type(obj) is not dict:
            raise Fallback
        out = {}
        for f in self._dumped:
            value = obj.get(f.name, missing)
            if value is missing:
                default = f.dump_default
                value = default() if callable(default) else default
                if value is missing:
                    continue
            out[f.name] = None if value is None else f.dump(value)
        return out


def plan(schema: Schema) -> Plan | None:
    """The schema's plan, or None when it has anything a plan does not know."""
    return _plan(schema, strict=False)


def _plan(schema: Schema, strict: bool) -> Plan | None:
    if any(schema._hooks.values()) or schema.many or schema.partial:
        return None
    compiled: dict[str, _Field] = {}  # a field both loaded and dumped is read once
    for name, field in {**schema.load_fields, **schema.dump_fields}.items():
        one = _field(name, field)
        if one is None:
            return None
        compiled[name] = one
    loaded = [compiled[name] for name in schema.load_fields]
    dumped = [compiled[name] for name in schema.dump_fields]
    return Plan(loaded, dumped, strict)


def _field(name: str, field: fields.Field) -> _Field | None:
    # marshmallow reads a key missing from a dict as the dict's attribute of that name
    # (`utils.get_value`) and a dotted name as a path: neither is planned
    if field.data_key is not None or field.attribute is not None or "." in name:
        return None
    if hasattr(dict, name):
        return None
    kinds = _kinds(field)
    if kinds is None:
        return None
    load, dump = kinds
    if field.validators:
        load = _validated(load, tuple(field.validators))
    return _Field(name, load, dump, field)


def _kinds(field: fields.Field) -> tuple[Callable, Callable] | None:
    """(load one value that is not None, dump one value that is not None) for `field`: its
    class exactly (a subclass, an Email, may do more), with the options a plan follows."""
    if type(field) not in _KINDS:
        return None
    iso = (None, "iso", "iso8601")
    if isinstance(field, fields.String):
        return _string, _string
    if isinstance(field, fields.Integer) and not field.as_string:
        return _integer, _integer
    if isinstance(field, fields.Boolean) and True in field.truthy and False in field.falsy:
        return _boolean, _boolean
    if isinstance(field, fields.Float) and not field.as_string and field.allow_nan is not True:
        return _float, _float
    if isinstance(field, fields.AwareDateTime) and field.format in iso:
        return _aware(field.default_timezone), _datetime_dump
    if isinstance(field, fields.Date) and field.format in iso:
        return _date, _date_dump
    if isinstance(field, fields.List):
        return _list(field.inner)
    if isinstance(field, fields.Nested):
        return _nested(field)
    return None


_KINDS = (
    fields.String,
    fields.Integer,
    fields.Boolean,
    fields.Float,
    fields.Date,
    fields.AwareDateTime,
    fields.List,
    fields.Nested,
)


def _as_it_is(kind: type) -> Callable:
    """A value of exactly `kind`, unchanged (marshmallow's answer for a str, an int, a bool)."""

    def same(value):
        if type(value) is not kind:
            raise Fallback
        return value

    return same


_string, _integer, _boolean = _as_it_is(str), _as_it_is(int), _as_it_is(bool)


def _float(value):
    if type(value) is not float or not math.isfinite(value):
        raise Fallback
    return value


def _parsed(kind: Any, value: Any) -> Any:
    """An ISO string as marshmallow 4 parses it (`fromisoformat`), or a `kind` as it is."""
    if type(value) is str:
        try:
            return kind.fromisoformat(value)
        except ValueError:
            raise Fallback from None
    if type(value) is not kind:
        raise Fallback
    return value


def _date(value):
    return _parsed(dt.date, value)


def _aware(default_timezone):
    def load(value):
        value = _parsed(dt.datetime, value)
        zone = value.tzinfo
        if zone is None or zone.utcoffset(value) is None:
            if default_timezone is None:
                raise Fallback
            return value.replace(tzinfo=default_timezone)
        return value

    return load


def _iso(kind: Any) -> Callable:
    """A `kind` (a date, a datetime) dumped as marshmallow's "iso" format does."""

    def dump(value: Any) -> str:
        if type(value) is not kind:
            raise Fallback
        return value.isoformat()

    return dump


_date_dump, _datetime_dump = _iso(dt.date), _iso(dt.datetime)


def _list(inner: fields.Field) -> tuple[Callable, Callable] | None:
    compiled = _field("", inner)
    if compiled is None or inner.required or inner.load_default is not missing:
        return None
    one, dump_one, allow_none = compiled.load, compiled.dump, inner.allow_none

    def load(value):
        if type(value) is not list:
            raise Fallback
        out: list = []
        for each in value:
            if each is None:
                if not allow_none:
                    raise Fallback
                out.append(None)
            else:
                out.append(one(each))
        return out

    def dump(value):
        if type(value) is not list:
            raise Fallback
        return [None if each is None else dump_one(each) for each in value]

    return load, dump


def _nested(field: fields.Nested) -> tuple[Callable, Callable] | None:
    if field.many or field.only or field.exclude or field.unknown is not None:
        return None
    schema = field.schema
    if schema.unknown != "raise":
        return None
    nested = _plan(schema, strict=True)
    if nested is None:
        return None
    return nested.load, nested.dump


def _validated(load: Callable, validators: tuple) -> Callable:
    """`load`, then each validator as marshmallow calls them; a refusal is marshmallow's."""

    def checked(value):
        out = load(value)
        for validator in validators:
            try:
                refused = validator(out) is False
            except Exception:
                raise Fallback from None
            if refused:
                raise Fallback
        return out

    return checked
