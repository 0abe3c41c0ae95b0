"""Staff users, owned by the portal (database `<prefix>portal`, collection `users`): who may
sign in, their role and, for a therapist, their therapist id. Passwords are argon2id hashes
(argon2-cffi defaults, RFC 9106). Sign-in attempts are counted in `sign_in_attempts` per
e-mail address — also for addresses that have no account, so the answer and the lockout never
tell an attacker which addresses exist — and per source address, so one address cannot try
account after account. An attempt is counted *before* its password is checked, with one atomic
increment: 16 attempts at once get exactly the limit's number of checks, not more. Since
anyone can lock anyone's account that way, a browser the person signed in from before (a
"known device", its cookie token hashed in `known_devices`) still gets in with the right
password while the account or the source address is locked; its own failures are counted on
the device (OWASP Authentication Cheat Sheet, account lockout).

    flask --app services.portal.wsgi users add --email E --name N --role R [--therapist-id T]
    (the password from RAPPORT_USER_PASSWORD, or asked for; services/portal/commands.py)
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from shared.auth import STAFF_ROLES
from shared.mongo import count_by_id

MAX_FAILURES = 5  # per account
MAX_ADDRESS_FAILURES = 20  # per source address: a practice's staff share an office address
LOCKOUT = timedelta(minutes=15)
KNOWN_DEVICE = timedelta(days=180)
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
    def from_doc(cls, doc: dict) -> User:
        return cls(
            id=doc["_id"],
            email=doc["email"],
            name=doc["name"],
            role=doc["role"],
            therapist_id=doc.get("therapist_id"),
        )


def normalise_email(email: str) -> str:
    return (email or "").strip().lower()


class UserStore:
    def __init__(self, db):
        self.users = db["users"]
        self.attempts = db["sign_in_attempts"]
        self.devices = db["known_devices"]

    def ensure_indexes(self) -> None:
        self.users.create_indexes([IndexModel([("email", ASCENDING)], unique=True)])

    def add(
        self, *, email: str, name: str, role: str, password: str, therapist_id: str | None = None
    ) -> User:
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
        doc = {
            "_id": uuid.uuid4().hex,
            "email": email,
            "name": name.strip(),
            "role": role,
            "therapist_id": therapist_id if role == "therapist" else None,
            "password_hash": _hasher.hash(password),
            "created_at": _now(),
        }
        try:
            self.users.insert_one(doc)
        except DuplicateKeyError:
            raise UserError("email", "a user with this e-mail already exists") from None
        return User.from_doc(doc)

    def get(self, user_id: str) -> User | None:
        doc = self.users.find_one({"_id": user_id})
        return User.from_doc(doc) if doc else None

    def by_email(self, email: str) -> User | None:
        doc = self.users.find_one({"email": normalise_email(email)})
        return User.from_doc(doc) if doc else None

    def authenticate(
        self,
        email: str,
        password: str,
        now: datetime | None = None,
        *,
        source: str | None = None,
        device: str | None = None,
    ) -> User | None:
        """The user, or None for a wrong address or password. Raises LockedOut while the
        address (or the source) is locked — even for the right password, or the lockout would
        be an oracle — unless `device` is a known-device token of this very user."""
        now = now or _now()
        email = normalise_email(email)
        doc = self.users.find_one({"email": email})
        known = bool(doc and device and self.is_known_device(doc["_id"], device, now))
        if known:
            # the person's own browser: neither the account's lock nor the address's (behind
            # a shared office address or an ingress, strangers' failures count there) keeps
            # them out; guesses with a stolen device cookie are throttled on the device
            counters = [(f"device:{_digest(device)}", MAX_FAILURES)]
        else:
            counters = [(email, MAX_FAILURES)]
            if source:
                counters.append((f"addr:{source}", MAX_ADDRESS_FAILURES))
        claimed: list[str] = []
        try:
            for key, limit in counters:
                self._claim(key, limit, now)
                claimed.append(key)
        except LockedOut:
            for key in claimed:
                self._release(key)
            raise
        if doc and _verify(doc["password_hash"], password):
            for key in claimed:  # a success costs nothing and clears the account's count
                if key == email or key.startswith("device:"):
                    self.attempts.delete_one({"_id": key})
                else:
                    self._release(key)
            if _hasher.check_needs_rehash(doc["password_hash"]):
                self.users.update_one(
                    {"_id": doc["_id"]}, {"$set": {"password_hash": _hasher.hash(password)}}
                )
            return User.from_doc(doc)
        if not doc:
            _verify(_DUMMY_HASH, password)
        for key, limit in counters:
            self._lock_if_spent(key, limit, now)
        return None

    def _claim(self, key: str, limit: int, now: datetime) -> None:
        """Count this attempt before the password is checked (one atomic $inc), so parallel
        attempts cannot all pass a check-then-count. Raises LockedOut past the limit."""
        # a lock that has run out starts a fresh count
        self.attempts.update_one(
            {"_id": key, "locked_until": {"$ne": None, "$lte": now}},
            {"$set": {"failures": 0, "locked_until": None}},
        )
        after = self._count(key, now)
        locked_until = after.get("locked_until")
        if locked_until is None and after["failures"] > limit:
            # more attempts arrived at once than the limit allows: lock now
            self.attempts.update_one(
                {"_id": key, "locked_until": None}, {"$set": {"locked_until": now + LOCKOUT}}
            )
            locked_until = self.attempts.find_one({"_id": key})["locked_until"]
        if locked_until is not None and locked_until > now:
            self._release(key)
            raise LockedOut(locked_until)

    def _count(self, key: str, now: datetime) -> dict:
        """One increment of the key's failure counter, made if missing, and the counter
        after it (shared.mongo.count_by_id: a lost count would be an attempt past the limit,
        and a race between two upserts is taken care of there)."""
        try:
            return count_by_id(
                self.attempts,
                key,
                {
                    "$inc": {"failures": 1},
                    "$set": {"last_failure_at": now},
                    "$setOnInsert": {"locked_until": None},
                },
            )
        except RuntimeError:  # the counter cannot be kept: refuse rather than let through
            raise LockedOut(now + LOCKOUT) from None

    def _release(self, key: str) -> None:
        """An attempt that was refused unchecked, or that succeeded, is not a failure."""
        self.attempts.update_one({"_id": key, "failures": {"$gt": 0}}, {"$inc": {"failures": -1}})

    def _lock_if_spent(self, key: str, limit: int, now: datetime) -> None:
        self.attempts.update_one(
            {"_id": key, "failures": {"$gte": limit}, "locked_until": None},
            {"$set": {"locked_until": now + LOCKOUT}},
        )

    # -- known devices ---------------------------------------------------------------------
    def remember_device(self, user: User, now: datetime | None = None) -> str:
        """A new known-device token for the browser `user` just signed in from (shown once:
        only its hash is kept, as for every credential)."""
        token = secrets.token_urlsafe(32)
        self.devices.insert_one(
            {"_id": _digest(token), "user_id": user.id, "last_used_at": now or _now()}
        )
        return token

    def is_known_device(self, user_id: str, token: str, now: datetime | None = None) -> bool:
        now = now or _now()
        # an update by _id, not find_one_and_update: the local store answers a findAndModify
        # by reading every device ever remembered (bench/README.md, gaps of the local servers)
        found = self.devices.update_one(
            {
                "_id": _digest(token),
                "user_id": user_id,
                "last_used_at": {"$gt": now - KNOWN_DEVICE},
            },
            {"$set": {"last_used_at": now}},
        )
        return found.matched_count == 1


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _verify(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


def _now() -> datetime:
    return datetime.now(UTC)
