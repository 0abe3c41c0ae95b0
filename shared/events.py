"""The event envelope, the registry of event types and versions, and upcasters.

Every event type has one marshmallow schema per version (`@registry.event("SessionBooked", 1)`);
old versions are lifted by upcasters registered beside the schemas
(`@registry.upcaster("SessionBooked", from_version=1)`). An event whose type the registry does
not know is a loud error (`UnknownEventType`), never silently dropped.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError

from .schemas import Fallback, Plan, plan

if TYPE_CHECKING:  # for annotations only: shared.crypto imports this module
    from .crypto import FieldCipher


class UnknownEventType(LookupError):
    """An event type (or version) nobody registered: a contract was broken."""


class InvalidEventData(ValueError):
    def __init__(self, event_type: str, messages: Any):
        super().__init__(f"{event_type}: invalid data: {messages}")
        self.event_type = event_type
        self.messages = messages


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Actor:
    id: str
    role: str

    @classmethod
    def system(cls, name: str) -> Actor:
        return cls(id=name, role="system")


@dataclass(frozen=True)
class NewEvent:
    """What a decider returns: the fact, before the store gives it an envelope."""

    type: str
    data: Mapping[str, Any]
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class Event:
    """A recorded event: the envelope from architecture.md around validated `data`.
    `data` holds Python values (datetimes, dates) as the schema loads them."""

    event_id: str
    type: str
    schema_version: int
    stream_id: str
    stream_version: int
    occurred_at: datetime
    recorded_at: datetime
    actor: Actor
    correlation_id: str
    causation_id: str | None
    data: Mapping[str, Any]
    position: int | None = None  # global order within the service's store

    def with_data(self, data: Mapping[str, Any]) -> Event:
        return replace(self, data=data)


@dataclass
class _TypeInfo:
    schemas: dict[int, type[Schema]] = field(default_factory=dict)
    upcasters: dict[int, Callable[[dict], dict]] = field(default_factory=dict)
    # one instance per version, made on first use: building a marshmallow schema for every
    # event was an eighth of a rebuild (issue 14's profile); load and dump keep no state on it
    instances: dict[int, Schema] = field(default_factory=dict)
    current: int = 0  # the newest version registered (asked for every event decoded)
    # each version's plan (shared.schemas), made on first use; None: marshmallow alone
    plans: dict[int, Plan | None] = field(default_factory=dict)

    def schema(self, version: int) -> Schema:
        found = self.instances.get(version)
        if found is None:
            found = self.instances[version] = self.schemas[version]()
        return found

    def plan(self, version: int) -> Plan | None:
        if version not in self.plans:
            self.plans[version] = plan(self.schema(version))
        return self.plans[version]


class EventRegistry:
    def __init__(self) -> None:
        self._types: dict[str, _TypeInfo] = {}

    # -- registration -------------------------------------------------------------------
    def event(self, type_: str, version: int = 1) -> Callable[[type[Schema]], type[Schema]]:
        """Class decorator registering a marshmallow schema for `type_` at `version`."""

        def register(schema_cls: type[Schema]) -> type[Schema]:
            info = self._types.setdefault(type_, _TypeInfo())
            existing = info.schemas.get(version)
            if existing is not None and existing.__qualname__ != schema_cls.__qualname__:
                raise ValueError(f"{type_} v{version} registered twice")
            info.schemas[version] = schema_cls
            info.current = max(info.schemas)
            info.instances.pop(version, None)
            info.plans.pop(version, None)
            return schema_cls

        return register

    def upcaster(
        self, type_: str, from_version: int
    ) -> Callable[[Callable[[dict], dict]], Callable[[dict], dict]]:
        """Decorator for `fn(data_v_n) -> data_v_n+1`."""

        def register(fn: Callable[[dict], dict]) -> Callable[[dict], dict]:
            self._types.setdefault(type_, _TypeInfo()).upcasters[from_version] = fn
            return fn

        return register

    # -- queries --------------------------------------------------------------------------
    def knows(self, type_: str) -> bool:
        return type_ in self._types and bool(self._types[type_].schemas)

    def types(self) -> list[str]:
        return sorted(t for t, i in self._types.items() if i.schemas)

    def current_version(self, type_: str) -> int:
        return self._info(type_).current

    def _info(self, type_: str) -> _TypeInfo:
        info = self._types.get(type_)
        if info is None or not info.schemas:
            raise UnknownEventType(f"unknown event type {type_!r}")
        return info

    def _known(self, type_: str, version: int) -> _TypeInfo:
        info = self._info(type_)
        if version not in info.schemas and version not in info.upcasters:
            raise UnknownEventType(f"unknown version {version} of {type_!r}")
        return info

    # -- (de)serialisation ----------------------------------------------------------------
    def serialise(self, type_: str, data: Mapping[str, Any]) -> tuple[int, dict]:
        """Validate new event data strictly (unknown fields rejected) and return the
        JSON-safe form at the current version."""
        info = self._info(type_)
        planned = info.plan(info.current)
        # as below, where the plan answers as marshmallow would (an undeclared key is
        # marshmallow's to report: `_jsonable`)
        if planned is not None and planned.declares(data):
            try:
                loaded = planned.load(planned.dump(data), strict=True)
                return info.current, planned.dump(loaded)
            except Fallback:
                pass  # marshmallow decides, and says what is wrong
        schema = info.schema(info.current)
        try:
            loaded = schema.load(_jsonable(schema, data), unknown=RAISE)
        except ValidationError as err:
            raise InvalidEventData(type_, err.messages) from err
        return info.current, schema.dump(loaded)

    def deserialise(
        self,
        type_: str,
        version: int,
        payload: Mapping[str, Any],
        cipher: FieldCipher | None = None,
    ) -> tuple[int, dict]:
        """Open sealed personal fields (if a cipher is given), upcast stored/wire data to the
        current version and load it. Unknown fields are ignored (a newer producer may add
        some); an unknown type or version raises. Fields whose key was destroyed load as
        placeholders (shared.crypto)."""
        info = self._known(type_, version)
        data, shredded = cipher.open(dict(payload)) if cipher is not None else (dict(payload), [])
        while version < info.current:
            step = info.upcasters.get(version)
            if step is None:
                raise UnknownEventType(f"no upcaster for {type_!r} v{version}")
            data = step(data)
            version += 1
        if version > info.current:
            raise UnknownEventType(
                f"{type_!r} v{version} is newer than this code (v{info.current})"
            )
        if not shredded:  # the plain cases without marshmallow's machinery (shared.schemas)
            planned = info.plan(version)
            if planned is not None:
                try:
                    return version, planned.load(data)
                except Fallback:
                    pass  # marshmallow decides, and says what is wrong
        schema = info.schema(version)
        partial = None
        if shredded:
            from .crypto import placeholders

            data, missing = placeholders(schema, data)
            partial = tuple(missing) or None
        try:
            return version, schema.load(data, unknown=EXCLUDE, partial=partial)
        except ValidationError as err:
            raise InvalidEventData(type_, err.messages) from err

    def dump(self, type_: str, data: Mapping[str, Any]) -> dict:
        info = self._info(type_)
        planned = info.plan(info.current)
        if planned is not None:
            try:
                return planned.dump(data)
            except Fallback:
                pass
        return info.schema(info.current).dump(data)

    # -- wire format --------------------------------------------------------------------
    def to_message(self, event: Event) -> bytes:
        body = {
            "event_id": event.event_id,
            "type": event.type,
            "schema_version": event.schema_version,
            "stream_id": event.stream_id,
            "stream_version": event.stream_version,
            "occurred_at": event.occurred_at.isoformat(),
            "recorded_at": event.recorded_at.isoformat(),
            "actor": {"id": event.actor.id, "role": event.actor.role},
            "correlation_id": event.correlation_id,
            "causation_id": event.causation_id,
            "position": event.position,
            "data": self.dump(event.type, event.data),
        }
        return json.dumps(body, separators=(",", ":")).encode()

    def from_message(
        self,
        raw: bytes | str | Mapping[str, Any],
        cipher: FieldCipher | None = None,
        *,
        decoded: frozenset[str] | None = None,
    ) -> Event:
        """The event a message carries. `decoded`: the types whose data is wanted (None:
        every type); another type's comes with empty data, neither opened nor loaded, its
        type and version still checked: a consumer reading a busy topic for a few of its
        types spent most of its decoding on events it had no handler for (issue 14)."""
        body = json.loads(raw) if isinstance(raw, (bytes, str)) else dict(raw)
        type_, version = body["type"], int(body["schema_version"])
        if decoded is None or type_ in decoded:
            version, data = self.deserialise(type_, version, body["data"], cipher)
        else:
            self._known(type_, version)
            data = {}
        return Event(
            event_id=body["event_id"],
            type=body["type"],
            schema_version=version,
            stream_id=body["stream_id"],
            stream_version=int(body["stream_version"]),
            occurred_at=_parse_dt(body["occurred_at"]),
            recorded_at=_parse_dt(body["recorded_at"]),
            actor=Actor(**body["actor"]),
            correlation_id=body["correlation_id"],
            causation_id=body.get("causation_id"),
            data=data,
            position=body.get("position"),
        )


def _parse_dt(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _jsonable(schema: Schema, data: Mapping[str, Any]) -> dict:
    """Deciders hand over Python values; dump them first so `load` validates one form."""
    try:
        dumped = schema.dump(data)
    except (AttributeError, TypeError, ValueError):  # already in wire form (strings)
        return dict(data)
    # keep undeclared keys so that `load(unknown=RAISE)` reports them
    return {**{k: v for k, v in data.items() if k not in dumped}, **dumped}


def new_id() -> str:
    return str(uuid.uuid4())


registry = EventRegistry()
"""The process-wide registry; `shared.contracts` modules register every event type."""
