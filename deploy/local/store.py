"""The local store as Rapport runs it: SecantusDB's own command line (`secantusd-py`), with
its two session registries kept to the sessions in use, each database's profiling settings
kept in memory rather than read from disk on every command, and a collection's index
definitions read once per command rather than several times per write (issue 14).

SecantusDB 0.7.0b3 walks a registry of sessions on every command, and one of them never
shrinks, so the store grows slower with every session it has ever seen:
- every command that carries a session id (pymongo sends one with every command) refreshes
  `SessionRegistry` and then scans all of it for sessions idle 30 minutes;
- every statement, commit and abort in a transaction scans all of `TransactionRegistry` for
  transactions past their lifetime, and a session's last transaction stays in it for good:
  ending the session (`endSessions`) only aborts it.
A driver makes new sessions whenever a process starts, a client is made, or its pooled
sessions go stale after half an hour idle, so a `make up` left running for days, a test run
and a bench all accumulate them. Measured on this machine with one client (bench/README.md,
gaps of the local servers): transactions of one update fell from 879/s on a fresh store to
89/s once 12,000 sessions had run one, and `find_one` from 3,551/s to 1,592/s; the `store`
section of `make bench` measures both stores side by side.

Two costs of every write are cut as well (issue 14, session 23): an update rewrites only the
index entries its change changed (`_entries_kept`), and the oplog, which only change streams
read, is written once a change stream has been opened (`_oplog_once_watched`; Rapport opens
none unless RAPPORT_CHANGE_STREAMS is on).

A collection's index definitions and options are kept from one command to the next
(`keep_definitions`), forgotten by every write of the tables they are read from; a document
that flags no index multikey, and an insert into a collection that is there already, write
neither (session 32: until then every write forgot them, so none was kept). A filter with an
`_id` equality beside other fields looks the `_id` up first (`_id_first`). WiredTiger's
cursors pack their keys and values with each format read once (`_pack_kept`, wtpack.py),
and an update's paths are checked once per shape of update (`_paths_kept`; session 33).
An update's and a projection's copies of a document copy plain dicts and lists and keep
the values that cannot change in place, instead of copy.deepcopy (`_copied`; session 34).
A `$in` of strings alone is matched by a set (`_in_by_set`), and a find with a limit and no
sort reads the documents an index names a limit at a time until it has them
(`_limit_early`; session 38). The TTL sweeper, a thread of the store's own that sweeps
once a minute, lets go of its engine snapshot after each sweep instead of holding it until
the next (`_sweep_lets_go`; session 39).

Here the scan of the sessions runs at most once per `SWEEP_SECONDS` instead of on every
command, with the same idle limit, and the scan of the transactions, still on every
statement as shipped (`_prune_transactions` says why), forgets a session's transaction once
it has been committed or aborted for `FINISHED_KEPT_SECONDS`: an answer to a retried commit
(idempotent while it is kept) is then as old as a driver ever retries one (pymongo's
`with_transaction` gives up after 120 s). Once its code is loaded, it is kept out of the
garbage collector's full passes (`main`, as shared/heap.py does for Rapport's processes;
session 37). Everything else is the store's own code. Real MongoDB (docker-compose, k8s)
needs none of this.

    python deploy/local/store.py --host 127.0.0.1 --port PORT --storage-path DIR ...
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import gc
import logging
import os
import sys
import threading
import time
import types
import uuid
from collections import Counter
from collections.abc import Mapping
from importlib.metadata import version

import bson
from secantus import projection as projections
from secantus import query as queries
from secantus import server, sessions, storage, transactions
from secantus import update as updates

try:  # run as a script (python deploy/local/store.py) or imported by the tests
    from deploy.local import wtpack
except ImportError:
    import wtpack

PATCHED_FOR = "0.7.0b3"  # the SecantusDB these registries were read in (requirements.txt)
SWEEP_SECONDS = 1.0
# a driver retries a commit for up to 120 s (pymongo's with_transaction); the bench's own
# stores keep them 5 s, so that sessions aged in a minute stand for sessions aged over days
FINISHED_KEPT_SECONDS = float(os.environ.get("RAPPORT_STORE_FINISHED_KEPT", "300"))


def _prune_sessions(self) -> int:
    """SessionRegistry._prune_locked, at most once per SWEEP_SECONDS (under the registry's
    lock, as shipped): drop sessions idle past the TTL."""
    now = self._time()
    if now < getattr(self, "_rapport_next_sweep", 0.0):
        return 0
    self._rapport_next_sweep = now + SWEEP_SECONDS
    cutoff = now - self._idle_ttl
    stale = [k for k, t in self._sessions.items() if t < cutoff]
    for k in stale:
        del self._sessions[k]
    return len(stale)


def _prune_transactions(self) -> int:
    """TransactionRegistry._prune_locked as the store has it, and a finished transaction
    forgotten: on every statement, commit and abort, each transaction is looked at under its
    own mutex and an in-progress one idle past its lifetime is rolled back, as shipped; one
    committed or aborted FINISHED_KEPT_SECONDS ago is then dropped from the registry.

    The look is kept on every call, not swept once a second as the sessions are: it waits on
    the mutex of every transaction whose statement or commit is running, so transactional
    statements go one after another. Without that wait the flows got slower on a fresh store
    (records summary p50 60 -> 94-100 ms), and 8 client threads of transactions and reads
    saw a p50 of 3.9-4.5 ms against 2.2 (bench/README.md, session 14)."""
    now = self._time()
    cutoff, forget_before = now - self._lifetime, now - FINISHED_KEPT_SECONDS
    reaped, finished = 0, []
    for lsid, txn in self._txns.items():
        with txn.mutex:
            if txn.state is transactions.TxnState.IN_PROGRESS:
                if txn.last_use < cutoff:
                    self._rollback_quietly(txn)
                    txn.state = transactions.TxnState.ABORTED
                    reaped += 1
            elif txn.last_use < forget_before:
                finished.append(lsid)
    for lsid in finished:
        del self._txns[lsid]
    return reaped


# a database's profiling settings, as the store last read or wrote them (`_profile_kept`)
_profiles: dict[tuple[int, str], dict] = {}
_profiles_lock = threading.Lock()


def _profile_kept(as_shipped):
    """Storage.get_profile, read from the store's table once per database and then kept: the
    store reads it on every command (to decide whether to profile it), each time a
    WiredTiger lookup under the storage's own lock, 4-5 % of the store's samples with the
    flows offered 50 ticks/s (py-spy, issue 14). `set_profile` is the table's only other
    user (`_profile_written`); a read that missed and a write go one at a time, so what is
    kept is never older than the last write."""

    def get_profile(self, db: str) -> dict:
        key = (id(self), db)
        found = _profiles.get(key)
        if found is None:
            with _profiles_lock:
                found = _profiles.get(key)
                if found is None:
                    found = _profiles[key] = as_shipped(self, db)
        return dict(found)

    return get_profile


def _profile_written(as_shipped):
    """Storage.set_profile, and what `_profile_kept` kept for the database forgotten."""

    def set_profile(self, db: str, **settings) -> None:
        with _profiles_lock:
            try:
                as_shipped(self, db, **settings)
            finally:
                _profiles.pop((id(self), db), None)

    return set_profile


# the index definitions a command read, per thread, while it runs (`_indexes_kept`)
_command = threading.local()


class _Definitions:
    """Index definitions (and the views made of them), and collections' options
    (`_options_kept`), kept from one command to the next, for every thread: a consumer's
    transaction is a dozen commands, and each read the collection's definitions from the
    table again (`_iter_indexes`, a tenth of the store's time holding the GIL with the
    flows offered 50 ticks/s after session 23's other changes; py-spy --gil). Every write
    of the tables (INDEX_WRITERS, COLLECTION_WRITERS) empties them before and after,
    whichever thread makes it. A write made inside a transaction is seen by others only
    once it commits, and until then nothing read is kept (a reader would keep what it read
    before that commit): the transaction is `open` until it commits or aborts, which
    empties them again. What a reader read while a write ran is not kept either
    (`generation`)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.generation = 0
        self.kept: dict = {}
        self.open: set[int] = set()  # transactions (ids) that wrote the table, not yet ended

    def changed(self, transaction: object | None = None, *, ended: bool = False) -> None:
        with self.lock:
            self.generation += 1
            self.kept.clear()
            if transaction is not None:
                if ended:
                    self.open.discard(id(transaction))
                else:
                    self.open.add(id(transaction))

    def get(self, key, make):
        found = self.kept.get(key)
        if found is None:
            generation = self.generation
            found = make()
            with self.lock:
                if generation == self.generation and not self.open:
                    self.kept[key] = found
        return found


_definitions = _Definitions()
# the store's methods that write its table of index definitions (read in 0.7.0b3)
INDEX_WRITERS = (
    "create_index",
    "drop_index",
    "set_index_expiry",
    "set_index_options",
    "drop_all_indexes",
    "drop_collection",
    "drop_database",
    "rename_collection",
    "_recover_pending_drops_locked",
)
# and the one that writes it only for the first array in an index's fields
MARKS = "_maybe_mark_multikey"


# a command slower than this is logged (mongod's own default `slowms`), as are, once a
# second, the commands that failed (by command, namespace and error): the operator's view of
# what the store spends itself on when everything waits on it
SLOW_MS = float(os.environ.get("RAPPORT_STORE_SLOW_MS", "100"))
FAILED_EVERY = 1.0
# commands that wait by design (a driver's monitor, a change stream's or tailable getMore)
WAITING = frozenset({"hello", "isMaster", "ismaster", "getMore"})
log = logging.getLogger("rapport.store")


class _Failures:
    """Failed commands counted by (command, namespace, error) and logged once a second."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Counter[tuple[str, str, str]] = Counter()
        self.next_at = 0.0

    def add(self, key: tuple[str, str, str]) -> None:
        now = time.monotonic()
        with self.lock:
            self.counts[key] += 1
            if now < self.next_at:
                return
            self.next_at = now + FAILED_EVERY
            counts, self.counts = self.counts, Counter()
        log.warning(
            "failed commands: %s",
            "; ".join(f"{n} x {c} {ns}: {e}" for (c, ns, e), n in counts.most_common()),
        )


_failures = _Failures()

# RAPPORT_STORE_TOP=N: every N seconds, the commands that took the store's CPU in them
TOP_EVERY = float(os.environ.get("RAPPORT_STORE_TOP", "0"))
TOP_SHOWN = int(os.environ.get("RAPPORT_STORE_TOP_SHOWN", "12"))  # rows in each log line
# where a write command carries its statements (a driver's bulk write sends several)
STATEMENTS = {"insert": "documents", "update": "updates", "delete": "deletes", "bulkWrite": "ops"}


class _Top:
    """The store's CPU by (command, namespace): each top-level command's thread CPU time
    (`time.thread_time`: its own work, not its waits for locks or the GIL) and its wall time,
    summed and logged every TOP_EVERY seconds, most CPU first."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.spent: dict[tuple[str, str], list] = {}
        self.next_at = time.monotonic() + TOP_EVERY

    def add(self, key: tuple[str, str], cpu: float, wall: float, statements: int) -> None:
        now = time.monotonic()
        with self.lock:
            row = self.spent.setdefault(key, [0, 0.0, 0.0, 0])
            row[0] += 1
            row[1] += cpu
            row[2] += wall
            row[3] += statements
            if now < self.next_at:
                return
            span = now - self.next_at + TOP_EVERY
            self.next_at = now + TOP_EVERY
            spent, self.spent = self.spent, {}
        rows = sorted(spent.items(), key=lambda kv: -kv[1][1])
        total = sum(r[1] for _, r in rows)
        log.warning(
            "top commands over %.1f s: %d commands, %.0f ms CPU (%.0f %% of a core); %s%s",
            span,
            sum(r[0] for _, r in rows),
            total * 1000,
            total / span * 100,
            "; ".join(
                f"{c} {ns}: {n:.0f} x {cpu / n * 1000:.2f} ms CPU, {wall / n * 1000:.1f} ms wall"
                + (f", {s / n:.1f} statements" if s != n else "")
                for (c, ns), (n, cpu, wall, s) in rows[:TOP_SHOWN]
            ),
            f"; engine: {waits}" if (waits := _engine_waits()) else "",
        )


_top = _Top() if TOP_EVERY > 0 else None

# with RAPPORT_STORE_TOP, WiredTiger's own counters of waiting are logged with the commands:
# what the store's threads waited on inside the engine (the busy section's stalls, issue 14)
WT_WAITS = (
    "thread-yield: page acquire time sleeping (usecs)",
    "thread-yield: page acquire busy blocked",
    "thread-yield: page acquire locked blocked",
    "thread-yield: page acquire eviction blocked",
    "cache: forced eviction - pages selected count",
    "cache: forced eviction - pages selected because of too many deleted items count",
    "cache: forced eviction - pages selected unable to be evicted count",
    "cache: forced eviction - pages selected unable to be evicted time",
    "cache: hazard pointer blocked page eviction",
    "cache: uncommitted truncate blocked page eviction",
    "transaction: transaction range of IDs currently pinned",
)
_engine: list = []  # the store's WiredTiger connection, once open (`_counted`)
_engine_seen: dict[str, int] = {}


def _counted(as_shipped):
    """wiredtiger_open with the engine's fast statistics on (RAPPORT_STORE_TOP only)."""

    def wiredtiger_open(home, config):
        conn = as_shipped(home, f"{config},statistics=(fast)")
        _engine.append(conn)
        return conn

    return wiredtiger_open


def engine_counters(conn, wanted=WT_WAITS) -> dict[str, int]:
    """The WiredTiger connection's statistics named in `wanted` (statistics must be on)."""
    session = conn.open_session()
    try:
        cursor = session.open_cursor("statistics:", None, None)
        found: dict[str, int] = {}
        while cursor.next() == 0:
            desc, _, value = cursor.get_value()
            if desc in wanted:
                found[desc] = value
        cursor.close()
    finally:
        session.close()
    return found


def _engine_waits() -> str:
    """The WT_WAITS counters since the last call (the pinned range as it stands)."""
    if not _engine:
        return ""
    now = engine_counters(_engine[0])
    shown = []
    for desc in WT_WAITS:
        value = now.get(desc, 0)
        change = value if "currently" in desc else value - _engine_seen.get(desc, 0)
        _engine_seen[desc] = value
        if change:
            shown.append(f"{desc.split(': ', 1)[1]} {change}")
    return "; ".join(shown)


def _namespace(name: str, body: dict, ctx) -> str:
    """What a command works on: its namespace; a client-level bulk write's, each of its
    namespaces (a consumer's batch: its projection's collections, its offsets, its ids)."""
    if name == "bulkWrite" and isinstance(body.get("nsInfo"), list):
        names = [str(n.get("ns", "")) for n in body["nsInfo"] if isinstance(n, dict)]
        db = names[0].split(".", 1)[0] if names else ""
        return f"{db}." + "+".join(n.split(".", 1)[-1] for n in names)
    target = body.get("collection") if name == "getMore" else body.get(name)
    db = getattr(ctx, "db_name", "")
    return f"{db}.{target}" if isinstance(target, str) else str(db)


def _command_kept(as_shipped):
    """secantus.server's `dispatch`, with a memo of the index definitions the command reads
    (`_indexes_kept`) for as long as it runs, on its thread. A command nested in another
    (a bulk write's) starts with an empty memo, and empties its caller's when it ends. A
    command slower than SLOW_MS is logged, and the failed ones are counted (`_Failures`)."""

    def dispatch(body, ctx):
        outer = getattr(_command, "indexes", None)
        _command.indexes = {}
        name = next(iter(body), "")
        _oplog_for(name, body, getattr(ctx, "storage", None))
        counted = _top is not None and outer is None  # a nested command is its caller's
        started, cpu = time.perf_counter(), time.thread_time() if counted else 0.0
        reply = None
        try:
            reply = as_shipped(body, ctx)
            return reply
        except Exception as err:
            _failures.add((name, _namespace(name, body, ctx), type(err).__name__))
            raise
        finally:
            if outer is not None:
                outer.clear()
            _command.indexes = outer
            ms = (time.perf_counter() - started) * 1000
            if counted:
                _top.add(
                    (name, _namespace(name, body, ctx)),
                    time.thread_time() - cpu,
                    ms / 1000,
                    len(body.get(STATEMENTS.get(name, ""), None) or [1]),
                )
            failed = isinstance(reply, dict) and not reply.get("ok", 1)
            if failed:
                error = str(reply.get("codeName") or reply.get("code"))
                _failures.add((name, _namespace(name, body, ctx), error))
            if ms >= SLOW_MS and name not in WAITING:
                log.warning(
                    "slow command: %s %s %.0f ms%s%s",
                    name,
                    _namespace(name, body, ctx),
                    ms,
                    " (in a transaction)" if body.get("autocommit") is False else "",
                    f" failed: {reply.get('codeName')}" if failed else "",
                )

    return dispatch


def _indexes_kept(as_shipped):
    """Storage._iter_indexes, looked up once per collection per command, and read from the
    table only when the definitions kept from earlier commands were emptied (`_Definitions`,
    session 23). The store reads a
    collection's index definitions from its WiredTiger table several times for every write
    (its indexes, their partial filters, multikey flags, then per document the options of
    each, to check uniqueness and to write the entries): with the flows offered 50 ticks/s,
    30 % of the store's time holding the GIL was there, most of it unpacking the table's
    keys in Python (py-spy --gil, issue 14). Within one command they cannot change but by
    the command itself (a write on the collection holds its lock, as does a change of its
    indexes; a read in a transaction sees one snapshot), and every method that writes the
    table (INDEX_WRITERS) empties the memo of its thread. Outside a command (the store's
    own threads: expiry, start-up) every read goes to the table, as shipped. Each caller
    gets its own copy of a definition's key and options (what a caller changes, as
    `_maybe_mark_multikey` does its options, stays its own); what they hold (a partial
    filter, a collation) is shared: no method of 0.7.0b3 changes those in place. Decoding
    a whole copy for every look was 8 % of the store's time holding the GIL (py-spy --gil,
    flows offered 50 ticks/s, session 21)."""

    def iter_indexes(self, db: str, coll: str):
        memo = getattr(_command, "indexes", None)
        if memo is None:
            yield from as_shipped(self, db, coll)
            return
        key = (id(self), db, coll)
        found = memo.get(key)
        if found is None:  # decoded for the memo alone
            found = memo[key] = _definitions.get(key, lambda: list(as_shipped(self, db, coll)))
        for name, spec, options in found:
            yield name, dict(spec), dict(options)

    return iter_indexes


DERIVED = ("_all_indexes", "_partial_filters", "_index_options_map")  # of `_iter_indexes`


def _derived_kept(as_shipped):
    """One of Storage's views of a collection's index definitions (DERIVED), made once per
    collection per command like the definitions themselves (`_indexes_kept`), and emptied
    with them. An insert asks for each of them for every document, rebuilding it from a
    copy of every definition: with the flows offered 50 ticks/s, `_index_options_map` alone
    was a fifth of an insert's time holding the GIL and the definitions' copies another
    (py-spy --gil, session 23). Each caller gets its own copy of the list or map; the
    definitions' parts in it (a key, a partial filter, options) are shared, and no method
    of 0.7.0b3 changes those in place (they are read by `matches`, `.get` and the key
    encoders)."""

    def derived(self, db: str, coll: str):
        memo = getattr(_command, "indexes", None)
        if memo is None:
            return as_shipped(self, db, coll)
        key = (id(self), db, coll, as_shipped.__name__)
        found = memo.get(key)
        if found is None:
            found = memo[key] = _definitions.get(key, lambda: as_shipped(self, db, coll))
        return found.copy()

    derived.__name__ = as_shipped.__name__
    return derived


# the store's methods that write its table of collections (read in 0.7.0b3) and not its
# index table (the drops and the rename write both: INDEX_WRITERS), and the one that writes
# it only for a collection not there yet
COLLECTION_WRITERS = ("_write_coll_options", "create_collection")
ENSURES = "_ensure_collection"


def _options_kept(as_shipped):
    """Storage._coll_options, a collection's options (or None: no such collection), read
    from the table of collections once per collection per command, and then kept with the
    index definitions (`_Definitions`) and emptied with them: every write of that table
    (COLLECTION_WRITERS, the drops and rename of INDEX_WRITERS, a collection ensured for the first
    time) forgets them as a write of the index table does. The store reads them several
    times a statement (whether the collection is capped, timeseries, a view, its
    validator), each a search of the table: 8.5 % of the main store's time holding the GIL
    with the flows offered 50 ticks/s, once the index definitions were kept (py-spy --gil,
    session 32). What is kept is the options' BSON; each caller gets its own decoded copy,
    as from the table."""

    def coll_options(self, db: str, coll: str):
        memo = getattr(_command, "indexes", None)
        if memo is None:
            return as_shipped(self, db, coll)
        key = (id(self), db, coll, "options")
        found = memo.get(key)
        if found is None:
            found = memo[key] = _definitions.get(key, lambda: _options_blob(self, db, coll))
        blob = found[0]
        if blob is None:
            return None
        return bson.decode(blob) if blob else {}

    coll_options.__name__ = as_shipped.__name__
    return coll_options


def _options_blob(self, db: str, coll: str) -> tuple[bytes | None]:
    """What Storage._coll_options reads, before decoding: (the options' BSON,), or (None,)."""
    c = self._cursor(storage._COLL_TABLE)
    c.set_key(db, coll)
    if c.search() != 0:
        return (None,)
    return (bytes(c.get_value()),)


def _ensures_when_absent(as_shipped):
    """Storage._ensure_collection, called for every insert: it writes the table of
    collections only for a collection not there yet, and only then forgets what is kept
    (as a writer, `_forgets_indexes`; as `_marks_when_new` does for the multikey flags)."""
    forgetting = _forgets_indexes(as_shipped)

    def ensure(self, db: str, coll: str) -> None:
        if self._coll_options(db, coll) is not None:
            return None
        return forgetting(self, db, coll)

    ensure.__name__ = as_shipped.__name__
    return ensure


def _id_first(as_shipped):
    """Storage._try_index_id_keys, which picks the index a write or a find reads its
    candidates from: a filter with an equality on `_id` beside other fields (a claim's
    status, due time, plan and attempts; a cleared flag's revision) goes straight to that
    one document, as a filter on `_id` alone does as shipped. As shipped, such a filter
    first went through every other picker (geo, compound equality, compound range, partial
    filters), each a walk of the collection's index definitions, before its last resort
    looked up one clause, `_id` first: 13 % of notifications' store's time holding the
    GIL with the flows offered 50 ticks/s (py-spy --gil, session 32). The caller matches
    every candidate against the whole filter, as it does for any index's candidates, so a
    document that fails the other fields is still not matched. Left as shipped: a filter
    with a top-level operator (`$or`), a collation, or an `_id` that is not a point
    (a range, a subdocument), and a timeseries collection."""

    def try_index_id_keys(self, db: str, coll: str, filter, *, collation=None):
        if (
            collation is None
            and filter
            and len(filter) > 1
            and "_id" in filter
            and not any(isinstance(f, str) and f.startswith("$") for f in filter)
        ):
            keys = storage._id_point_lookup_keys(filter["_id"])
            if keys is not None and not self._is_timeseries(db, coll):
                recordids = [self._doc_recordid(db, coll, key) for key in keys]
                return [r for r in recordids if r is not None]
        return as_shipped(self, db, coll, filter, collation=collation)

    try_index_id_keys.__name__ = as_shipped.__name__
    return try_index_id_keys


PATHS_KEPT = 4096  # update shapes whose check is kept (`_paths_kept`); then it starts again


def _paths_kept(as_shipped):
    """SecantusDB's check of an update's operators and paths (`_validate_update_paths`: an
    unknown operator, an empty path, two paths where one is a prefix of the other), made once
    per shape of update. It compares every path with every one before it, twice a statement
    (once to validate the update, once to apply it): 3.8 % of the main store's time holding
    the GIL with the flows offered 50 ticks/s (py-spy --gil, issue 14, session 33). Its
    answer depends only on the operators, in order, the field names of each, and the
    destinations of a `$rename` that are strings: that is the key (`_update_shape`). A check
    that raises is not kept, so every such update raises as shipped; an update with an
    operand that is a mapping but not a dict goes as shipped."""
    kept: dict = {}

    def validate(update):
        shape = _update_shape(update)
        if shape is None:
            return as_shipped(update)
        found = kept.get(shape, _ABSENT)
        if found is _ABSENT:
            found = as_shipped(update)  # what raises, raises every time
            if len(kept) >= PATHS_KEPT:
                kept.clear()
            kept[shape] = found
        return found

    return validate


def _in_by_set(as_shipped):
    """secantus.query's `_op_matches`, with a `$in` of strings alone (no collation) matched
    by looking each value up in a set of them. As shipped, each document found is matched
    by comparing each of its values with every element of the list in turn, through the
    store's equality of any two BSON values: a find of 98 messages by `{_id: {$in: [...]}}`
    made 9,604 of those comparisons, 59 % of the store's time for that find, which the
    planner makes in every batch (10 ms of the notifications store's CPU each, the flows
    offered 50 ticks/s, issue 14, session 38). A string equals, under that equality, only a
    string with the same characters, so a set answers the same: a value matches when it is
    one of the strings, or (read through, as the store reads one level of array) is an
    array holding one. Every other `$in`, and every other operator, goes as shipped. The
    set of the last list seen is kept, by identity, on the thread that matches with it."""
    kept = threading.local()

    def _op_matches(values, op, arg, collation=None, *, field="", descend=True):
        if op == "$in" and collation is None and type(arg) is list and arg:
            if getattr(kept, "arg", None) is not arg:
                kept.arg = arg  # held, so the identity is not another list's later
                kept.strings = frozenset(arg) if all(type(a) is str for a in arg) else None
            strings = kept.strings
            if strings is not None:
                for v in values:
                    if isinstance(v, str):
                        if v in strings:
                            return True
                    elif queries._expandable(v, descend) and any(
                        isinstance(e, str) and e in strings for e in v
                    ):
                        return True
                return False
        return as_shipped(values, op, arg, collation, field=field, descend=descend)

    _op_matches.__name__ = as_shipped.__name__
    return _op_matches


# what Storage.find_matching takes beside the filter (`_limit_early`)
FIND_OPTIONS = frozenset(
    ("skip", "limit", "sort", "projection", "hint", "let", "collation", "min_bound", "max_bound")
)


def _limit_early(as_shipped):
    """Storage.find_matching, which for a find with a limit and no sort stops reading once
    it has the limit's documents, when an index serves the filter. As shipped, every
    document the index named was read and decoded, and matched against the whole filter,
    and only then were the first `limit` kept: the dispatcher's announcer, looking for 50
    messages among 1,000 planned and not yet announced, read all 1,000 (21 ms of the
    notifications store's CPU a look, the flows offered 50 ticks/s, issue 14, session 38).
    Here the documents are read in the index's order, `limit` at a time, each batch matched
    as shipped, until `limit` matched: the same documents in the same order, the same
    snapshot (the thread's, refreshed once as shipped), the same variables (`let`: the
    store binds `$$NOW` for every find). Goes as shipped: a sort, a skip, a hint, bounds, a
    collation, an empty filter, the store's own collections (oplog, users, version), and a
    filter no index serves."""

    def find_matching(self, db, coll, filter=None, **options):
        limit = options.get("limit") or 0
        plain = (
            set(options) <= FIND_OPTIONS
            and not options.get("skip")
            and not options.get("sort")
            and all(options.get(k) is None for k in ("hint", "collation", "min_bound", "max_bound"))
        )
        if (
            not plain
            or not isinstance(limit, int)
            or limit <= 0
            or not filter
            or self._is_oplog_rs(db, coll)
            or self._is_system_users(db, coll)
            or self._is_system_version(db, coll)
        ):
            return as_shipped(self, db, coll, filter, **options)
        self._refresh_read_snapshot()
        with self._lock:
            recordids = self._try_index_id_keys(db, coll, filter, collation=None)
        if recordids is None:  # no index serves it: as shipped (the collection read)
            return as_shipped(self, db, coll, filter, **options)
        order = list(dict.fromkeys(recordids))  # a multikey index names a document again
        out: list[dict] = []
        for start in range(0, len(order), limit):
            with self._lock:
                docs = self._docs_by_recordids(db, coll, order[start : start + limit])
            for d in docs:
                storage._deadline.check()
                if storage.matches(d, filter, vars=options.get("let")):
                    out.append(d)
                    if len(out) == limit:
                        break
            if len(out) == limit:
                break
        projection = options.get("projection")
        if projection:
            metas = self._projection_metas(db, coll, out, projection, filter, None, None, None)
            out = storage.apply_projection_batch(
                out, projection, filter, metas=metas, has_sort=False
            )
        return out

    find_matching.__name__ = as_shipped.__name__
    return find_matching


def _update_shape(update) -> tuple | None:
    """What `_validate_update_paths` reads of an update, hashable; None when it cannot say."""
    shape = []
    for op, operand in update.items():
        if type(operand) is dict:
            renamed = (
                tuple(d if isinstance(d, str) else None for d in operand.values())
                if op == "$rename"
                else ()
            )
            shape.append((op, tuple(operand), renamed))
        elif isinstance(operand, Mapping) or not isinstance(op, str):
            return None
        else:
            shape.append((op, None, ()))
    return tuple(shape)


def _forgets_indexes(as_shipped):
    """A method that writes the index table, emptying its thread's memo and the kept
    definitions (`_Definitions`) before and after; inside a transaction, it is open until
    the transaction ends (`_ends_forgetting`)."""

    def writer(self, *args, **kwargs):
        memo = getattr(_command, "indexes", None)
        if memo is not None:
            memo.clear()
        _definitions.changed(getattr(getattr(self, "_tls", None), "user_txn", None))
        try:
            return as_shipped(self, *args, **kwargs)
        finally:
            if memo is not None:
                memo.clear()
            _definitions.changed()

    writer.__name__ = as_shipped.__name__
    return writer


def _marks_when_new(as_shipped):
    """Storage._maybe_mark_multikey, which the store calls for every document it inserts or
    rewrites, and which writes the index table only when the document is the first to hold
    an array in the fields of an index not yet flagged multikey (`already_multikey`, read
    from the table by the command). For any other document it writes nothing, and nothing
    kept is forgotten: wrapped as a writer (`_forgets_indexes`) on every call, each write
    emptied the kept definitions and, inside a transaction, kept none until it ended, so
    with transactions side by side no command found any kept (a counter on
    `_Definitions.get`: 1,626 looks, none kept, 4 threads of transactions writing two
    collections, session 32). A document that may flag one goes through the writer, as
    before."""
    forgetting = _forgets_indexes(as_shipped)

    def mark(self, db, coll, doc, indexes, already_multikey):
        if not any(
            name not in already_multikey and storage._doc_makes_multikey(doc, key_spec)
            for name, key_spec, *_ in indexes
        ):
            return already_multikey
        return forgetting(self, db, coll, doc, indexes, already_multikey)

    mark.__name__ = as_shipped.__name__
    return mark


def _ends_forgetting(as_shipped):
    """Storage's commit or abort of a transaction: if it wrote the index table, the kept
    definitions are emptied once its writes are visible (or gone), and kept again."""

    def end(self, handle, *args, **kwargs):
        try:
            return as_shipped(self, handle, *args, **kwargs)
        finally:
            if id(handle) in _definitions.open:
                _definitions.changed(handle, ended=True)

    end.__name__ = as_shipped.__name__
    return end


def _statement_lets_go(as_shipped):
    """Storage.use_user_transaction, and the transaction's cursors reset once its statement
    is done (the outermost entry only: a nested one runs inside a statement still using
    them). A cursor left positioned holds a hazard pointer on its page, and a transaction
    keeps its session, cursors included, until it commits: while the transactions queued
    for the registry (`_prune_transactions`) each held their last statement's pages, a hot
    page grown too big could not be evicted (WiredTiger's "hazard pointer blocked page
    eviction", 480,831 in 10 s), and every command reading it slept in the engine
    (`__wt_page_in_func`, "page acquire time sleeping": the whole 10 s) while holding the
    store's one lock, so the store stood still for 5-30 s with a core idle: the bench's
    busy section's stall (issue 14). The next statement repositions its cursors anyway
    (`Storage._cursor` resets each before use); what the transaction wrote and its snapshot
    stay in its session."""

    @contextlib.contextmanager
    def use_user_transaction(self, handle):
        try:
            with as_shipped(self, handle):
                yield
        finally:
            if getattr(self._tls, "user_txn", None) is None:
                for cursor in list(handle.cursors.values()):
                    with contextlib.suppress(Exception):
                        cursor.reset()

    return use_user_transaction


_rewrite = threading.local()  # the document an update statement is rewriting (`_entries_kept`)


_ABSENT = object()


def _same(a, b) -> bool:
    """The same value to an index: equal, and of the same types all the way down (1, 1.0
    and True are equal in Python, not in BSON), an embedded document's fields in the same
    order. False when unsure (a NaN): the entries are then compared (`_entries_kept`)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(map(_same, a, b))
    return bool(a == b)


def _untouched(key_spec: dict, old: dict, new: dict) -> bool:
    """Whether every top-level field an index's key reads is the same in both documents:
    then so is every entry the index has for them, which is made of those values alone."""
    return all(
        _same(old.get(top, _ABSENT), new.get(top, _ABSENT))
        for top in {path.split(".", 1)[0] for path in key_spec}
    )


def _plain(index: tuple, partials: dict, options: dict) -> bool:
    """An index whose entries are its key's bytes alone: ascending or descending fields,
    neither unique nor partial, no collation, no geometry. Its entries for a document are
    `_index_key_variants` of it, so equal variants are the same entries."""
    name, key_spec, _sparse, unique = index
    own = options.get(name, {})
    return (
        not unique
        and name not in partials
        and not own.get("collation")
        and not own.get("prepareUnique")
        and all(isinstance(v, int | float) and v in (1, -1) for v in key_spec.values())
    )


def _entries_kept(update_as_shipped, conflict_as_shipped, delete_as_shipped, write_as_shipped):
    """Storage's update of one document rewrites only the index entries its change changed.
    As shipped, an update deletes every entry the document had in every index and writes
    them all again, changed or not: updates of a message, which set its status and a time or
    two, cost 1.35 ms of the store's CPU a statement against 0.64 ms in a collection without
    its ten secondary indexes, and were a quarter of the store's work with the flows offered
    50 ticks/s (issue 14, session 23). In `_update_matching_single_txn` (an update in a
    transaction, or of one document) the store checks the new document's unique keys first
    (`_unique_conflict`, excluding the document's own RecordId), then deletes the old
    document's entries and writes the new one's, all in one WiredTiger transaction. Here
    the check names the new document; the delete that follows for that RecordId, with the
    same indexes, leaves alone each plain index (`_plain`) whose entries for the old and
    the new document are the same, and the write that follows skips the same ones. Any
    other call, or an index that is not plain, goes as shipped."""

    def update(self, *args, **kwargs):
        outer = getattr(_rewrite, "state", None)
        _rewrite.state = {}  # the statement's: the new document, then the indexes it changed
        try:
            return update_as_shipped(self, *args, **kwargs)
        finally:
            _rewrite.state = outer

    def conflict(self, db, coll, doc, indexes, *args, exclude_recordid=None, **kwargs):
        found = conflict_as_shipped(
            self, db, coll, doc, indexes, *args, exclude_recordid=exclude_recordid, **kwargs
        )
        state = getattr(_rewrite, "state", None)
        if state is not None:
            state.clear()
            if exclude_recordid is not None:  # a document rewritten, not an upsert
                state.update(at=(db, coll, exclude_recordid), new=doc, indexes=indexes)
        return found

    def delete(self, db, coll, doc, indexes, partials=None, *, recordid):
        state = getattr(_rewrite, "state", None)
        if not state or state["at"] != (db, coll, recordid) or state["indexes"] is not indexes:
            return delete_as_shipped(self, db, coll, doc, indexes, partials, recordid=recordid)
        new = state["new"]
        known = self._partial_filters(db, coll) if partials is None else partials
        options = self._index_options_map(db, coll)
        changed = [
            index
            for index in indexes
            if not _plain(index, known, options)
            or (
                not _untouched(index[1], doc, new)
                and storage._index_key_variants(doc, index[1], sparse=index[2])
                != storage._index_key_variants(new, index[1], sparse=index[2])
            )
        ]
        state["changed"] = changed
        return delete_as_shipped(self, db, coll, doc, changed, partials, recordid=recordid)

    def write(self, db, coll, doc, indexes, partials=None, *, recordid):
        state = getattr(_rewrite, "state", None)
        if (
            state
            and "changed" in state
            and state["at"] == (db, coll, recordid)
            and state["new"] is doc
            and state["indexes"] is indexes
        ):
            indexes = state["changed"]
            state.clear()
        return write_as_shipped(self, db, coll, doc, indexes, partials, recordid=recordid)

    return update, conflict, delete, write


def _oplog_once_watched(shipped):
    """The store's oplog written only once a change stream is opened. SecantusDB writes one
    for a replica set, where "change-stream clients can connect" (server.py), and Rapport
    runs it as one for its transactions; but nothing else reads it: not recovery
    (WiredTiger's log, synced on every commit), not transactions or retried writes, and the
    cluster time still advances (every `hello` mints one). Its entries were a third of the
    store's work for an update of a document (the change's description and the entry: 0.69
    against 0.42 ms of its CPU, py-spy and bench, session 23) and a write more for every
    document inserted, while Rapport opens no change stream unless RAPPORT_CHANGE_STREAMS
    is on (shared.wakeup). The first command
    that opens one (`_oplog_for`) turns the oplog on for good, before the stream reads it:
    a stream starts from now, so it misses nothing it would have seen. One guard goes with
    it: the store refuses a transaction whose oplog entries pass a fifth of three quarters
    of its cache (77 MB with `--cache-size 512M`), and without entries counts none; the
    largest of Rapport's transactions, a rebuild's batch of 5,000 events, is a few MB."""

    class Storage(shipped):
        def __init__(self, *args, enable_oplog: bool = True, **kwargs):
            super().__init__(*args, enable_oplog=False, **kwargs)
            self.oplog_wanted = enable_oplog  # a replica set, where streams may be opened

    Storage.__qualname__ = Storage.__name__ = shipped.__name__
    return Storage


def _oplog_for(name: str, body: dict, storage_: object) -> None:
    """Turn the oplog on if this command opens a change stream (`_oplog_once_watched`)."""
    if name != "aggregate" or getattr(storage_, "enable_oplog", True):
        return
    pipeline = body.get("pipeline")
    first = pipeline[0] if isinstance(pipeline, list) and pipeline else None
    if not isinstance(first, dict) or "$changeStream" not in first:
        return
    if getattr(storage_, "oplog_wanted", False):
        storage_.enable_oplog = True  # read by each write as it starts
        storage_.ensure_oplog_bootstrap()
        log.warning("a change stream was opened: the store writes its oplog from now on")


def keep_definitions(kept: type) -> None:
    """Keep, on the storage class `kept`, a collection's index definitions, their views and
    its options from one command to the next (`_Definitions`), forgotten by every write of
    the tables they are read from."""
    if not all(callable(getattr(kept, m, None)) for m in ("_iter_indexes", *INDEX_WRITERS)):
        raise SystemExit("SecantusDB's index table is not as deploy/local/store.py knows")
    kept._iter_indexes = _indexes_kept(kept._iter_indexes)
    if not all(callable(getattr(kept, m, None)) for m in DERIVED):
        raise SystemExit("SecantusDB's index definitions are not as deploy/local/store.py knows")
    for name in DERIVED:
        setattr(kept, name, _derived_kept(getattr(kept, name)))
    ending = ("commit_user_transaction", "abort_user_transaction")
    if not all(callable(getattr(kept, m, None)) for m in ending):
        raise SystemExit("SecantusDB's transactions are not as deploy/local/store.py knows")
    for name in ending:
        setattr(kept, name, _ends_forgetting(getattr(kept, name)))
    if not callable(getattr(kept, MARKS, None)) or not callable(
        getattr(storage, "_doc_makes_multikey", None)
    ):
        raise SystemExit("SecantusDB's multikey flags are not as deploy/local/store.py knows")
    collections_ = ("_coll_options", ENSURES, *COLLECTION_WRITERS)
    if not all(callable(getattr(kept, m, None)) for m in collections_) or not isinstance(
        getattr(storage, "_COLL_TABLE", None), str
    ):
        raise SystemExit("SecantusDB's collections are not as deploy/local/store.py knows")
    kept._coll_options = _options_kept(kept._coll_options)
    setattr(kept, ENSURES, _ensures_when_absent(getattr(kept, ENSURES)))
    setattr(kept, MARKS, _marks_when_new(getattr(kept, MARKS)))
    for name in (*COLLECTION_WRITERS, *INDEX_WRITERS):
        setattr(kept, name, _forgets_indexes(getattr(kept, name)))


# values no update or projection changes in place: a copy of one may be the value itself
_ATOMS = frozenset(
    {
        str,
        int,
        float,
        bool,
        type(None),
        bytes,
        datetime.datetime,
        uuid.UUID,
        bson.ObjectId,
        bson.Int64,
        bson.Decimal128,
        bson.Timestamp,
        bson.Binary,
        bson.MinKey,
        bson.MaxKey,
    }
)


def _copied(value, memo=None):
    """copy.deepcopy for a document as the store holds it: plain dicts and lists copied all
    the way down, the values in _ATOMS kept (none can be changed in place), anything else
    (a dict or list of another class, a Regex, a DBRef) copied by copy.deepcopy. An update
    copies the document it rewrites, and a projection every document it answers with:
    copy.deepcopy's memo and its dispatch by type were 6 % of the main store's time holding
    the GIL under the bench's flows (issue 14, session 34). Unlike copy.deepcopy it does not
    keep one list or dict reached twice as one object in the copy; a document decoded from
    BSON never holds one twice."""
    kind = type(value)
    if kind is dict:
        return {k: _copied(v) for k, v in value.items()}
    if kind is list:
        return [_copied(v) for v in value]
    if kind in _ATOMS:
        return value
    return copy.deepcopy(value, memo)


def _copies_plainly(*modules) -> None:
    """The `copy` these modules call deepcopy on, with `_copied` for it (only theirs)."""
    for module in modules:
        if getattr(module, "copy", None) is not copy:
            raise SystemExit("SecantusDB's copies are not as deploy/local/store.py knows")
        module.copy = types.SimpleNamespace(deepcopy=_copied, copy=copy.copy, Error=copy.Error)


def _cursors_module():
    """The module whose `pack` and `unpack` WiredTiger's cursors call: `swig_wiredtiger`, not
    the `wiredtiger` package SecantusDB imports (which holds copies of the names)."""
    return sys.modules.get(getattr(getattr(storage.wt, "Cursor", None), "__module__", ""))


def _pack_kept(swig) -> None:
    """WiredTiger's packing of cursor keys and values, each format read once (wtpack.py)."""
    packing = sys.modules.get(getattr(getattr(swig, "pack", None), "__module__", ""))
    if not all(callable(getattr(swig, f, None)) for f in ("pack", "unpack")) or not all(
        callable(getattr(packing, f, None)) for f in ("pack_int", "unpack_int")
    ):
        raise SystemExit("WiredTiger's packing is not as deploy/local/store.py knows")
    swig.pack = wtpack.packer(swig.pack, wtpack.int_packer(packing.pack_int))
    swig.unpack = wtpack.unpacker(swig.unpack, packing.unpack_int)


def _sweep_lets_go(as_shipped):
    """Storage.prune_ttl_all_collections, and then the calling thread's engine snapshot and
    cursor positions let go (`release_thread_snapshot`, as the server does after every
    request). The store's TTL sweeper runs it once a minute on a thread of its own and then
    waits for the next sweep still holding the snapshot of the one it ran, which kept
    WiredTiger from forgetting any version written since: the range of transactions pinned
    grew to 61,543 in the minute between two sweeps (one client, 1,040 transactions a
    second). The bench's runs that stalled (a section's thousands of deleted documents,
    then every command slow while the machine idled, the store's threads sleeping on pages
    the engine could not evict) all had such a pin (issue 14, session 39: bench/README.md,
    gaps of the local servers)."""

    def prune_ttl_all_collections(self, *args, **kwargs):
        try:
            return as_shipped(self, *args, **kwargs)
        finally:
            self.release_thread_snapshot()

    return prune_ttl_all_collections


def patch() -> None:
    """Install the two sweeps and the kept profiling settings; refuse to start on a
    SecantusDB they were not read in."""
    found = version("SecantusDB")
    if found != PATCHED_FOR:
        raise SystemExit(
            f"deploy/local/store.py was written for SecantusDB {PATCHED_FOR}, found {found}: "
            "read its session registries again before changing the pin"
        )
    registries = (sessions.SessionRegistry, transactions.TransactionRegistry)
    if not all(callable(getattr(r, "_prune_locked", None)) for r in registries):
        raise SystemExit("SecantusDB's session registries are not as deploy/local/store.py knows")
    sessions.SessionRegistry._prune_locked = _prune_sessions
    transactions.TransactionRegistry._prune_locked = _prune_transactions
    kept = storage.Storage
    if not all(callable(getattr(kept, m, None)) for m in ("get_profile", "set_profile")):
        raise SystemExit("SecantusDB's profiling settings are not as deploy/local/store.py knows")
    kept.get_profile = _profile_kept(kept.get_profile)
    kept.set_profile = _profile_written(kept.set_profile)
    keep_definitions(kept)
    rewriting = (
        "_update_matching_single_txn",
        "_unique_conflict",
        "_delete_index_entries",
        "_write_index_entries",
    )
    if not all(callable(getattr(kept, m, None)) for m in rewriting) or not callable(
        getattr(storage, "_index_key_variants", None)
    ):
        raise SystemExit("SecantusDB's updates are not as deploy/local/store.py knows")
    for name, patched in zip(
        rewriting, _entries_kept(*(getattr(kept, m) for m in rewriting)), strict=True
    ):
        setattr(kept, name, patched)
    if getattr(server, "Storage", None) is not kept:
        raise SystemExit("SecantusDB's server makes its storage otherwise than this file knows")
    server.Storage = _oplog_once_watched(kept)
    server.dispatch = _command_kept(server.dispatch)
    if not callable(getattr(kept, "use_user_transaction", None)):
        raise SystemExit("SecantusDB's transactions are not as deploy/local/store.py knows")
    kept.use_user_transaction = _statement_lets_go(kept.use_user_transaction)
    picking = ("_try_index_id_keys", "_is_timeseries", "_doc_recordid")
    if not all(callable(getattr(kept, m, None)) for m in picking) or not callable(
        getattr(storage, "_id_point_lookup_keys", None)
    ):
        raise SystemExit("SecantusDB's index picking is not as deploy/local/store.py knows")
    kept._try_index_id_keys = _id_first(kept._try_index_id_keys)
    if not callable(getattr(updates, "_validate_update_paths", None)):
        raise SystemExit("SecantusDB's update checks are not as deploy/local/store.py knows")
    updates._validate_update_paths = _paths_kept(updates._validate_update_paths)
    if not all(callable(getattr(queries, f, None)) for f in ("_op_matches", "_expandable")):
        raise SystemExit("SecantusDB's matching is not as deploy/local/store.py knows")
    queries._op_matches = _in_by_set(queries._op_matches)
    reading = ("find_matching", "_try_index_id_keys", "_docs_by_recordids", "_projection_metas")
    if not all(callable(getattr(kept, m, None)) for m in reading) or not all(
        callable(getattr(storage, f, None)) for f in ("matches", "apply_projection_batch")
    ):
        raise SystemExit("SecantusDB's reads are not as deploy/local/store.py knows")
    kept.find_matching = _limit_early(kept.find_matching)
    sweeping = ("prune_ttl_all_collections", "release_thread_snapshot", "_ttl_sweep_loop")
    if not all(callable(getattr(kept, m, None)) for m in sweeping):
        raise SystemExit("SecantusDB's TTL sweeper is not as deploy/local/store.py knows")
    kept.prune_ttl_all_collections = _sweep_lets_go(kept.prune_ttl_all_collections)
    _pack_kept(_cursors_module())
    _copies_plainly(updates, projections)
    if _top is not None:
        storage.wt.wiredtiger_open = _counted(storage.wt.wiredtiger_open)


def main() -> int:
    patch()
    from secantus.cli import main as store_main

    # the store's code, loaded, kept out of the garbage collector's full passes, as the
    # services' processes keep theirs (shared/heap.py: one pass was 27-72 ms of this
    # process's time in the flows bench, every command waiting meanwhile)
    gc.collect()
    gc.freeze()
    return store_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
