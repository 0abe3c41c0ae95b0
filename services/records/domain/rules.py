"""Clinical and administrative rules of the record, as pure functions (no I/O).

Sources:
- NHS number: NHS Data Dictionary, "NHS Number" — ten digits, the tenth a modulus-11 check
  digit over the first nine weighted 10..2; a remainder giving 11 means check digit 0, one
  giving 10 means the number is invalid (never issued).
- Phases: IPT UK and Leeds NHS (see /work/shared/clinical.md) — a 16-session course has an
  initial phase (sessions 1-4: assessment, interpersonal inventory, focus, formulation,
  treatment contract), a middle phase (5-12) and an ending phase (13-16); optional
  maintenance (IPT-M, booster sessions) follows the acute course.
"""

from __future__ import annotations

import re

from shared.contracts.records import PHASES

_NHS_SEPARATORS = re.compile(r"[\s-]")


def normalise_nhs_number(raw: str) -> str:
    """'943 476 5919' and '943-476-5919' -> '9434765919' (the stored form)."""
    return _NHS_SEPARATORS.sub("", raw)


def nhs_number_problem(raw: str) -> str | None:
    """Why `raw` is not a valid NHS number, or None when it is (NHS Data Dictionary)."""
    number = normalise_nhs_number(raw)
    # ASCII digits only: \d would take Arabic-Indic or full-width digits, which int() reads
    if not re.fullmatch(r"[0-9]{10}", number):
        return "an NHS number has exactly 10 digits (0-9)"
    if len(set(number)) == 1:
        # 0000000000 and 1111111111 pass the modulus-11 check but are never issued
        return "not a valid NHS number (a placeholder of one repeated digit)"
    total = sum(
        int(digit) * weight for digit, weight in zip(number[:9], range(10, 1, -1), strict=True)
    )
    check = 11 - total % 11
    if check == 11:
        check = 0
    if check == 10:
        return "not a valid NHS number (no check digit is possible for these nine digits)"
    if check != int(number[9]):
        return "the check digit does not match (modulus 11); please re-check the number"
    return None


# -- search keys -------------------------------------------------------------------------
# Staff find a client by whatever they have to hand: a name, the phone number the client rang
# from, an e-mail address or the NHS number on a referral letter. Contact details are
# compared in one normal form so "+44 7700 900461", "07700-900461" and "07700900461" match.
_PHONE_CHARS = re.compile(r"^\+?[0-9 ()-]{7,25}$")


def normalise_phone(raw: str | None) -> str | None:
    """A UK phone number as national digits ('+44 7700 900461' -> '07700900461'); None when
    `raw` is not phone-shaped."""
    if not raw or not _PHONE_CHARS.match(raw.strip()):
        return None
    digits = re.sub(r"\D", "", raw)
    if raw.strip().startswith("+44") or digits.startswith("0044"):
        digits = "0" + digits[(4 if digits.startswith("0044") else 2) :]
    return digits if len(digits) >= 7 else None


def normalise_email(raw: str | None) -> str | None:
    value = (raw or "").strip().lower()
    return value if "@" in value else None


def contact_keys(
    email: str | None = None, phone: str | None = None, nhs_number: str | None = None
) -> list[str]:
    """The exact-match keys a client is found by, besides their name."""
    keys = []
    if normalise_email(email):
        keys.append(f"email:{normalise_email(email)}")
    if normalise_phone(phone):
        keys.append(f"phone:{normalise_phone(phone)}")
    if nhs_number and re.fullmatch(r"\d{10}", normalise_nhs_number(nhs_number)):
        keys.append(f"nhs:{normalise_nhs_number(nhs_number)}")
    return keys


def query_keys(q: str) -> list[str]:
    """What a search box entry could be, as contact keys: an e-mail address, a phone number,
    an NHS number (a ten-digit entry may be either of the last two)."""
    keys = [f"email:{normalise_email(q)}"] if normalise_email(q) else []
    if normalise_phone(q):
        keys.append(f"phone:{normalise_phone(q)}")
    if re.fullmatch(r"\d{10}", normalise_nhs_number(q.strip())):
        keys.append(f"nhs:{normalise_nhs_number(q.strip())}")
    return keys


# The order rule for phases. IPT runs its phases in sequence, each with its own tasks, so a
# phase may not be skipped (initial -> ending would leave out the work on the focus). Two
# steps back are allowed because practice needs them: middle -> initial when the focus or
# formulation must be re-done, ending -> middle when the treatment contract is extended.
# From maintenance the only move is back to initial: a recurrence during IPT-M is treated as
# a new acute course, which starts again with assessment and inventory. A reason is always
# recorded (the event requires one).
ALLOWED_MOVES: dict[str | None, tuple[str, ...]] = {
    None: ("initial",),
    "initial": ("middle",),
    "middle": ("ending", "initial"),
    "ending": ("maintenance", "middle"),
    "maintenance": ("initial",),
}
assert set(ALLOWED_MOVES) - {None} == set(PHASES)


def next_phases(current: str | None, has_formulation: bool) -> list[str]:
    """The phases the record may move to now (the middle phase needs a formulation)."""
    return [p for p in ALLOWED_MOVES[current] if p != "middle" or has_formulation]


def phase_move_problem(current: str | None, target: str) -> str | None:
    """Why the phase may not go from `current` to `target`, or None when it may."""
    if current == target:
        return f"the client is already in the {target} phase"
    allowed = ALLOWED_MOVES[current]
    if target not in allowed:
        where = f"from {current}" if current else "as the first phase"
        return f"{target} is not allowed {where}; allowed: {', '.join(allowed)}"
    return None


# Sessions of the acute course by phase (IPT UK / Leeds NHS, 16-session course).
_INITIAL_LAST, _MIDDLE_LAST = 4, 12


def suggested_phase(attended_course_sessions: int, attended_boosters: int = 0) -> str | None:
    """The phase the attended count implies; a suggestion only — the therapist decides.
    Past session 16 the suggestion stays `ending`: the course is due to end, not over."""
    if attended_boosters > 0:
        return "maintenance"
    if attended_course_sessions <= 0:
        return None
    if attended_course_sessions <= _INITIAL_LAST:
        return "initial"
    if attended_course_sessions <= _MIDDLE_LAST:
        return "middle"
    return "ending"
