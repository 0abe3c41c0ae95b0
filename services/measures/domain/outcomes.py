"""NHS Talking Therapies outcome rules for one course of treatment. Pure.

Source: NHS Talking Therapies for anxiety and depression Manual (NHS England, v7 2024) and
its technical guidance on the outcome measures (formerly IAPT), as summarised in
/shared/clinical.md:
- caseness: PHQ-9 >= 10 or GAD-7 >= 8 (a case is above the clinical threshold on either);
- paired scores: the first and the last score of the course on both PHQ-9 and GAD-7;
- finished treatment: at least 2 attended treatment sessions;
- recovery: a case at the first measure and not a case at the last;
- reliable improvement: PHQ-9 down by >= 6 or GAD-7 down by >= 4, with no reliable increase
  on the other; reliable deterioration: the mirror image (up by >= 6 / >= 4, no reliable
  decrease on the other);
- reliable recovery: recovery and reliable improvement together.
GAD-7 stands for the anxiety measure: where an anxiety-disorder-specific measure is required
the caller must not use this module's recovery (no ADSM is collected yet; see the report).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.events import NewEvent

from .commands import PublishOutcome
from .instruments import GAD7, PHQ9
from .streams import evolve_by

# Caseness is each instrument's own line (instruments.py, from clinical.md), stated once.
PHQ9_CASE, GAD7_CASE = PHQ9.caseness, GAD7.caseness
PHQ9_RELIABLE, GAD7_RELIABLE = 6, 4
FINISHED_SESSIONS = 2


@dataclass(frozen=True)
class Measure:
    """One completed questionnaire's PHQ-9 and GAD-7 totals (None when not scored)."""

    at: datetime
    phq9: float | None
    gad7: float | None

    @property
    def paired(self) -> bool:
        return self.phq9 is not None and self.gad7 is not None


def is_case(phq9: float, gad7: float) -> bool:
    return phq9 >= PHQ9_CASE or gad7 >= GAD7_CASE


def _pair(first: float | None, last: float | None) -> dict:
    change = None if first is None or last is None else last - first
    return {"first": first, "last": last, "change": change}


def course_outcome(measures: list[Measure], attended_sessions: int) -> dict:
    """The outcome fields of `OutcomeUpdated` (without ids). A flag is None when it cannot be
    judged: no measure on both scales, a single measure only, or (recovery) not a case at the
    start. Measures are ordered by time here; ties keep their given order."""
    usable = sorted((m for m in measures if m.paired), key=lambda m: m.at)
    first = usable[0] if usable else None
    last = usable[-1] if len(usable) >= 2 else None
    result = {
        "phq9": _pair(first and first.phq9, last and last.phq9),
        "gad7": _pair(first and first.gad7, last and last.gad7),
        "attended_sessions": attended_sessions,
        "finished_treatment": attended_sessions >= FINISHED_SESSIONS,
        "caseness_at_start": is_case(first.phq9, first.gad7) if first else None,
        "recovered": None,
        "reliable_improvement": None,
        "reliable_deterioration": None,
        "reliable_recovery": None,
    }
    if first is None or last is None:
        return result
    d_phq, d_gad = last.phq9 - first.phq9, last.gad7 - first.gad7
    better = d_phq <= -PHQ9_RELIABLE or d_gad <= -GAD7_RELIABLE
    worse = d_phq >= PHQ9_RELIABLE or d_gad >= GAD7_RELIABLE
    result["reliable_improvement"] = better and not worse
    result["reliable_deterioration"] = worse and not better
    if result["caseness_at_start"]:
        result["recovered"] = not is_case(last.phq9, last.gad7)
        result["reliable_recovery"] = result["recovered"] and result["reliable_improvement"]
    return result


@dataclass
class Rate:
    count: int = 0
    of: int = 0

    def add(self, hit: bool) -> None:
        self.of += 1
        self.count += 1 if hit else 0

    def as_dict(self) -> dict:
        return {
            "count": self.count,
            "of": self.of,
            "rate": round(self.count / self.of, 4) if self.of else None,
        }


def summarise(outcomes: list[dict]) -> dict:
    """Rates over many courses with their denominators (NHS TT): recovery and reliable
    recovery over courses that finished treatment and were a case at the start; reliable
    improvement and deterioration over courses that finished treatment. Only courses with
    paired scores count (without them the manual counts no outcome)."""
    recovery, reliable_recovery, improvement, deterioration = Rate(), Rate(), Rate(), Rate()
    finished = 0
    for o in outcomes:
        if not o.get("finished_treatment") or o.get("reliable_improvement") is None:
            continue
        finished += 1
        improvement.add(bool(o["reliable_improvement"]))
        deterioration.add(bool(o["reliable_deterioration"]))
        if o.get("caseness_at_start"):
            recovery.add(bool(o["recovered"]))
            reliable_recovery.add(bool(o["reliable_recovery"]))
    return {
        "courses": len(outcomes),
        "finished_with_paired_scores": finished,
        "recovery": recovery.as_dict(),
        "reliable_recovery": reliable_recovery.as_dict(),
        "reliable_improvement": improvement.as_dict(),
        "reliable_deterioration": deterioration.as_dict(),
    }


# National comparators (NHS Talking Therapies targets 2026/27, secondary source: clinical.md)
NATIONAL = {"reliable_recovery": 0.51, "reliable_improvement": 0.69}


# -- a course's outcome as a stream: published again only when it changed ----------------
class OutcomeDecider:
    def initial_state(self) -> dict | None:
        return None

    def evolve(self, state, event) -> dict:
        return evolve_by(_OUTCOME_EVOLVE, state, event)

    def decide(self, state, command: PublishOutcome) -> list[NewEvent]:
        if state is not None and _same(state, command.data):
            return []  # recomputed after a redelivery: nothing changed
        return [NewEvent("OutcomeUpdated", dict(command.data))]


def _same(old: dict, new: dict) -> bool:
    keys = set(old) | set(new)
    return all(_norm(old.get(k)) == _norm(new.get(k)) for k in keys)


def _norm(value):
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


_OUTCOME_EVOLVE = {"OutcomeUpdated": lambda state, event: dict(event.data)}
