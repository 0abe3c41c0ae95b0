"""Staff users on the real store: argon2 hashes, validation, the 5-failure / 15-minute lockout."""

from datetime import UTC, datetime, timedelta

import pytest

from services.portal.users import LockedOut, UserError

from .conftest import PASSWORD


def test_a_user_is_stored_with_an_argon2_hash_never_the_password(users):
    user = users.add(
        email=" Sarah@Rapport.TEST ",
        name="Dr Sarah Okafor",
        role="therapist",
        password=PASSWORD,
        therapist_id="t-1",
    )
    doc = users.users.find_one({"_id": user.id})
    assert doc["email"] == "sarah@rapport.test"
    assert doc["password_hash"].startswith("$argon2id$")
    assert PASSWORD not in str(doc)
    assert users.authenticate("SARAH@rapport.test", PASSWORD) == user


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"email": "not-an-email"}, "email"),
        ({"role": "service"}, "role"),
        ({"role": "therapist", "therapist_id": None}, "therapist_id"),
        ({"password": "short"}, "password"),
        ({"name": "  "}, "name"),
    ],
)
def test_bad_users_are_refused_naming_the_field(users, kwargs, field):
    args = {"email": "a@rapport.test", "name": "A", "role": "admin", "password": PASSWORD, **kwargs}
    with pytest.raises(UserError) as refused:
        users.add(**args)
    assert refused.value.field == field
    assert users.users.count_documents({}) == 0


def test_the_same_email_twice_is_refused(users):
    users.add(email="a@rapport.test", name="A", role="admin", password=PASSWORD)
    with pytest.raises(UserError) as refused:
        users.add(email="A@rapport.test", name="B", role="admin", password=PASSWORD)
    assert refused.value.field == "email"


def test_a_wrong_password_is_none(users):
    users.add(email="a@rapport.test", name="A", role="admin", password=PASSWORD)
    assert users.authenticate("a@rapport.test", "wrong password!") is None
    assert users.authenticate("nobody@rapport.test", PASSWORD) is None


def test_five_failures_lock_the_address_for_fifteen_minutes_even_for_the_right_password(users):
    users.add(email="a@rapport.test", name="A", role="admin", password=PASSWORD)
    now = datetime.now(UTC)
    for _ in range(4):
        assert users.authenticate("a@rapport.test", "guess", now=now) is None
    assert users.authenticate("a@rapport.test", PASSWORD, now=now) is not None  # resets the count
    for _ in range(5):
        assert users.authenticate("a@rapport.test", "guess", now=now) is None
    with pytest.raises(LockedOut) as locked:
        users.authenticate("a@rapport.test", PASSWORD, now=now + timedelta(minutes=14))
    assert locked.value.until == pytest.approx(
        now + timedelta(minutes=15), abs=timedelta(seconds=1)
    )
    assert users.attempts.find_one({"_id": "a@rapport.test"})["locked_until"] is not None
    assert (
        users.authenticate("a@rapport.test", PASSWORD, now=now + timedelta(minutes=16)) is not None
    )


def test_unknown_addresses_lock_too_so_the_lockout_does_not_reveal_who_exists(users):
    now = datetime.now(UTC)
    for _ in range(5):
        users.authenticate("ghost@rapport.test", "guess", now=now)
    with pytest.raises(LockedOut):
        users.authenticate("ghost@rapport.test", "guess", now=now)


def test_the_flask_command_adds_a_user_with_the_password_from_the_environment(
    portal, users, monkeypatch
):
    monkeypatch.setenv("RAPPORT_USER_PASSWORD", PASSWORD)
    runner = portal.test_cli_runner()
    add = ["users", "add", "--email", "t2@rapport.test", "--name", "Mr Tom Reid"]
    result = runner.invoke(args=[*add, "--role", "therapist", "--therapist-id", "t-2"])
    assert result.exit_code == 0, result.output
    assert "added t2@rapport.test (therapist)" in result.stdout
    assert users.authenticate("t2@rapport.test", PASSWORD).therapist_id == "t-2"
    again = runner.invoke(
        args=["users", "add", "--email", "t2@rapport.test", "--name", "Again", "--role", "admin"]
    )
    assert again.exit_code == 2 and "refused: email:" in again.stderr
    wrong = runner.invoke(args=[*add, "--role", "receptionist"])
    assert wrong.exit_code == 2 and "'receptionist' is not one of" in wrong.stderr
