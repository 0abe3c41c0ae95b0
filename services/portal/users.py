"""Staff users, owned by the portal (database `<prefix>portal`, collection `users`): who may
sign in, their role and, for a therapist, their therapist id. Passwords are argon2id hashes
(argon2-cffi defaults, RFC 9106). Failed sign-ins are counted per e-mail address in
`sign_in_attempts` — also for addresses that have no account, so the answer and the lockout
never tell an attacker which addresses exist.

    python -m services.portal.users add --email E --name N --role R [--therapist-id T]
    (the password from RAPPORT_USER_PASSWORD, or asked for)
"""
from __future__ import annotations

import argparse
import getpass
import os
import re
import sys
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from shared.auth import STAFF_ROLES

MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
MIN_PASSWORD = 10
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_hasher = PasswordHasher()
# Verified against when the address is unknown, so both answers take as long.
_DUMMY_HASH = _hasher.hash("not-a-password-" + uuid.uuid4().hex)


class UserError(ValueError):
    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


class LockedOut(Exception):
    def __init__(self, until: datetime):
        super().__init__(f"locked until {until.isoformat()}")
        self.until = until


@dataclass(frozen=True)
class User:
    id: str
    email: str
    name: str
    role: str
    therapist_id: str | None

    @classmethod
    def from_doc(cls, doc: dict) -> "User":
        return cls(id=doc["_id"], email=doc["email"], name=doc["name"], role=doc["role"],
                   therapist_id=doc.get("therapist_id"))


def normalise_email(email: str) -> str:
    return (email or "").strip().lower()


class UserStore:
    def __init__(self, db):
        self.users = db["users"]
        self.attempts = db["sign_in_attempts"]

    def ensure_indexes(self) -> None:
        self.users.create_indexes([IndexModel([("email", ASCENDING)], unique=True)])

    def add(self, *, email: str, name: str, role: str, password: str,
            therapist_id: str | None = None) -> User:
        email = normalise_email(email)
        if not EMAIL.match(email):
            raise UserError("email", "not an e-mail address")
        if not name.strip():
            raise UserError("name", "required")
        if role not in STAFF_ROLES:
            raise UserError("role", f"must be one of {', '.join(STAFF_ROLES)}")
        if role == "therapist" and not therapist_id:
            raise UserError("therapist_id", "required for a therapist")
        if len(password) < MIN_PASSWORD:
            raise UserError("password", f"at least {MIN_PASSWORD} characters")
        doc = {"_id": uuid.uuid4().hex, "email": email, "name": name.strip(), "role": role,
               "therapist_id": therapist_id if role == "therapist" else None,
               "password_hash": _hasher.hash(password), "created_at": _now()}
        try:
            self.users.insert_one(doc)
        except DuplicateKeyError:
            raise UserError("email", "a user with this e-mail already exists")
        return User.from_doc(doc)

    def get(self, user_id: str) -> User | None:
        doc = self.users.find_one({"_id": user_id})
        return User.from_doc(doc) if doc else None

    def by_email(self, email: str) -> User | None:
        doc = self.users.find_one({"email": normalise_email(email)})
        return User.from_doc(doc) if doc else None

    def authenticate(self, email: str, password: str, now: datetime | None = None) -> User | None:
        """The user, or None for a wrong address or password. Raises LockedOut while the
        address is locked — even for the right password, or the lockout would be an oracle."""
        now = now or _now()
        email = normalise_email(email)
        record = self.attempts.find_one({"_id": email}) or {}
        locked_until = record.get("locked_until")
        if locked_until and locked_until > now:
            raise LockedOut(locked_until)
        doc = self.users.find_one({"email": email})
        if doc and _verify(doc["password_hash"], password):
            self.attempts.delete_one({"_id": email})
            if _hasher.check_needs_rehash(doc["password_hash"]):
                self.users.update_one({"_id": doc["_id"]},
                                      {"$set": {"password_hash": _hasher.hash(password)}})
            return User.from_doc(doc)
        if not doc:
            _verify(_DUMMY_HASH, password)
        self._fail(email, record, now)
        return None

    def _fail(self, email: str, record: dict, now: datetime) -> None:
        # A lock that has run out starts a fresh count.
        if record.get("locked_until") and record["locked_until"] <= now:
            self.attempts.update_one({"_id": email}, {"$set": {"failures": 0, "locked_until": None}})
        after = self.attempts.find_one_and_update(
            {"_id": email}, {"$inc": {"failures": 1}, "$set": {"last_failure_at": now}},
            upsert=True, return_document=ReturnDocument.AFTER)
        if after["failures"] >= MAX_FAILURES:
            self.attempts.update_one({"_id": email}, {"$set": {
                "locked_until": now + LOCKOUT, "failures": 0}})


def _verify(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


def _now() -> datetime:
    return datetime.now(timezone.utc)


def store_for(settings) -> UserStore:
    from shared.mongo import client
    store = UserStore(client(settings.mongo_uri)[settings.database("portal")])
    store.ensure_indexes()
    return store


def main(argv=None) -> int:
    from shared.config import Settings
    parser = argparse.ArgumentParser(prog="python -m services.portal.users")
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add", help="add a staff user")
    add.add_argument("--email", required=True)
    add.add_argument("--name", required=True)
    add.add_argument("--role", required=True, choices=STAFF_ROLES)
    add.add_argument("--therapist-id")
    args = parser.parse_args(argv)
    password = os.environ.get("RAPPORT_USER_PASSWORD") or getpass.getpass("Password: ")
    try:
        user = store_for(Settings.from_env()).add(email=args.email, name=args.name, role=args.role,
                                                  password=password, therapist_id=args.therapist_id)
    except UserError as err:
        print(f"refused: {err.field}: {err.reason}", file=sys.stderr)
        return 2
    print(f"added {user.email} ({user.role}) id={user.id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
