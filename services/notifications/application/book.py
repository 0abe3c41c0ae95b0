"""The message book: every notification the service means to send, durable in MongoDB and
keyed by its idempotency key. It is not a rebuildable read model (a rebuild must never
send anything again), so it lives outside the projection generations.

States: pending → sending (claimed with a lease) → sent | pending again (retry with
backoff) | failed (for good); pending → voided (the appointment moved or was cancelled, the
request withdrawn, the client discharged). Planning writes carry `as_of`, the time of the
fact behind them, so an older fact replayed later never undoes a newer one."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

from pymongo import ASCENDING, IndexModel, InsertOne, UpdateMany, UpdateOne
from pymongo.errors import BulkWriteError, OperationFailure

from shared.events import utcnow
from shared.mongo import delete_in_pieces, write_together

from ..domain.plans import PRIORITIES, URGENT

PENDING, SENDING, SENT, FAILED, VOIDED = "pending", "sending", "sent", "failed", "voided"
STATUSES = (PENDING, SENDING, SENT, FAILED, VOIDED)

# A message's status changes at every step (claimed, sent, retried, voided), and each index
# holding it is rewritten then: the claim and the mark of every message sent were the
# store's largest item in the flows (bench/README.md, issue 14). So the status is in only
# the two indexes whose reads need it: the dispatchers' look for due messages (a look for
# lapsed claims, status "sending", is served by the same index's prefix), and a therapist's
# scheduled messages, one of thousands of theirs over the years. A session's, a client's and
# the unannounced voids are a few messages each, read by the other field alone.
INDEXES = {
    "messages": [
        IndexModel([("status", ASCENDING), ("priority", ASCENDING), ("next_at", ASCENDING)]),
        IndexModel([("announced", ASCENDING), ("announce_at", ASCENDING)]),
        IndexModel([("void_announced", ASCENDING)]),
        IndexModel([("session_id", ASCENDING)]),
        IndexModel([("request_id", ASCENDING)]),
        IndexModel([("task_id", ASCENDING)]),
        IndexModel([("client_id", ASCENDING)]),
        IndexModel([("therapist_id", ASCENDING), ("status", ASCENDING)]),
        IndexModel([("created_at", ASCENDING)]),
    ],
    "inbox": [
        IndexModel([("audience", ASCENDING), ("created_at", ASCENDING)]),
        IndexModel([("alert_id", ASCENDING)]),
    ],
}
# indexes of earlier versions, dropped where a book still has them (ensure_indexes)
RETIRED = {
    "messages": [
        "status_1_lease_until_1",
        "void_announced_1_status_1",
        "session_id_1_status_1",
        "client_id_1_status_1",
        "announced_1",
    ],
}
# a message due when it is planned is its sender's to announce for so long: the sender
# records its NotificationScheduled with its NotificationSent (`announce_at`)
SENT_SOON = timedelta(seconds=60)


def announce_at(message: dict, planned_at: datetime) -> datetime | None:
    """When the dispatcher's announcer may record a planned message's NotificationScheduled
    (workers/dispatcher.py, `announce`): at once for one due later (a reminder), SENT_SOON
    after it was planned for one due by then (a confirmation, a questionnaire link: its
    sender records it with its NotificationSent, a transaction fewer), never for a risk
    alert, which is left to whoever sends it. The announcer reads the messages whose time
    has come through the (announced, announce_at) index: it read every message not yet
    announced, those left to their senders included, each look 15 ms of the notifications
    store's CPU with the flows offered 50 ticks/s, and kept a few (issue 14, session 38)."""
    if message.get("priority") == URGENT:
        return None
    next_at = message.get("next_at")
    if next_at is not None and next_at <= planned_at:
        return planned_at + SENT_SOON
    return planned_at


def ensure_indexes(db) -> None:
    for name, indexes in INDEXES.items():
        db[name].create_indexes(indexes)
    retire_indexes(db)
    time_announcements(db)


def time_announcements(db) -> None:
    """Give each message not yet announced that was planned before `announce_at` existed
    its time to be announced (as it would have been planned), together in one transaction
    (`write_together`)."""
    untimed = {"announced": False, "announce_at": {"$exists": False}}
    messages = db["messages"]
    writes = [
        UpdateOne(
            {"_id": doc["_id"], **untimed},
            {"$set": {"announce_at": announce_at(doc, doc.get("created_at") or utcnow())}},
        )
        for doc in messages.find(untimed, {"priority": 1, "next_at": 1, "created_at": 1})
    ]
    if writes:
        write_together(messages, writes)


def retire_indexes(db) -> None:
    """Drop the indexes an earlier version made (RETIRED) where they are still there."""
    for name, retired in RETIRED.items():
        present = set(db[name].index_information())
        for index in retired:
            if index in present:
                try:
                    db[name].drop_index(index)
                except OperationFailure as err:
                    if err.code != 27:  # IndexNotFound: another process dropped it first
                        raise


class MessageBook:
    """Operations on `messages` (and the client `preferences`), optionally inside a
    transaction (`session`), as the planner's projection writes are."""

    def __init__(self, db, session=None):
        self.db, self.session = db, session
        self.messages, self.preferences, self.inbox = db["messages"], db["preferences"], db["inbox"]

    # -- planning ----------------------------------------------------------------------
    def known(self, keys: list[str]) -> dict[str, dict]:
        """The messages of `keys` the book holds, {key: {status, as_of, kind}}, in one read:
        what `plan` needs of them, read once for a plan and what decides it."""
        if not keys:
            return {}
        return {
            d["_id"]: d
            for d in self.messages.find(
                {"_id": {"$in": list(dict.fromkeys(keys))}},
                {"status": 1, "as_of": 1, "kind": 1},
                session=self.session,
            )
        }

    def plan(
        self, planned: list[dict], as_of: datetime, known: dict[str, dict] | None = None
    ) -> None:
        """Write what a fact plans, as of the fact's time: a new message is inserted, a
        pending one planned by an older fact is replaced, a voided one from an older fact is
        revived; one sent, being sent, failed, or planned by a newer fact stays as it is.
        A few round trips whatever the number of messages: one read (none when the caller
        read `known` already, in the same transaction) and one unordered bulk write, which
        goes as one insert of the new messages and one update of the known ones, each
        update repeating its condition, so a dispatcher claiming meanwhile wins. A booking
        plans a confirmation and its reminders, a risk answer four alerts, and planning
        them one by one cost up to three writes each (issue 14). A new message goes as an
        insert: the local store answers an upsert with a read and a write (bench/README.md)."""
        self.plan_all([(planned, as_of)], known)

    def plan_all(
        self, plans: list[tuple[list[dict], datetime]], known: dict[str, dict] | None = None
    ) -> None:
        """`plan` for several facts at once [(planned, as of)], in one read and one write: a
        batch of bookings the planner plans together (projections/planner.py). A key planned
        by two of them is the later one's (as `plan` after `plan`, in their order)."""
        wanted: dict[str, tuple[dict, datetime]] = {}
        for planned, as_of in plans:
            for m in planned:  # the last plan of a key wins, as before
                wanted.pop(m["_id"], None)
                wanted[m["_id"]] = (m, as_of)
        if not wanted:
            return
        s = self.session
        if known is None:
            known = self.known(list(wanted))
        writes: list[InsertOne | UpdateOne] = []
        for key, (message, as_of) in wanted.items():
            body = {k: v for k, v in message.items() if k != "_id"}
            found = known.get(key)
            if found is None:
                now = utcnow()
                fresh = {
                    **body,
                    "status": PENDING,
                    "attempts": 0,
                    "announced": False,
                    "announce_at": announce_at(body, now),
                    "as_of": as_of,
                    "created_at": now,
                    "last_error": None,
                }
                writes.append(InsertOne({"_id": key, **fresh}))
            elif found["status"] == PENDING and found["as_of"] <= as_of:
                writes.append(
                    UpdateOne(
                        {"_id": key, "status": PENDING, "as_of": {"$lte": as_of}},
                        {"$set": {**body, "as_of": as_of}},
                    )
                )
            elif found["status"] == VOIDED and found["as_of"] < as_of:
                revived = {
                    **body,
                    "as_of": as_of,
                    "status": PENDING,
                    "announced": False,
                    "announce_at": announce_at(body, utcnow()),
                    "void_reason": None,
                }
                writes.append(
                    UpdateOne(
                        {"_id": key, "status": VOIDED, "as_of": {"$lt": as_of}},
                        {"$set": revived},
                    )
                )
        if not writes:
            return
        try:  # one write per key: their order does not matter
            self.messages.bulk_write(writes, ordered=False, session=s)
        except BulkWriteError as err:
            if any(e.get("code") != 11000 for e in err.details.get("writeErrors", [])):
                raise
            # planned at the same moment by another writer: the same key, the same message

    def void(self, query: dict, reason: str, as_of: datetime) -> int:
        result = self.messages.update_many(
            *self._voiding(query, reason, as_of), session=self.session
        )
        return result.modified_count

    def void_each(self, voids: list[tuple[dict, str, datetime]]) -> int:
        """`void` for several (query, reason, as of) in one round trip, in their order."""
        if not voids:
            return 0
        result = self.messages.bulk_write(
            [UpdateMany(*self._voiding(q, reason, as_of)) for q, reason, as_of in voids],
            ordered=True,
            session=self.session,
        )
        return result.modified_count

    @staticmethod
    def _voiding(query: dict, reason: str, as_of: datetime) -> tuple[dict, dict]:
        """A pending message of `query` planned by a fact no later than `as_of`, voided."""
        return (
            {**query, "status": PENDING, "as_of": {"$lte": as_of}},
            {
                "$set": {
                    "status": VOIDED,
                    "void_reason": reason,
                    "void_announced": False,
                    "voided_at": utcnow(),
                    "as_of": as_of,
                }
            },
        )

    def keep_only(self, query: dict, keys: list[str], reason: str, as_of: datetime) -> int:
        """Void the pending messages matching `query` that are not among `keys`."""
        return self.void({**query, "_id": {"$nin": keys}}, reason, as_of)

    def preferences_of(self, client_id: str) -> dict | None:
        return self.preferences.find_one({"_id": client_id}, session=self.session)

    def preferences_of_all(self, client_ids: list[str]) -> dict[str, dict]:
        """The preferences of those of `client_ids` who set any, by client id, in one read."""
        found = self.preferences.find({"_id": {"$in": client_ids}}, session=self.session)
        return {d["_id"]: d for d in found}

    # -- sending -------------------------------------------------------------------------
    def claim_many(
        self, lease: timedelta, by: str, limit: int, *, urgent_only: bool = False
    ) -> Iterator[dict]:
        """Take up to `limit` due messages (`due`), each by its own atomic claim, sent
        together (`claim_all`). A message another sender claims between the look and the
        claim is simply not yielded."""
        now = utcnow()
        due = self.due(limit, now, urgent_only=urgent_only)
        yield from self.claim_all(due, lease, by, now, urgent_only=urgent_only)

    def due(
        self, limit: int, now: datetime, *, urgent_only: bool = False, orphans: bool = True
    ) -> list[dict]:
        """Up to `limit` messages to claim now, whole (`claim` takes one as found): those
        whose sender died first (looked for unless `orphans` is false), then the most urgent
        and the longest due, those to a person before inbox entries."""
        stale, due = self._claimable(now, urgent_only)
        found = list(self.messages.find(stale).limit(limit)) if orphans else []
        # one look per priority, the most urgent first: with the priority given, the store
        # serves the look from the (status, priority, next_at) index; without it, the local
        # store read every pending message, reminders weeks ahead included (128 ms a look
        # with 5,000 of them, against 1.2 ms: bench/README.md, gaps of the local servers)
        for priority in (URGENT,) if urgent_only else PRIORITIES:
            if len(found) >= limit:
                break
            more = self.messages.find({**due, "priority": priority})
            found += list(more.sort("next_at", ASCENDING).limit(limit - len(found)))
        # an e-mail or a text reaches a person wherever they are; the inbox entry is one
        # local write: start those first (stable, so urgency and time order are kept)
        found.sort(key=lambda d: d.get("channel") == "inbox")
        return found

    def claim(
        self, found: dict, lease: timedelta, by: str, now: datetime, *, urgent_only: bool = False
    ) -> dict | None:
        """Claim one message `due` found, if it is still as found and to be claimed: the
        message as claimed, or None. (One `update_many` for several would be fewer round
        trips, but on the local store a multi-document update outside a transaction that met
        a transaction's write, the announcer marking the same alerts, wedged the whole store:
        bench/README.md.)

        The claim is one conditional `update_one` by `_id`: due, or for a message found with
        a sender's lapsed lease, that lease lapsed; planned by the same fact (`as_of`) and
        tried as often (`attempts`) as when it was found. Whatever changes what a message
        says, or tries it, changes one of those (`plan_all`, `_release`) or its status, so
        the message as claimed is the one found with the claim's changes, and no read
        follows: the claim was an update and a read by the claim's token, one operation of
        the store per message more (issue 14), and an update of each kind when the first
        found it taken. The local store answers a `findAndModify`, and any filter with
        `$or`, by reading the whole collection (207 ms a claim among 10,000 messages,
        against 5 ms: bench/README.md, gaps of the local servers)."""
        claiming = self._claiming(lease, by, now)
        query = self._claim_query(found, now, urgent_only)
        if not self.messages.update_one(query, claiming).modified_count:
            return None  # claimed by another sender, changed, or no longer due
        return self._as_claimed(found, claiming)

    def claim_all(
        self,
        found: list[dict],
        lease: timedelta,
        by: str,
        now: datetime,
        *,
        urgent_only: bool = False,
    ) -> list[dict]:
        """Claim the messages `due` found, each by its own conditional update as `claim`
        makes it, all sent in one command (single-document updates, not one `update_many`)
        in one transaction; the messages as claimed, in their order. Those claimed are read
        back, by the claim's token, only when some were not (another sender took them, or
        they changed). One claim per message, sent side by side, was a round trip of the
        store's each, and the main dispatcher's batches waited for the slowest: at 47 ticks
        a second a confirmation waited 8 s between being planned and claimed (issue 14).
        Outside a transaction, the store committed, and synced to disk, each message's
        claim by itself: 0.8 ms of its CPU a message, and 38-50 ms for the urgent lane's
        claim of a risk answer's four or five, with the flows offered 50 ticks/s (session
        38). A claim that meets another sender's is run again whole (`write_together`),
        and takes what is still to be taken."""
        if len(found) <= 1:
            claimed = [self.claim(doc, lease, by, now, urgent_only=urgent_only) for doc in found]
            return [m for m in claimed if m is not None]
        claiming = self._claiming(lease, by, now)
        result = write_together(
            self.messages,
            [UpdateOne(self._claim_query(doc, now, urgent_only), claiming) for doc in found],
        )
        if result.modified_count == len(found):
            return [self._as_claimed(doc, claiming) for doc in found]
        ours = {
            d["_id"]
            for d in self.messages.find(
                {"_id": {"$in": [doc["_id"] for doc in found]}, "claim": claiming["$set"]["claim"]},
                {"_id": 1},
            )
        }
        return [self._as_claimed(doc, claiming) for doc in found if doc["_id"] in ours]

    def _claim_query(self, found: dict, now: datetime, urgent_only: bool) -> dict:
        """The message as found, still to be claimed (see `claim`)."""
        stale, due = self._claimable(now, urgent_only)
        return {
            "_id": found["_id"],
            **(stale if found.get("status") == SENDING else due),
            "as_of": found.get("as_of"),  # (None matches a message without one, as found)
            "attempts": found.get("attempts"),
        }

    @staticmethod
    def _as_claimed(found: dict, claiming: dict) -> dict:
        return {**found, **claiming["$set"], "attempts": (found.get("attempts") or 0) + 1}

    @staticmethod
    def _claimable(now: datetime, urgent_only: bool) -> tuple[dict, dict]:
        """(a claim whose sender died, a pending message due), as queries."""
        only = {"priority": URGENT} if urgent_only else {}
        stale = {"status": SENDING, "lease_until": {"$lt": now}, **only}
        due = {"status": PENDING, "next_at": {"$lte": now}, **only}
        return stale, due

    @staticmethod
    def _claiming(lease: timedelta, by: str, now: datetime) -> dict:
        return {
            "$set": {
                "status": SENDING,
                "lease_until": now + lease,
                "claim": uuid.uuid4().hex,
                "claimed_at": now,
                "claimed_by": by,
            },
            "$inc": {"attempts": 1},
        }

    def _mine(self, message: dict) -> dict:
        return {"_id": message["_id"], "status": SENDING, "claim": message["claim"]}

    def _release(self, message: dict, change: dict, session=None) -> bool:
        """End this sender's claim on the message with `change` (its new state); False when
        the claim was no longer ours (its lease ran out and another sender took it)."""
        result = self.messages.update_one(
            self._mine(message),
            {**change, "$unset": {"claim": "", "lease_until": ""}},
            session=session,
        )
        return result.modified_count == 1

    def defer(self, message: dict, until: datetime, why: str) -> bool:
        """Put a claimed message back untried (quiet hours): the attempt does not count."""
        return self._release(
            message,
            {
                "$set": {"status": PENDING, "next_at": until, "deferred": why},
                "$inc": {"attempts": -1},
            },
        )

    def retry_later(self, message: dict, until: datetime, error: str, session=None) -> bool:
        change = {"status": PENDING, "next_at": until, "last_error": error, "announced": True}
        return self._release(message, {"$set": change}, session)

    def mark_failed(self, message: dict, error: str, session=None) -> bool:
        change = {"status": FAILED, "failed_at": utcnow(), "last_error": error, "announced": True}
        return self._release(message, {"$set": change}, session)

    def mark_sent(self, message: dict, session=None) -> bool:
        return self.mark_all_sent([message], session) == 1

    def mark_all_sent(self, messages: list[dict], session=None) -> int:
        """Several claimed messages sent, in one write (each still on its own claim's
        condition); how many were still this sender's."""
        if not messages:
            return 0
        change = {
            "$set": {"status": SENT, "sent_at": utcnow(), "last_error": None, "announced": True},
            "$unset": {"claim": "", "lease_until": ""},
        }
        writes = [UpdateOne(self._mine(m), change) for m in messages]
        return self.messages.bulk_write(writes, ordered=False, session=session).modified_count

    def mark_announced(self, flags: dict[str, dict], session) -> None:
        """{message id: the flags its announcement sets}, in one write."""
        if flags:
            writes = [UpdateOne({"_id": key}, {"$set": f}) for key, f in flags.items()]
            self.messages.bulk_write(writes, ordered=False, session=session)

    def void_claimed(self, message: dict, reason: str) -> bool:
        """A claimed message that must not go after all (consent withdrawn, request gone)."""
        change = {
            "status": VOIDED,
            "void_reason": reason,
            "void_announced": False,
            "voided_at": utcnow(),
        }
        return self._release(message, {"$set": change})


def forget_client(db, client_id: str) -> None:
    """Disposal at the end of the retention period (shared.disposal): the staff inbox items
    about the client go, the delivery log keeps its rows without their details (when, what
    kind, by which channel), and the client's preferences go."""
    # no multi-document write outside a transaction (the inbox in pieces, each a transaction
    # of its own; the messages one at a time): on the local store one that meets a
    # transaction's write (a dispatcher recording a message sent) wedged every transaction of
    # the store (bench/README.md, gaps; seen again in CI, session 8)
    delete_in_pieces(db["inbox"], {"client_id": client_id})
    for doc in list(db["messages"].find({"client_id": client_id}, {"_id": 1})):
        db["messages"].update_one(
            {"_id": doc["_id"]}, {"$set": {"context": {}, "last_error": None}}
        )
    db["preferences"].delete_one({"_id": client_id})
