"""Issue 15 (#6): anyone could lock any staff account (5 wrong passwords, the lead's
included), and 16 parallel wrong attempts got 8 password checks past the lock. Attempts are
now counted atomically before the check, throttled per source address as well, and the right
password from a browser the person signed in on before still gets in while the account is
locked by someone else's guesses."""

import threading
from datetime import UTC, datetime

import pytest

from services.portal import users as users_module
from services.portal.users import MAX_ADDRESS_FAILURES, MAX_FAILURES, LockedOut

from .conftest import PASSWORD, sign_in


def test_sixteen_parallel_wrong_attempts_get_no_more_checks_than_the_limit(users, monkeypatch):
    users.add(email="lead@rapport.test", name="Lead", role="clinical_lead", password=PASSWORD)
    checks, lock = [], threading.Lock()
    real = users_module._verify

    def counted(hashed, password):
        with lock:
            checks.append(password)
        return real(hashed, password)

    monkeypatch.setattr(users_module, "_verify", counted)
    start, outcomes = threading.Barrier(16), []

    def attempt(n):
        start.wait()
        try:
            outcomes.append(
                users.authenticate("lead@rapport.test", f"guess {n}", source=f"10.0.0.{n}")
            )
        except LockedOut:
            outcomes.append("locked")

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(checks) == MAX_FAILURES, f"{len(checks)} password checks got past the lock"
    assert outcomes.count("locked") == 16 - MAX_FAILURES
    with pytest.raises(LockedOut):
        users.authenticate("lead@rapport.test", PASSWORD, source="10.0.1.1")


def test_one_source_address_is_throttled_across_accounts(users):
    now = datetime.now(UTC)
    for n in range(MAX_ADDRESS_FAILURES):  # a different account each time: no account locks
        assert (
            users.authenticate(f"user{n}@rapport.test", "guess", now=now, source="203.0.113.9")
            is None
        )
    with pytest.raises(LockedOut):
        users.authenticate("someone-else@rapport.test", "guess", now=now, source="203.0.113.9")
    assert (
        users.authenticate("someone-else@rapport.test", "guess", now=now, source="198.51.100.1")
        is None
    )


def test_the_right_password_from_a_known_device_gets_through_a_lock_others_caused(users):
    lead = users.add(
        email="lead@rapport.test", name="Lead", role="clinical_lead", password=PASSWORD
    )
    device = users.remember_device(lead)
    for _ in range(MAX_FAILURES):
        users.authenticate("lead@rapport.test", "attacker guess", source="203.0.113.9")
    with pytest.raises(LockedOut):
        users.authenticate("lead@rapport.test", PASSWORD, source="198.51.100.1")
    assert (
        users.authenticate("lead@rapport.test", PASSWORD, source="198.51.100.1", device=device)
        == lead
    )
    with pytest.raises(
        LockedOut
    ):  # the lock stays for everyone else, and another user's device is no key
        other = users.add(email="a@rapport.test", name="A", role="admin", password=PASSWORD)
        users.authenticate(
            "lead@rapport.test",
            PASSWORD,
            source="198.51.100.1",
            device=users.remember_device(other),
        )


def test_a_known_device_passes_a_locked_source_address_but_its_own_guesses_are_limited(users):
    """Behind an office address (or an ingress) strangers' failures lock the address; the
    person's own browser still gets in. A stolen device cookie does not give endless guesses."""
    lead = users.add(
        email="lead@rapport.test", name="Lead", role="clinical_lead", password=PASSWORD
    )
    device = users.remember_device(lead)
    for n in range(MAX_ADDRESS_FAILURES):
        users.authenticate(f"user{n}@rapport.test", "guess", source="192.0.2.1")
    with pytest.raises(LockedOut):
        users.authenticate("lead@rapport.test", PASSWORD, source="192.0.2.1")
    assert (
        users.authenticate("lead@rapport.test", PASSWORD, source="192.0.2.1", device=device) == lead
    )
    for n in range(MAX_FAILURES):
        assert (
            users.authenticate(
                "lead@rapport.test", f"stolen cookie guess {n}", source="192.0.2.1", device=device
            )
            is None
        )
    with pytest.raises(LockedOut):
        users.authenticate("lead@rapport.test", PASSWORD, source="192.0.2.1", device=device)


def test_the_sign_in_page_remembers_the_browser_and_lets_it_in_during_a_lock(portal, staff):
    first = portal.test_client()
    assert sign_in(first, "lead@rapport.test").status_code == 302
    device = first.get_cookie("rapport_device", path="/sign-in")
    assert device is not None and device.http_only
    attacker = portal.test_client()
    for _ in range(MAX_FAILURES):
        assert sign_in(attacker, "lead@rapport.test", "not the password").status_code == 401
    r = sign_in(portal.test_client(), "lead@rapport.test")
    assert r.status_code == 429, "a browser never signed in from is locked out like the attacker"
    mine = portal.test_client()  # the lead's browser: a new session, the old device cookie
    mine.set_cookie("rapport_device", device.value, path="/sign-in")
    assert sign_in(mine, "lead@rapport.test").status_code == 302
