"""The marshmallow fields every service's API uses for the inputs that people and attackers
type: dates and times inside one stated range, free text and names without control or
direction-changing characters, and ids of a safe shape.

Why a range for every date: a time near year 1 or 9999 with a UTC offset cannot be turned
into UTC (OverflowError) and a week either side of it leaves the calendar, so one such value
once stored broke every page that showed it (issue 15). The practice's diary has always
used 2000-2099; every date and time any API accepts now lies in the same range.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from marshmallow import ValidationError, fields, validate

EARLIEST, LATEST = date(2000, 1, 1), date(2099, 12, 31)
RANGE_TEXT = f"between {EARLIEST.isoformat()} and {LATEST.isoformat()}"
PRACTICE_TZ = "Europe/London"


def in_date_range(value: date | datetime) -> None:
    """The date as written (its own offset, before any conversion to UTC) must be in range."""
    day = value.date() if isinstance(value, datetime) else value
    if not EARLIEST <= day <= LATEST:
        raise ValidationError(f"must be {RANGE_TEXT}")


def within_range(value: date | datetime) -> bool:
    """For data already stored (events written before the range existed): True when the
    value can be shown, converted and stored like any other time."""
    try:
        in_date_range(value)
    except ValidationError:
        return False
    return True


def _described(kwargs: dict, what: str) -> dict:
    metadata = dict(kwargs.pop("metadata", None) or {})
    before = metadata.get("description")
    metadata["description"] = f"{before + '. ' if before else ''}{what} {RANGE_TEXT}."
    return {**kwargs, "metadata": metadata}


def _validators(kwargs: dict) -> list:
    given = kwargs.pop("validate", None)
    extra = [] if given is None else list(given) if isinstance(given, (list, tuple)) else [given]
    return [in_date_range, *extra]


def instant(**kwargs: Any) -> fields.AwareDateTime:
    """An ISO datetime with its UTC offset (a naive time is ambiguous across clock changes)."""
    kwargs = _described(kwargs, "An ISO datetime with offset,")
    return fields.AwareDateTime(default_timezone=None, validate=_validators(kwargs), **kwargs)


def day(**kwargs: Any) -> fields.Date:
    """An ISO date."""
    kwargs = _described(kwargs, "An ISO date,")
    return fields.Date(validate=_validators(kwargs), **kwargs)


class Moment(fields.Field[datetime]):
    """An ISO date or datetime. A date means the end of that day and a datetime without an
    offset is read as practice time (Europe/London): what staff mean when they type one.
    Loaded as an aware UTC datetime; the range is checked before the conversion. OpenAPI
    documents it as a string (shared/web.py registers it with flask-smorest)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            **_described(kwargs, "An ISO date or datetime (without an offset: practice time),")
        )

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> datetime:
        if not isinstance(value, str):
            raise ValidationError("expected an ISO date or datetime")
        tz = ZoneInfo(PRACTICE_TZ)
        try:
            if len(value) == 10:
                moment = datetime.combine(date.fromisoformat(value), time.max, tzinfo=tz)
            else:
                moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValidationError(
                "not an ISO date (2026-03-02) or datetime (2026-03-02T10:00Z)"
            ) from None
        in_date_range(moment)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=tz)
        return moment.astimezone(UTC)

    def _serialize(self, value, attr, obj, **kwargs):
        return value.isoformat() if value is not None else None


# -- text ---------------------------------------------------------------------------------
# Unicode categories refused in text: Cc control (NUL, ESC...; tab, CR and LF are allowed in
# longer text), Cf format (the bidi overrides U+202A-202E and isolates U+2066-2069 that make
# "exe.txt" read as "txt.exe", zero-width characters), Co private use, Cs surrogates, Cn unassigned.
_REFUSED = {"Cc", "Cf", "Co", "Cs", "Cn"}
_LINE_BREAKS = {"\t", "\n", "\r"}
# zero-width (non-)joiners are format characters that Persian and Indic scripts (and emoji
# sequences) need; they change no direction
_JOINERS = {"\u200c", "\u200d"}


def no_control(multiline: bool = True) -> Callable[[str], None]:
    """The validator alone, for text that may be blank."""
    return _clean(multiline)


def _clean(multiline: bool) -> Callable[[str], None]:
    def check(value: str) -> None:
        for ch in value:
            if (multiline and ch in _LINE_BREAKS) or ch in _JOINERS:
                continue
            if unicodedata.category(ch) in _REFUSED:
                raise ValidationError(
                    "must not contain control or invisible formatting characters "
                    f"(found U+{ord(ch):04X})"
                )

    return check


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("must not be blank")


def free_text(max_length: int = 10_000, **kwargs: Any) -> fields.String:
    """Text a person writes (a note, a reason): line breaks allowed, control and direction
    characters refused, not blank."""
    return fields.String(
        validate=[_not_blank, validate.Length(max=max_length), _clean(True)], **kwargs
    )


def line_text(max_length: int = 200, **kwargs: Any) -> fields.String:
    """One line (a name, a practice): no line breaks either."""
    return fields.String(
        validate=[_not_blank, validate.Length(max=max_length), _clean(False)], **kwargs
    )


# -- ids ----------------------------------------------------------------------------------
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
_ID = validate.Regexp(
    ID_PATTERN, error="must be 1 to 64 letters, digits or _ . : - (starting with a letter or digit)"
)


def safe_id(**kwargs: Any) -> fields.String:
    """An id that is safe in a URL path, a file name and a log line: no slashes, no '..'
    at the start, no spaces."""
    metadata = {"pattern": ID_PATTERN, **(kwargs.pop("metadata", None) or {})}
    return fields.String(validate=_ID, metadata=metadata, **kwargs)


def strict_integer(**kwargs: Any) -> fields.Integer:
    """An integer that is one: 1.5 or "2" refused rather than truncated or coerced."""
    return fields.Integer(strict=True, **kwargs)


class Registered(validate.OneOf):
    """One of a registry's keys as they are when asked (the dict a service states its
    instruments or message kinds in, once): validation and the OpenAPI enum both read the
    registry then, so an entry added to it needs no schema change."""

    def __init__(self, registry: Mapping[str, Any], *, error: str | None = None):
        self.registry = registry
        self.labels, self.labels_text = [], ""
        self.error = error or self.default_message

    # OneOf keeps these as attributes set once; here they are read from the registry each
    # time, which is the point of this class, so the override of an attribute is wanted
    @property
    def choices(self) -> tuple:  # type: ignore[override]
        return tuple(self.registry)

    @property
    def choices_text(self) -> str:  # type: ignore[override]
        return ", ".join(str(choice) for choice in self.choices)
