"""Fuzzing the portal's pages (HTML, so not in its OpenAPI document; tests/security/test_fuzz.py
covers the JSON API): every `pages.*` rule of the portal's own URL map, signed in as each role,
GET with random query strings and POST with random form fields — the names the portal's forms
use, plus random extra ones — carrying a valid CSRF token and `form`/`back`/`idempotency_key`.
The other services are the stand-in of services/portal/tests/conftest.py, told for each example
to answer every route with a plausible body, a refusal, or an odd body, so the portal's handling
of the services' answers is fuzzed too. Whatever is sent or answered, no page answers 500 and no
exception escapes (the app runs with TESTING, so one would propagate here). A 502/503/504 is the
portal's honest answer when the stand-in itself failed or sent what cannot be read, and only then.
`make test` runs a short seeded pass; the `slow` one is longer and random."""

from __future__ import annotations

import os
import re
import time
import traceback
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from services.portal.security import CSRF_FIELD
from services.portal.tests.conftest import portal, services, signed_in, staff, users  # noqa: F401 (fixtures)

ROLES = ("admin", "therapist", "clinical_lead")
PORTAL = Path(__file__).resolve().parents[2] / "services" / "portal"
# sign-out ends the session the rest of the run uses; it is fuzzed last (see below).
LAST = ("pages.sign_out",)


def _vocabulary() -> tuple[list[str], list[str]]:
    """Form field names and answer keys, read from the portal's own templates and pages, so the
    random forms and bodies use the names the code looks for."""
    text = "".join(p.read_text() for p in (PORTAL / "templates").glob("*.html"))
    code = "".join(p.read_text() for p in (PORTAL / "pages").glob("*.py"))
    fields = set(re.findall(r'name="([a-z_]+)"', text))
    fields |= set(re.findall(r'(?:form|args|values)\.(?:get|getlist)\("([a-z_]+)"', code))
    keys = set(re.findall(r'\.get\("([a-z_]+)"', code)) | set(
        re.findall(r'\[\s*"([a-z_]+)"\s*\]', code)
    )
    keys |= set(re.findall(r"\b[a-z]\.([a-z_]{3,})\b", text))
    return sorted(fields - {CSRF_FIELD}), sorted(keys)


FIELDS, KEYS = _vocabulary()
IDS = st.sampled_from(["c-1", "s-1", "t-1", "n-1", "r-1", "PHQ-9", "x"]) | st.text(
    min_size=1, max_size=12
)
DATES = st.sampled_from(
    [
        "2026-11-30",
        "0001-01-01",
        "9999-12-31",
        "2026-11-30T10:00",
        "2026-11-30T10:00:00+00:00",
        "9999-12-31T23:59:59-01:00",
        "0001-01-01T00:00:00+01:00",
        "garbage",
        "",
        "²",
    ]
)
VALUES = (
    DATES
    | st.sampled_from(
        [
            "0",
            "1",
            "-1",
            "1.5",
            "abc",
            "16",
            "99999999999",
            "face_to_face",
            "session",
            "course",
            "grief",
            "middle",
            "client",
            "2026-11-30T10:00:00+00:00|Room 1",
            "on",
        ]
    )
    | st.text(max_size=30)
    | st.integers().map(str)
)
FIELD_NAMES = (
    st.sampled_from(FIELDS)
    | st.sampled_from(
        ["answers.PHQ-9.1", "answers.GAD-7.1", "person-0-name", "person-0-ring", "rows"]
    )
    | st.text(min_size=1, max_size=10)
)

# Each of the portal's field names, present or not: the fields a page reads come together
# (a slot with a count, rows with people) rather than one in a thousand examples.
FORMS = st.fixed_dictionaries(
    {},
    optional={
        name: VALUES | st.lists(VALUES, max_size=3)
        for name in FIELDS + ["answers.PHQ-9.1", "person-0-name", "rows"]
    },
)


def _scalar():
    return (
        st.none()
        | st.booleans()
        | st.integers(-2, 40)
        | st.floats(allow_nan=False, allow_infinity=False)
        | DATES
        | st.text(max_size=12)
        | IDS
    )


def _odd_json():
    return st.recursive(
        _scalar(),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=6)
        ),
        max_leaves=20,
    )


# Plausible: shaped like the services' answers, with the keys the pages read.
PLAUSIBLE = {
    "client_id": "c-1",
    "session_id": "s-1",
    "therapist_id": "t-1",
    "request_id": "r-1",
    "note_id": "n-1",
    "given_name": "Emma",
    "family_name": "Ward",
    "name": "Dr Sarah Okafor",
    "status": "active",
    "phase": "middle",
    "starts_at": "2026-11-30T10:00:00+00:00",
    "ends_at": "2026-11-30T10:50:00+00:00",
    "date_of_birth": "1990-01-01",
    "modality": "face_to_face",
    "revision": 1,
    "version": 1,
    "items": [],
    "notes": [],
    "tasks": [],
    "sessions": [],
    "scores": [],
    "instruments": [],
    "outcomes": [],
    "requests": [],
    "risk_alerts": [],
    "alerts": [],
}
DATED = (
    "starts_at",
    "ends_at",
    "date_of_birth",
    "due_at",
    "completed_at",
    "at",
    "created_at",
    "raised_at",
)
# A 200 answer keeps the shape the service's OpenAPI document promises (an object where it says
# object): a breach of that is the services' own contract tests' business. Within it, anything
# goes that a store may hold: dates at the edges of the calendar or unreadable (issue 15 #2: a
# stored date must never break a page), fields left out, lists empty. A refusal's body may be
# anything at all (a proxy's HTML, a list, a bare string), and so may a body that is not JSON.
ODD_DATED = st.fixed_dictionaries({k: DATES for k in DATED if k in PLAUSIBLE or k == "due_at"})
BODIES = (
    st.just(PLAUSIBLE)
    | ODD_DATED.map(lambda odd: {**PLAUSIBLE, **odd})
    | st.sets(st.sampled_from(sorted(PLAUSIBLE))).map(
        lambda gone: {k: v for k, v in PLAUSIBLE.items() if k not in gone or k.endswith("_id")}
    )
)
TEXT = "not json, a CSV,\n1,2"
REFUSALS = st.sampled_from([400, 403, 404, 409, 410, 422, 429])
FAILURES = st.sampled_from([500, 502, 503])


@st.composite
def stand_in_answers(draw):
    """(status, body, plausible) for every route the stand-in is asked this example."""
    kind = draw(st.sampled_from(["ok", "ok", "refusal", "failure"]))
    if kind == "ok":
        if draw(st.integers(0, 9)) == 0:
            return 200, TEXT, False
        return draw(st.sampled_from([200, 201])), draw(BODIES), True
    if kind == "refusal":
        body = draw(
            st.just(
                {
                    "title": "Refused",
                    "status": 422,
                    "detail": "no",
                    "errors": [{"field": "due_at", "reason": "out of range"}],
                }
            )
            | _odd_json()
        )
        return draw(REFUSALS), body, False
    return draw(FAILURES), {"title": "Server error"}, False


class EveryRoute(dict):
    """The stand-in's answers: the same drawn answer for every (method, path)."""

    def __init__(self, answer):
        super().__init__()
        self.answer = answer

    def get(self, key, default=None):
        return self.answer


def _path(rule, draw) -> str:
    return re.sub(r"<(?:[a-z]+:)?[a-z_]+>", lambda _: quote(draw(IDS), safe=""), rule.rule)


def _pages(app):
    rules = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("pages.")]
    return sorted(rules, key=lambda r: (r.endpoint in LAST, r.rule))


def _one_page(rule, methods, clients, tokens, services, examples, seed):
    @hsettings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=seed is not None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
        phases=[Phase.explicit, Phase.generate],
        report_multiple_bugs=False,
    )
    @given(data=st.data())
    def one(data):
        role = data.draw(st.sampled_from(ROLES), "role")
        method = data.draw(st.sampled_from(methods), "method")
        path = _path(rule, data.draw)
        query = data.draw(st.dictionaries(FIELD_NAMES, VALUES, max_size=4), "query")
        status, body, plausible = data.draw(stand_in_answers(), "stand-in")
        services.answers = EveryRoute((status, body, 0))
        request = {"query_string": query}
        if method == "POST":
            form = {
                **data.draw(FORMS, "form"),
                **data.draw(
                    st.dictionaries(FIELD_NAMES, VALUES | st.lists(VALUES, max_size=3), max_size=4),
                    "extra fields",
                ),
            }
            form.update(
                {
                    CSRF_FIELD: tokens[role],
                    "form": data.draw(st.sampled_from(["", "note", "task"]) | st.text(max_size=8)),
                    "back": data.draw(
                        st.sampled_from(["/clients/c-1", "/diary", "/", "//evil.test/x"])
                        | st.text(max_size=20)
                    ),
                    "idempotency_key": data.draw(st.text(max_size=40)),
                }
            )
            request["data"] = form
        response = clients[role].open(path, method=method, **request)
        assert response.status_code != 500, (role, method, path, request, (status, body))
        if response.status_code >= 500:
            assert not plausible, (
                role,
                method,
                path,
                request,
                (status, body),
                response.status_code,
            )

    return one


def _fuzz(portal, services, signed_in, *, examples: int, seed: int | None):
    clients = {role: signed_in(role) for role in ROLES}
    tokens = {}
    for role, client in clients.items():
        with client.session_transaction() as s:
            tokens[role] = s[CSRF_FIELD]
    failures = []
    for rule in _pages(portal):
        methods = sorted(m for m in rule.methods if m in ("GET", "POST"))

        one = _one_page(rule, methods, clients, tokens, services, examples, seed)
        began = time.monotonic()
        try:
            one()
        except Exception as err:  # keep going: one report of every page that fails
            where = "".join(traceback.format_tb(err.__traceback__)[-3:])
            failures.append(
                f"{rule.endpoint} {rule.rule}: {type(err).__name__}: {str(err)[:1500]}\n{where}"
            )
        print(f"{rule.endpoint}: {examples} examples in {time.monotonic() - began:.1f}s")
    assert not failures, "\n\n".join(failures)


def test_every_page_and_form_survives_a_fuzz(portal, services, signed_in):
    _fuzz(portal, services, signed_in, examples=20, seed=20261201)


@pytest.mark.slow
def test_a_longer_random_fuzz_of_the_pages(portal, services, signed_in):
    _fuzz(
        portal,
        services,
        signed_in,
        examples=int(os.environ.get("RAPPORT_FUZZ_EXAMPLES", "150")),
        seed=None,
    )
