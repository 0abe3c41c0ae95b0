"""MongoDB access: one client per process, created lazily (so never before gunicorn forks),
and a transaction helper that retries transient conflicts the way the driver intends."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from typing import TypeVar

import pymongo
from pymongo.client_session import ClientSession
from pymongo.collection import Collection
from pymongo.errors import ClientBulkWriteException, DuplicateKeyError, PyMongoError
from pymongo.results import BulkWriteResult

from .config import mongo_options_from_env

T = TypeVar("T")
_clients: dict[str, pymongo.MongoClient] = {}
_lock = threading.Lock()


def client(uri: str) -> pymongo.MongoClient:
    with _lock:
        found = _clients.get(uri)
        if found is None:
            # TLS and credentials from RAPPORT_MONGO_* (deploy/README.md) on every client
            found = pymongo.MongoClient(
                uri,
                serverSelectionTimeoutMS=5000,
                connectTimeoutMS=3000,
                tz_aware=True,
                **mongo_options_from_env(),
            )
            _clients[uri] = found
        return found


def close_all() -> None:
    with _lock:
        for c in _clients.values():
            c.close()
        _clients.clear()


def in_transaction(mongo: pymongo.MongoClient, work: Callable[[ClientSession], T]) -> T:
    """Run `work(session)` in a multi-document transaction. `with_transaction` retries on
    TransientTransactionError (write conflicts) and UnknownTransactionCommitResult, so
    `work` must be safe to run again from the start."""
    with mongo.start_session() as session:
        return session.with_transaction(partial(_transient_unwrapped, work))


def _transient_unwrapped(work: Callable[[ClientSession], T], session: ClientSession) -> T:
    """`work(session)`; a client-level `bulkWrite` that failed on a transient error (a write
    conflict with another transaction) raises that error itself, which carries the label
    `with_transaction` retries on. pymongo wraps it in a ClientBulkWriteException without
    the label, so the transaction was not run again: the consumer took it for the store
    being down and waited out a backoff (0.2 s and up) before the batch went again. The
    measures board did so 15 times in one `flows` run, conflicting with the reactor's flag
    clears (issue 14, session 29)."""
    try:
        return work(session)
    except ClientBulkWriteException as err:
        inner = err.error
        if isinstance(inner, PyMongoError) and inner.has_error_label("TransientTransactionError"):
            raise inner from err
        raise


def write_together(
    collection: Collection, writes: list, *, ordered: bool = False
) -> BulkWriteResult:
    """Several writes to one collection (`bulk_write`'s), sent as one command, in one
    transaction: the local store commits, and syncs to disk, each write sent outside a
    transaction by itself, 0.5-0.8 ms of its CPU a write against 0.3-0.4 in a transaction,
    and a measures reactor's clear of 29 plans' flags took 117-139 ms, a dispatcher's
    claim of a risk answer's four or five alerts 38-50 ms (issue 14, session 38). A write
    that meets another transaction's runs the whole transaction again (`in_transaction`),
    so each write must say, by its filter, what it still applies to. One write goes alone."""
    if len(writes) <= 1:
        return collection.bulk_write(writes, ordered=ordered)
    return in_transaction(
        collection.database.client,
        lambda session: collection.bulk_write(writes, ordered=ordered, session=session),
    )


# documents deleted per transaction by delete_in_pieces: with 32 writers busy on the local
# store, the longest any of them waited while a 30,000-document collection went was 0.21 s at
# 200 (0.25 s at 500; 27 s for a plain drop)
PIECE = 200


def delete_in_pieces(collection: Collection, query: dict, piece: int = PIECE) -> int:
    """Delete what `query` matches, `piece` documents per transaction; the number deleted.
    Used by every delete of several documents outside a transaction (disposal, generations,
    progress). Not one `delete_many` outside a transaction: on the local store such a write
    that meets a transaction's write wedges every transaction of the store (bench/README.md,
    gaps; a generation dropped while its live consumer still applied a batch to it did, in
    CI, session 8); inside one, a conflict aborts it and the driver runs it again. Not one
    `delete_one` at a time either, as until session 20: a round trip per document, and a
    retired generation's ids of the events it applied are thousands. The ids are read once:
    a query from the start for each next piece walks every deleted one that a reader's
    snapshot still keeps (100 at a time from a 30,000-document collection took 465 s)."""
    ids = [d["_id"] for d in collection.find(query, {"_id": 1})]
    for start in range(0, len(ids), piece):

        def work(session: ClientSession, some: list = ids[start : start + piece]) -> None:
            collection.delete_many({"_id": {"$in": some}}, session=session)

        in_transaction(collection.database.client, work)
    return len(ids)


def drop_in_pieces(collection: Collection, piece: int = PIECE) -> int:
    """Drop `collection` once its documents are deleted in pieces (`delete_in_pieces`); the
    number deleted. On the local store a drop removes every row of the collection and of its
    index entries while holding the store's one lock, one synced commit per key: a collection
    of 30,000 documents took 27 s to drop, every other command waiting, and a retired
    generation dropped by a rebuild under the bench's load held it 14 minutes and more
    (bench/README.md, gaps). Between two pieces the store serves everyone else. On MongoDB
    the drop alone would do; the pieces cost a round trip per `piece` documents of a
    collection nothing reads."""
    deleted = delete_in_pieces(collection, {}, piece)
    collection.drop()  # and whatever was written meanwhile (nothing writes a retired one)
    return deleted


def count_by_id(collection: Collection, doc_id: str, update: dict) -> dict:
    """Apply `update` (an `$inc`, with `$setOnInsert`/`$set`) to the document `doc_id`,
    made if missing, and answer the document just after it, exactly as
    `find_one_and_update` would: an update by `_id` and a read by `_id` in one transaction
    (a concurrent increment conflicts and is retried, so no count is shared or lost).
    Not `find_one_and_update` itself: the local store answers a findAndModify by reading
    every document of the collection (10,000 documents: 79 ms, against 1 ms by `_id`;
    bench/README.md, gaps of the local servers)."""

    def work(session: ClientSession) -> dict:
        collection.update_one({"_id": doc_id}, update, upsert=True, session=session)
        found = collection.find_one({"_id": doc_id}, session=session)
        assert found is not None  # written just before, in this transaction
        return found

    for _ in range(3):
        try:
            return in_transaction(collection.database.client, work)
        except DuplicateKeyError:  # two upserts made it at once: it is there now
            continue
    raise RuntimeError(f"{collection.name} {doc_id!r} could not be counted")
