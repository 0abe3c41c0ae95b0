"""Scoring by each instrument's published rule (the rules are cited in instruments.py and
/shared/clinical.md). Pure: no Flask, no pymongo."""

from __future__ import annotations

from dataclasses import dataclass

from .instruments import INSTRUMENTS


@dataclass(frozen=True)
class Score:
    instrument: str
    answers: tuple[int | None, ...]
    total: float | None
    band: str | None
    prorated: bool

    def as_event(self) -> dict:
        return {
            "instrument": self.instrument,
            "answers": list(self.answers),
            "total": self.total,
            "band": self.band,
            "prorated": self.prorated,
        }


def answer_errors(code: str, answers) -> dict[int, str]:
    """{1-based item: why} for answers that cannot be accepted. `None` means "not answered".

    One rule however the answers arrive (the client's link or staff entering a paper form;
    clinical.md): a form is accepted only if the instrument's published rule can score it,
    so more missing items than `max_missing` (PHQ-9 and GAD-7: none; WSAS and CORE-10: one)
    names every missing item; it is never stored unscored."""
    instrument = INSTRUMENTS[code]
    if not isinstance(answers, (list, tuple)):
        return {0: "answers must be a list"}
    errors: dict[int, str] = {}
    missing: list[int] = []
    for number in range(1, len(instrument.items) + 1):
        value = answers[number - 1] if number <= len(answers) else None
        if value is None:
            missing.append(number)
        elif isinstance(value, bool) or not isinstance(value, int):
            errors[number] = "must be a whole number"
        elif not 0 <= value <= instrument.item_max:
            errors[number] = f"must be between 0 and {instrument.item_max}"
    if len(missing) > instrument.max_missing:
        # the "not applicable" choice is an answer the client gave: name the others
        named = [n for n in missing if n not in instrument.optional_items] or missing
        for number in named:
            errors[number] = "missing: please answer this question"
    if len(answers) > len(instrument.items):
        errors[len(answers)] = f"{code} has only {len(instrument.items)} items"
    return errors


def score(code: str, answers) -> Score:
    """Total, band and whether the total was pro-rated. Call after `answer_errors` is empty."""
    instrument = INSTRUMENTS[code]
    values = [
        None if a is None else (instrument.item_max - a if n in instrument.reversed_items else a)
        for n, a in enumerate(answers, start=1)
    ]
    answered = [v for v in values if v is not None]
    missing = len(values) - len(answered)
    if missing > instrument.max_missing or not answered:
        total, prorated = None, False
    elif missing == 0:
        total, prorated = float(sum(answered)), False
    else:
        # CORE-10 (CamCOPS core10.py) and WSAS (mean substitution) give the same figure:
        # the mean of the answered items times the number of items.
        total, prorated = round(sum(answered) * len(values) / len(answered), 2), True
    return Score(code, tuple(answers), total, instrument.band(total), prorated)


def risk_items(code: str, answers) -> list[tuple[int, int | None]]:
    """[(item, answer)] for risk items answered above 0 or left unanswered (answer None).
    PHQ-9 item 9: Kroenke 2001 advises follow-up whatever the total; CORE-10 item 6: Barkham
    2013. An unanswered risk item (CORE-10 may be scored with one item missing) never passes
    silently: the therapist is asked to follow it up (clinical.md)."""
    instrument = INSTRUMENTS[code]
    out = []
    for n in sorted(instrument.risk_items):
        answer = answers[n - 1] if n <= len(answers) else None
        if answer is None or answer > 0:
            out.append((n, answer))
    return out
