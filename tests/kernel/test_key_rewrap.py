"""Master-key rotation (`python -m shared.run rewrap-keys`): every client key is wrapped
again under RAPPORT_MASTER_KEY_NEW. Every event of every service still opens, with the same
values, under the new master key; the old master key opens no key any more; a disposed
client stays disposed; running it again changes nothing. Real store, records' real API."""

from __future__ import annotations

import base64
import os

import pytest
from click.testing import CliRunner, Result
from cryptography.exceptions import InvalidTag

from services.records.app import create_app
from services.records.tests.support import EMMA, EMMA_ASSESSMENT, EMMA_FORMULATION, JOHN
from shared.config import SERVICES
from shared.crypto import FieldCipher, KeyStore
from shared.events import registry
from shared.eventstore import EventStore
from shared.mongo import client as mongo_client
from shared.run import cli


def rewrap() -> Result:
    return CliRunner().invoke(cli, ["rewrap-keys"])


def _every_event(settings, master: str) -> list[tuple[str, dict]]:
    mongo = mongo_client(settings.mongo_uri)
    cipher = FieldCipher(KeyStore(mongo, settings.database("keys"), master, cache_seconds=0))
    out = []
    for service in SERVICES:
        store = EventStore(mongo, settings.database(service), registry, cipher=cipher)
        out += [(e.event_id, dict(e.data)) for e in store.read_all()]
    return out


def _env(monkeypatch, settings, new_master: str) -> None:
    for name, value in {
        "RAPPORT_DEMO_MODE": "true",
        "RAPPORT_MONGO_URI": settings.mongo_uri,
        "RAPPORT_DB_PREFIX": settings.db_prefix,
        "RAPPORT_TOPIC_PREFIX": settings.topic_prefix,
        "RAPPORT_MASTER_KEY": settings.master_key,
        "RAPPORT_TOKEN_SECRET": settings.token_secret,
        "RAPPORT_MASTER_KEY_NEW": new_master,
    }.items():
        monkeypatch.setenv(name, value)


def test_rewrapping_keeps_every_event_readable_and_retires_the_old_master_key(
    settings, auth_header, monkeypatch
):
    api = create_app(settings).test_client()
    admin, lead = auth_header("admin"), auth_header("clinical_lead")
    emma = api.post("/clients", json=EMMA, headers=admin).get_json()["client_id"]
    john = api.post("/clients", json=JOHN, headers=admin).get_json()["client_id"]
    assert (
        api.post(f"/clients/{emma}/assessment", json=EMMA_ASSESSMENT, headers=lead).status_code
        == 201
    )
    assert (
        api.put(f"/clients/{emma}/formulation", json=EMMA_FORMULATION, headers=lead).status_code
        == 200
    )
    assert (
        api.patch(
            f"/clients/{john}",
            json={"reason": "new number", "phone": "07700 900999"},
            headers=admin,
        ).status_code
        == 200
    )
    mongo = mongo_client(settings.mongo_uri)
    old = settings.master_key
    KeyStore(mongo, settings.database("keys"), old).destroy(
        john
    )  # John disposed of before the rotation
    before = _every_event(settings, old)
    assert any(data.get("given_name") == "Emma" for _, data in before)

    new = base64.b64encode(os.urandom(32)).decode()
    _env(monkeypatch, settings, new)
    result = rewrap()
    assert result.exit_code == 0, result.output
    assert "1 keys wrapped under the new master key, 0 were already, 1 disposed" in result.stdout

    after = _every_event(settings, new)
    assert after == before, "every event opens to the same values under the new master key"
    registered = {data["client_id"]: data for _, data in after if "given_name" in data}
    assert (
        registered[emma]["given_name"] == "Emma" and registered[emma]["nhs_number"] == "9434765919"
    )
    assert registered[john]["given_name"] == "[disposed]"
    assessment = next(d for _, d in after if "presenting_difficulties" in d)
    assert assessment["conditions"] == ["depression"]

    with pytest.raises(InvalidTag):  # the old master key no longer opens Emma's key
        KeyStore(mongo, settings.database("keys"), old, cache_seconds=0).key_for_reading(emma)
    assert (
        KeyStore(mongo, settings.database("keys"), new, cache_seconds=0).key_for_reading(john)
        is None
    )

    result = rewrap()  # interrupted or repeated: nothing changes
    assert result.exit_code == 0, result.output
    assert "0 keys wrapped under the new master key, 1 were already" in result.stdout
    assert _every_event(settings, new) == before


def test_rewrapping_refuses_a_missing_or_malformed_new_key(settings, monkeypatch):
    _env(monkeypatch, settings, "")
    result = rewrap()
    assert result.exit_code == 2 and "RAPPORT_MASTER_KEY_NEW" in result.stderr
    _env(monkeypatch, settings, base64.b64encode(b"too short").decode())
    result = rewrap()
    assert result.exit_code == 2 and "32 bytes" in result.stderr
