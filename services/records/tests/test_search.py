"""Finding a client by what staff have to hand (issue 13, defect 12): a name, a phone number,
an e-mail address or an NHS number, each in the spellings people type; against the real
broker and store (the client list is a projection)."""

import pytest

from services.records.app import create_app
from services.records.domain.rules import next_phases, normalise_phone, query_keys
from testkit.plugin import eventually, service_workers

from .support import EMMA, JOHN


@pytest.mark.parametrize(
    "typed, digits",
    [
        ("07700 900461", "07700900461"),
        ("+44 7700 900461", "07700900461"),
        ("0044 7700-900461", "07700900461"),
        ("(01622) 123456", "01622123456"),
        ("emma", None),
        ("12 34", None),
    ],
)
def test_a_phone_number_is_compared_as_national_digits(typed, digits):
    assert normalise_phone(typed) == digits


def test_a_ten_digit_entry_may_be_a_phone_or_an_nhs_number():
    assert query_keys("943 476 5919") == ["phone:9434765919", "nhs:9434765919"]
    assert query_keys(" Emma.Clarke@Example.org ") == ["email:emma.clarke@example.org"]
    assert query_keys("emma clarke") == []


def test_the_record_offers_only_the_phase_moves_the_rules_allow():
    assert next_phases(None, False) == ["initial"]
    assert next_phases("initial", False) == []  # the middle phase needs a formulation
    assert next_phases("initial", True) == ["middle"]
    assert next_phases("middle", True) == ["ending", "initial"]


@pytest.fixture
def api(settings):
    return create_app(settings).test_client()


def test_clients_are_found_by_phone_email_and_nhs_number(api, settings, workers, auth_header):
    workers.start(*service_workers(settings, "records"))
    admin = auth_header("admin", sub="reception-user")
    emma = api.post("/clients", json=EMMA, headers=admin).get_json()["client_id"]
    john = api.post("/clients", json=JOHN, headers=admin).get_json()["client_id"]

    def found(q):
        r = api.get("/clients", query_string={"q": q}, headers=admin)
        assert r.status_code == 200, r.get_json()
        return [c["client_id"] for c in r.get_json()["items"]]

    eventually(lambda: found("john") == [john] and found("emma") == [emma])
    for q in (
        "+44 7700 900461",
        "07700900461",
        "07700-900-461",
        "943-476-5919",
        "9434765919",
        "EMMA.CLARKE@example.org",
        "emm cla",
    ):
        assert found(q) == [emma], q
    assert found("john.hughes@example.org") == [john]
    assert found("07700 900462") == [] and found("nobody@example.org") == []

    # a corrected phone number is found, the old one no longer
    r = api.patch(
        f"/clients/{emma}", headers=admin, json={"phone": "07700 900999", "reason": "new mobile"}
    )
    assert r.status_code == 200, r.get_json()
    eventually(lambda: found("07700900999") == [emma])
    assert found("07700 900461") == [] and found("emma.clarke@example.org") == [emma]
