"""Slot claims: the write-side guard against double booking.

A booking inserts one document per 10-minute bucket for the therapist, the client and the
room, keyed by a unique `_id`, in the same transaction as its events. Two racing bookings
of one slot cannot both commit: the store's unique key decides, not a check-then-write.
Cancelling or rescheduling releases (or moves) the claims in the same transaction too.
Claims also answer "who is busy when" for slot search and course planning, consistently
with the write side (the diary projection may lag behind)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from pymongo import ASCENDING, IndexModel
from pymongo.client_session import ClientSession
from pymongo.collection import Collection
from pymongo.errors import BulkWriteError, DuplicateKeyError

from shared.domain import Conflict

from ..domain import diary

COLLECTION = "slot_claims"


class SlotTaken(Conflict):
    def __init__(self, key: str):
        super().__init__(diary.clash_reason(key), code="slot_taken")
        self.key = key


def ensure_indexes(collection: Collection) -> None:
    collection.create_indexes(
        [
            IndexModel([("scope", ASCENDING), ("bucket", ASCENDING)], name="scope_bucket"),
            IndexModel([("session_id", ASCENDING)], name="session"),
        ]
    )


def _doc(key: str, session_id: str) -> dict:
    scope, _, bucket = key.partition("|")
    return {"_id": key, "scope": scope, "bucket": bucket, "session_id": session_id}


def take(collection: Collection, session: ClientSession, claims: Iterable[tuple[str, str]]) -> None:
    """Insert (key, session_id) claims in one ordered `insert_many` (one round trip for a
    booking's 15 claims, or a course's 240, instead of one each); the first key already
    held stops it, and SlotTaken aborts the transaction. A racing booking of the same key
    that has not committed yet makes the store raise a transient write conflict instead:
    the transaction is run again and then meets the committed claim."""
    docs = [_doc(key, session_id) for key, session_id in claims]
    if not docs:
        return
    try:
        collection.insert_many(docs, ordered=True, session=session)
    except DuplicateKeyError as err:
        raise SlotTaken(_held_key(err, docs)) from None
    except BulkWriteError as err:
        errors = err.details.get("writeErrors", [])
        if not errors or errors[0].get("code") != 11000:
            raise
        raise SlotTaken(docs[errors[0].get("index", 0)]["_id"]) from None


def _held_key(err: DuplicateKeyError, docs: list[dict]) -> str:
    key = (err.details or {}).get("keyValue", {}).get("_id")
    return key if key is not None else docs[0]["_id"]


def release(collection: Collection, session: ClientSession, session_id: str) -> None:
    collection.delete_many({"session_id": session_id}, session=session)


def busy(
    collection: Collection, scopes: Iterable[str], start: datetime, end: datetime
) -> frozenset[str]:
    """Claim keys held in `scopes` between two instants (bucket strings sort as times)."""
    lo = (start - diary.SESSION).astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
    hi = (end + timedelta(hours=1)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
    keys: set[str] = set()
    for scope in scopes:
        for doc in collection.find(
            {"scope": scope, "bucket": {"$gte": lo, "$lte": hi}}, {"_id": 1}
        ):
            keys.add(doc["_id"])
    return frozenset(keys)


def future_sessions(collection: Collection, client_id: str, after: datetime) -> list[str]:
    """Ids of a client's sessions still holding claims after `after` (booked, not cancelled)."""
    lo = after.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
    ids = {
        d["session_id"]
        for d in collection.find(
            {"scope": f"client:{client_id}", "bucket": {"$gte": lo}}, {"session_id": 1}
        )
    }
    return sorted(ids)
