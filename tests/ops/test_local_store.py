"""The local store's launcher (deploy/local/store.py): SecantusDB's registries of sessions and
transactions stay the size of the sessions in use, with the store's own rules otherwise.
Pure tests of the two registry classes on a clock of their own; the bench's `store` section
measures what it is worth over TCP."""

from __future__ import annotations

import contextlib
import datetime
import threading

import pytest
from secantus import sessions, transactions

from deploy.local import infra, store

IN_PROGRESS, ABORTED = transactions.TxnState.IN_PROGRESS, transactions.TxnState.ABORTED


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def patched(monkeypatch):
    """The launcher's sweeps on the registry classes, for this test only."""
    monkeypatch.setattr(sessions.SessionRegistry, "_prune_locked", store._prune_sessions)
    monkeypatch.setattr(
        transactions.TransactionRegistry, "_prune_locked", store._prune_transactions
    )


def _lsid(n: int) -> bytes:
    return n.to_bytes(16, "big")


def _registry(clock, rolled_back=None):
    return transactions.TransactionRegistry(
        time_func=clock,
        rollback_func=lambda txn: (rolled_back if rolled_back is not None else []).append(
            txn.lsid_bytes
        ),
    )


def _committed(registry, n: int, number: int = 1) -> None:
    txn, error = registry.for_statement(_lsid(n), None, number, start=True)
    assert error is None, error
    assert registry.commit(_lsid(n), number) is None


def test_finished_transactions_are_forgotten_once_no_retry_can_ask(patched):
    clock = Clock()
    registry = _registry(clock)
    for n in range(1000):
        _committed(registry, n)
    clock.now += store.SWEEP_SECONDS  # the next sweep: all committed a moment ago, all kept
    _committed(registry, 1000)
    assert len(registry._txns) == 1001
    assert registry.commit(_lsid(7), 1) is None  # a retried commit is still answered ok
    clock.now += store.FINISHED_KEPT_SECONDS + store.SWEEP_SECONDS
    txn, error = registry.for_statement(_lsid(2000), None, 1, start=True)
    assert error is None
    # as shipped, every one of the 1,001 stays for good, and every statement walks them
    assert list(registry._txns) == [_lsid(2000)]


def test_a_forgotten_session_still_refuses_an_old_or_reused_transaction_number(patched):
    clock = Clock()
    registry = _registry(clock)
    _committed(registry, 1, number=5)
    clock.now += store.FINISHED_KEPT_SECONDS + store.SWEEP_SECONDS
    registry.prune_expired()
    assert _lsid(1) not in registry._txns
    for number in (4, 5):
        txn, error = registry.for_statement(_lsid(1), None, number, start=True)
        assert txn is None and error is not None and error["ok"] == 0, (number, error)
    # a continuation or a commit of what was forgotten: no such transaction, as for an abort
    txn, error = registry.for_statement(_lsid(1), None, 5, start=False)
    assert txn is None and error["codeName"] == "NoSuchTransaction"
    assert registry.commit(_lsid(1), 5)["codeName"] == "NoSuchTransaction"
    txn, error = registry.for_statement(_lsid(1), None, 6, start=True)
    assert error is None and txn.txn_number == 6


def test_an_idle_open_transaction_is_still_rolled_back_past_its_lifetime(patched):
    clock, rolled_back = Clock(), []
    registry = _registry(clock, rolled_back)
    idle, error = registry.for_statement(_lsid(1), None, 1, start=True)
    assert error is None
    clock.now += transactions.DEFAULT_LIFETIME_SECONDS + store.SWEEP_SECONDS
    busy, error = registry.for_statement(_lsid(2), None, 1, start=True)
    assert error is None
    assert idle.state is ABORTED and rolled_back == [_lsid(1)]
    assert busy.state is IN_PROGRESS
    # an aborted one is forgotten like a committed one, once old enough
    clock.now += store.FINISHED_KEPT_SECONDS + store.SWEEP_SECONDS
    registry.prune_expired()
    assert _lsid(1) not in registry._txns


def test_the_scans_run_once_per_sweep_with_the_same_idle_limit(patched):
    clock = Clock()
    t0 = clock.now
    registry = sessions.SessionRegistry(idle_ttl_seconds=60, time_func=clock)
    for n in range(100):
        registry.register(_lsid(n))  # the first one sweeps; the next sweep is a second on
    clock.now = t0 + 0.5
    registry.register(_lsid(100))
    clock.now = t0 + 60.2
    registry.register(_lsid(101))  # a sweep: the 100 are idle 60.2 s, past the limit
    assert len(registry) == 2
    clock.now = t0 + 60.8
    registry.register(_lsid(102))  # (100) is idle 60.3 s, but the last sweep was 0.6 s ago
    assert len(registry) == 3  # as shipped, this scan would have dropped it here
    clock.now = t0 + 60.2 + store.SWEEP_SECONDS
    registry.register(_lsid(103))
    assert len(registry) == 3  # the next sweep drops it: at most a second late


def test_the_launcher_refuses_a_store_it_was_not_written_for(monkeypatch):
    monkeypatch.setattr(store, "PATCHED_FOR", "0.0.1")
    with pytest.raises(SystemExit, match="written for SecantusDB 0.0.1"):
        store.patch()


def test_rapport_starts_the_store_through_the_launcher():
    server = next(s for s in infra.servers() if s.name == "store")
    assert server.command()[1].endswith("deploy/local/store.py"), server.command()


class _Table:
    """A stand-in for the store's profiling table: counts its reads."""

    def __init__(self):
        self.rows, self.reads = {}, 0

    def get_profile(self, db):
        self.reads += 1
        return dict(self.rows.get(db, {"level": 0, "slowms": 100, "sampleRate": 1.0}))

    def set_profile(self, db, *, level, slowms=100, sample_rate=1.0):
        self.rows[db] = {"level": level, "slowms": slowms, "sampleRate": sample_rate}


def test_profiling_settings_are_read_once_and_a_write_is_seen_at_once(monkeypatch):
    monkeypatch.setattr(store, "_profiles", {})
    table = _Table()
    get = store._profile_kept(_Table.get_profile)
    put = store._profile_written(_Table.set_profile)
    assert [get(table, "a")["level"] for _ in range(5)] == [0] * 5
    assert table.reads == 1  # was one read of the table per command
    get(table, "a")["level"] = 2  # a caller's copy, not what is kept
    assert get(table, "a")["level"] == 0
    put(table, "a", level=2, slowms=5)
    assert get(table, "a") == {"level": 2, "slowms": 5, "sampleRate": 1.0}
    assert get(table, "b")["level"] == 0 and table.reads == 3


def test_the_local_store_still_profiles_a_database_once_asked_and_stops_when_told(settings):
    """Through the launcher's store over TCP: the `profile` command's level applies to the
    commands that follow, on and off."""
    from shared.mongo import client as mongo_client

    db = mongo_client(settings.mongo_uri)[settings.database("profiled")]
    db.things.insert_one({"x": 1})
    try:
        assert db.command("profile", 2)["was"] == 0
        db.things.find_one({"x": 1})
        assert db.command("profile", -1)["was"] == 2
        profiled = db["system.profile"].count_documents({"ns": f"{db.name}.things"})
        assert profiled >= 1
        assert db.command("profile", 0)["was"] == 2
        db.things.find_one({"x": 1})
        assert db["system.profile"].count_documents({"ns": f"{db.name}.things"}) == profiled
    finally:
        db.command("profile", 0)


class _Indexes:
    """A stand-in for the store's table of index definitions: counts its reads."""

    def __init__(self):
        self.rows = {("d", "c"): {"_id_": ({"_id": 1}, {}), "tags_1": ({"tags": 1}, {})}}
        self.reads = 0

    def iter_indexes(self, db, coll):
        self.reads += 1
        for name, (key, options) in self.rows.get((db, coll), {}).items():
            yield name, dict(key), dict(options)

    def mark_multikey(self, db, coll, name):
        self.rows[db, coll][name][1]["multikey"] = True


def _multikey(iter_indexes, table) -> dict:
    return {name: o.get("multikey", False) for name, _, o in iter_indexes(table, "d", "c")}


def test_a_command_reads_each_collection_s_indexes_once_and_sees_its_own_changes():
    table = _Indexes()
    store._definitions.changed()  # (nothing kept from other tests' tables)
    read = store._indexes_kept(_Indexes.iter_indexes)
    mark = store._forgets_indexes(_Indexes.mark_multikey)
    dispatch = store._command_kept(lambda body, ctx: body["run"]())
    _multikey(read, table), _multikey(read, table)
    assert table.reads == 2  # outside a command (the store's own threads): as shipped

    def write():
        first = [_multikey(read, table) for _ in range(5)]
        assert table.reads == 3  # one read of the table for five looks
        mark(table, "d", "c", "tags_1")  # a write of the table: the next look reads it
        return first, _multikey(read, table)

    before, after = dispatch({"run": write}, None)
    assert before[0] == {"_id_": False, "tags_1": False} and after["tags_1"] is True
    assert table.reads == 4
    look = {"run": lambda: _multikey(read, table)}
    assert dispatch(look, None)["tags_1"] is True
    assert table.reads == 4  # the next command (on any thread) keeps what was read
    table.rows["d", "c"]["tags_1"][1]["multikey"] = False  # behind the store's back
    assert dispatch(look, None)["tags_1"] is True and table.reads == 4
    mark(table, "d", "c", "tags_1")  # a write outside a command (the store's own threads)
    assert dispatch(look, None)["tags_1"] is True and table.reads == 5

    def caller_changes_its_copy():
        next(read(table, "d", "c"))[2]["unique"] = True
        return next(read(table, "d", "c"))[2]

    assert dispatch({"run": caller_changes_its_copy}, None) == {}
    outer = []

    def nesting():
        _multikey(read, table)
        dispatch({"run": lambda: _multikey(read, table)}, None)  # a command within a command
        outer.append(table.reads)
        _multikey(read, table)  # the inner one may have changed them: looked up again
        return table.reads

    assert dispatch({"run": nesting}, None) == outer[0]  # (kept: the inner one wrote none)


def test_a_command_derives_each_view_of_a_collection_s_indexes_once():
    """`_index_options_map` and the other views are made once per collection per command,
    again after a write of the index table, and each caller gets a container of its own."""
    table = _Indexes()
    store._definitions.changed()  # (nothing kept from other tests' tables)
    made = []

    def options_map(self, db, coll):
        made.append((db, coll))
        return {name: options for name, _, options in self.iter_indexes(db, coll)}

    options_map.__name__ = "_index_options_map"
    view = store._derived_kept(options_map)
    mark = store._forgets_indexes(_Indexes.mark_multikey)
    dispatch = store._command_kept(lambda body, ctx: body["run"]())
    view(table, "d", "c"), view(table, "d", "c")
    assert len(made) == 2  # outside a command: as shipped

    def command():
        first = view(table, "d", "c")
        first["mine"] = {}  # a caller's change to its map stays its own
        again = view(table, "d", "c")
        other = view(table, "d", "other")
        mark(table, "d", "c", "tags_1")
        after = view(table, "d", "c")
        return first, again, other, after

    first, again, other, after = dispatch({"run": command}, None)
    assert made[2:] == [("d", "c"), ("d", "other"), ("d", "c")]
    assert "mine" not in again and again == {"_id_": {}, "tags_1": {}} and other == {}
    assert after["tags_1"] == {"multikey": True}
    dispatch({"run": lambda: view(table, "d", "c")}, None)
    assert len(made) == 5  # the next command keeps it


def test_what_a_transaction_writes_to_the_index_table_is_kept_only_once_it_ends():
    """A write of the index table inside a transaction (a first array in an indexed field
    marks its index multikey) is seen by others only once the transaction commits: until it
    ends, definitions are read from the table by every command and none is kept; its commit
    or abort empties what was kept, and keeping resumes."""

    class Txn:
        pass

    table, txn = _Indexes(), Txn()
    table._tls = type("Tls", (), {"user_txn": None})()
    read = store._indexes_kept(_Indexes.iter_indexes)
    mark = store._forgets_indexes(_Indexes.mark_multikey)
    commit = store._ends_forgetting(lambda self, handle: "committed")
    dispatch = store._command_kept(lambda body, ctx: body["run"]())
    look = {"run": lambda: _multikey(read, table)}
    store._definitions.changed()  # (what earlier tests kept)
    dispatch(look, None), dispatch(look, None)
    assert table.reads == 1
    table._tls.user_txn = txn
    mark(table, "d", "c", "tags_1")  # inside the transaction
    table._tls.user_txn = None
    dispatch(look, None), dispatch(look, None)
    assert table.reads == 3  # read each time while the transaction is open
    assert commit(table, Txn()) == "committed" and table.reads == 3  # another one: no change
    dispatch(look, None)
    assert table.reads == 4
    assert commit(table, txn) == "committed"
    dispatch(look, None), dispatch(look, None)
    assert table.reads == 5  # read once after the commit, then kept again


def test_a_document_that_flags_no_index_multikey_keeps_the_kept_definitions():
    """The store asks whether to flag an index multikey for every document it writes: one
    with no array in any index's fields, or only in an index flagged already, writes nothing
    to the index table and forgets nothing kept (inside a transaction too); the first array
    in an index not yet flagged goes through the writer, which forgets them."""

    class Txn:
        pass

    table, txn = _Indexes(), Txn()
    table._tls = type("Tls", (), {"user_txn": txn})()  # every call inside a transaction
    flagged = []

    def shipped(self, db, coll, doc, indexes, already):
        flagged.append(doc["_id"])
        return already | {
            n for n, spec, *_ in indexes if isinstance(doc.get(next(iter(spec))), list)
        }

    shipped.__name__ = "_maybe_mark_multikey"
    mark = store._marks_when_new(shipped)
    read = store._indexes_kept(_Indexes.iter_indexes)
    dispatch = store._command_kept(lambda body, ctx: body["run"]())
    indexes = [("_id_", {"_id": 1}, False, True), ("tags_1", {"tags": 1}, False, False)]
    store._definitions.changed()  # (what earlier tests kept)

    def write(doc, already):
        def command():
            _multikey(read, table)  # a write reads the definitions first, as the store's do
            return mark(table, "d", "c", doc, indexes, already)

        return dispatch({"run": command}, None)

    assert write({"_id": 1, "tags": "a"}, set()) == set()
    assert write({"_id": 2, "tags": ["a", "b"]}, {"tags_1"}) == {"tags_1"}  # flagged already
    assert write({"_id": 3}, set()) == set()
    assert flagged == [] and table.reads == 1  # read once, kept for the next commands
    assert write({"_id": 4, "tags": ["a"]}, set()) == {"tags_1"}
    assert flagged == [4]
    table._tls.user_txn = None
    dispatch({"run": lambda: _multikey(read, table)}, None)
    assert table.reads == 2  # the writer forgot them: the table is read again
    store._definitions.changed(txn, ended=True)  # (the transaction ends)


def test_a_collection_s_options_are_read_once_and_seen_changed_at_once(tmp_path, monkeypatch):
    """On a store as the launcher patches it: a collection's options are read from the table
    once and kept for the next commands; a collection made (with options, or by its first
    insert), changed or dropped is seen so by the next command; an insert into a collection
    there already forgets nothing; each caller gets its own copy."""
    from secantus import storage as shipped

    class Kept(shipped.Storage):
        pass

    store.keep_definitions(Kept)  # as the launcher keeps them, on this class alone
    reads = []
    blob = store._options_blob
    monkeypatch.setattr(
        store, "_options_blob", lambda self, db, coll: reads.append(coll) or blob(self, db, coll)
    )
    db = Kept(str(tmp_path / "s"))
    dispatch = store._command_kept(lambda body, ctx: body["run"]())
    store._definitions.changed()  # (what earlier tests kept)

    def run(work):
        dispatch({"run": work}, None)
        reads.clear()  # (what the writing command read itself)

    def options(coll):
        return dispatch({"run": lambda: db._coll_options("d", coll)}, None)

    assert options("c") is None and options("c") is None and reads == ["c"]
    run(lambda: db.create_collection("d", "c", {"capped": True, "size": 4096}))
    assert options("c")["capped"] is True and reads == ["c"]
    options("c")["capped"] = False  # the caller's own copy
    assert options("c")["capped"] is True and reads == ["c"]
    run(lambda: db.set_collection_options("d", "c", capped=False))
    assert options("c")["capped"] is False and reads == ["c"]
    run(lambda: db.insert("d", "new", [{"_id": 1}]))  # made by its first insert
    assert options("new") is not None
    reads.clear()
    dispatch({"run": lambda: db.insert("d", "new", [{"_id": 2}])}, None)
    assert options("new") is not None and reads == []  # nothing forgotten, nothing read
    run(lambda: db.drop_collection("d", "new"))
    assert options("new") is None and reads == ["new"]
    db.close()


def test_a_filter_with_an_id_finds_and_writes_what_the_store_as_shipped_does(tmp_path):
    """Filters with an `_id` beside other fields (`_id_first`) find, update and delete the
    same documents on a store as shipped and on one that looks the `_id` up first, without
    walking the other indexes; those it leaves to the store (an operator at the top, an
    `_id` range or subdocument) are the store's own."""
    from secantus import storage as shipped

    class First(shipped.Storage):
        _try_index_id_keys = store._id_first(shipped.Storage._try_index_id_keys)

    picked = []

    class Counted(First):
        def _try_compound_range_id_keys(self, *args, **kwargs):
            picked.append(args[2])
            return shipped.Storage._try_compound_range_id_keys(self, *args, **kwargs)

    stores = [shipped.Storage(str(tmp_path / "a")), Counted(str(tmp_path / "b"))]
    docs = [
        {
            "_id": f"m{i}",
            "status": "pending" if i % 3 else "sent",
            "priority": i % 2,
            "next_at": i,
            "as_of": i % 5,
            "attempts": i % 4,
            "tags": ["a", f"t{i % 3}"],
        }
        for i in range(60)
    ]
    docs.append({"_id": {"k": 1}, "status": "pending", "next_at": 1})
    filters = [
        {"_id": "m7", "status": "pending", "next_at": {"$lte": 30}, "as_of": 2, "attempts": 3},
        {"_id": "m7", "status": "sent"},  # the document, not matching the rest
        {"_id": "nope", "status": "pending"},
        {"_id": {"$in": ["m1", "m2", "m3", "x"]}, "priority": 1},
        {"_id": {"$eq": "m4"}, "tags": "t1"},
        {"status": "pending", "_id": "m5", "priority": {"$in": [0, 1]}},
        {"_id": {"$gte": "m50"}, "status": "pending"},  # a range: as shipped
        {"_id": {"k": 1}, "status": "pending"},  # a subdocument: as shipped
        {"_id": "m8", "$or": [{"status": "sent"}, {"attempts": 0}]},  # an operator: as shipped
    ]
    for db in stores:
        db.create_index("d", "m", "due", {"status": 1, "priority": 1, "next_at": 1}, {})
        db.create_index("d", "m", "tags", {"tags": 1}, {})
        db.insert("d", "m", [dict(d) for d in docs])

    def found(db, f):
        return sorted(str(d["_id"]) for d in db.find_matching("d", "m", f))

    for f in filters:
        assert found(stores[0], f) == found(stores[1], f), f
    assert any(found(stores[0], f) for f in filters)  # (the comparison compared something)
    assert found(stores[1], filters[1]) == []  # the `_id` alone would have been m7
    assert not [f for f in picked if "_id" in f and not isinstance(f["_id"], dict)]
    for db in stores:
        for i, f in enumerate(filters):
            db.update_matching("d", "m", f, {"$set": {"touched": i}, "$inc": {"attempts": 1}})
        db.delete_matching("d", "m", {"_id": {"$in": ["m1", "m2"]}, "priority": 1})
    everything = [sorted(db.find_matching("d", "m", {}), key=str) for db in stores]
    assert everything[0] == everything[1] and len(everything[0]) == 60
    for db in stores:
        db.close()


def test_the_local_store_sees_an_index_made_or_dropped_and_a_multikey_index_at_once(settings):
    """Through the launcher's store over TCP: a unique index made between two transactions'
    statements refuses the second's duplicate, dropped it no longer does; an index made
    multikey by the first document of a bulk write is used as such by the rest of it."""
    from pymongo.errors import BulkWriteError, DuplicateKeyError

    from shared.mongo import client as mongo_client
    from shared.mongo import in_transaction

    mongo = mongo_client(settings.mongo_uri)
    things = mongo[settings.database("indexes")]["things"]
    things.insert_one({"_id": 1, "n": 1})
    things.create_index("n", unique=True)

    def two(session):
        things.insert_one({"_id": 2, "n": 2}, session=session)
        things.insert_one({"_id": 3, "n": 1}, session=session)

    with pytest.raises(DuplicateKeyError):
        in_transaction(mongo, two)
    assert things.count_documents({}) == 1
    things.drop_index("n_1")
    in_transaction(mongo, two)
    assert things.count_documents({"n": 1}) == 2
    things.create_index("tags", unique=True, sparse=True)
    with pytest.raises(BulkWriteError) as refused:
        things.insert_many([{"_id": 10, "tags": ["a", "b"]}, {"_id": 11, "tags": ["c", "b"]}])
    assert refused.value.details["nInserted"] == 1
    assert [d["_id"] for d in things.find({"tags": "b"})] == [10]
    index = things.index_information()["tags_1"]
    assert things.find({"tags": {"$all": ["a", "b"]}}).hint("tags_1").distinct("_id") == [10]
    assert index["unique"] is True


class _Ctx:
    db_name = "records"


def test_a_slow_command_is_logged_and_failures_once_a_second(monkeypatch, caplog):
    """What the store spends itself on, in its log: a command slower than SLOW_MS, with its
    namespace; failed commands counted by (command, namespace, error), the first at once and
    the rest of the second with the next failure after it. Waiting commands are not slow."""
    monkeypatch.setattr(store, "SLOW_MS", 50.0)
    monkeypatch.setattr(store, "_failures", store._Failures())
    clock = Clock()
    monkeypatch.setattr(store.time, "monotonic", clock)
    replies = {
        "conflict": {"ok": 0.0, "code": 112, "codeName": "WriteConflict"},
        "fine": {"ok": 1.0},
    }

    def as_shipped(body, ctx):
        if body.get("sleep"):
            import time as real

            real.sleep(body["sleep"])
        return replies[body["reply"]]

    dispatch = store._command_kept(as_shipped)
    caplog.set_level("WARNING", logger="rapport.store")
    dispatch({"find": "summaries", "reply": "fine"}, _Ctx())
    dispatch({"update": "summaries", "reply": "fine", "sleep": 0.08, "autocommit": False}, _Ctx())
    dispatch({"getMore": 7, "reply": "fine", "sleep": 0.08}, _Ctx())
    for _ in range(3):
        dispatch({"update": "offsets", "reply": "conflict"}, _Ctx())
    clock.now += store.FAILED_EVERY
    dispatch({"update": "offsets", "reply": "conflict"}, _Ctx())
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3, lines
    assert lines[0].startswith("slow command: update records.summaries ")
    assert lines[0].endswith(" ms (in a transaction)")
    assert lines[1] == "failed commands: 1 x update records.offsets: WriteConflict"
    assert lines[2] == "failed commands: 3 x update records.offsets: WriteConflict"


class _Cursor:
    def __init__(self):
        self.resets = 0

    def reset(self):
        self.resets += 1


class _Handle:
    def __init__(self):
        self.cursors = {("table:docs", True): _Cursor(), ("table:index", True): _Cursor()}


class _Storage:
    """Storage.use_user_transaction's shape: the handle installed for the body."""

    def __init__(self):
        import threading

        self._tls = threading.local()

    @contextlib.contextmanager
    def use_user_transaction(self, handle):
        previous = getattr(self._tls, "user_txn", None)
        self._tls.user_txn = handle
        try:
            yield
        finally:
            self._tls.user_txn = previous


def test_a_transaction_s_cursors_let_go_of_their_pages_after_each_statement():
    """A positioned cursor holds its page (a hazard pointer) and a transaction keeps its
    cursors to its commit: they are reset when a statement ends, not when a nested entry
    inside a statement does, and also when the statement fails."""
    storage, handle = _Storage(), _Handle()
    use = store._statement_lets_go(_Storage.use_user_transaction)

    def resets():
        return sorted(c.resets for c in handle.cursors.values())

    with use(storage, handle):
        with use(storage, handle):  # a nested entry (a function run inside the statement)
            pass
        assert resets() == [0, 0]  # the statement is still using them
    assert resets() == [1, 1]
    with pytest.raises(RuntimeError), use(storage, handle):
        raise RuntimeError("the statement failed")
    assert resets() == [2, 2]


def _entries(db, name: str) -> dict[str, set]:
    """Every index entry (index, key, RecordId) and unique claim the store holds for `name`."""
    from secantus import storage as shipped

    rows = db._collect_prefix(shipped._IDX_ENTRIES_TABLE, ("d", name))
    claims = db._collect_prefix(shipped._UNIQ_TABLE, ("d", name))
    return {"entries": {k[2:] for k, _ in rows}, "claims": {(k, v) for k, v in claims}}


def test_an_update_rewrites_only_the_index_entries_its_change_changed(tmp_path):
    """The same writes on a store as shipped and on one whose updates keep unchanged index
    entries (`_entries_kept`) leave the same entries and unique claims in every kind of
    index (compound, sparse, multikey, unique, partial, descending), while the latter
    rewrites fewer; an upsert and a delete write and remove all of theirs."""
    import random

    from secantus import storage as shipped

    class Kept(shipped.Storage):
        pass

    rewriting = (
        "_update_matching_single_txn",
        "_unique_conflict",
        "_delete_index_entries",
        "_write_index_entries",
    )
    written = {"as shipped": 0, "kept": 0}

    def counted(who, write):
        def count(self, db, coll, doc, indexes, partials=None, *, recordid):
            written[who] += len(indexes)
            return write(self, db, coll, doc, indexes, partials, recordid=recordid)

        return count

    as_shipped = [getattr(shipped.Storage, m) for m in rewriting]
    as_shipped[3] = counted("kept", as_shipped[3])
    for name, patched in zip(rewriting, store._entries_kept(*as_shipped), strict=True):
        setattr(Kept, name, patched)

    class Shipped(shipped.Storage):
        _write_index_entries = counted("as shipped", shipped.Storage._write_index_entries)

    stores = [Shipped(str(tmp_path / "a")), Kept(str(tmp_path / "b"))]
    indexes = {
        "status_next": ({"status": 1, "next_at": 1}, {}),
        "client_status": ({"client_id": 1, "status": -1}, {}),
        "announced": ({"announced": 1}, {}),
        "tags": ({"tags": 1}, {}),
        "sparse_task": ({"task_id": 1}, {"sparse": True}),
        "unique_code": ({"code": 1}, {"unique": True, "sparse": True}),
        "partial_due": ({"next_at": 1}, {"partialFilterExpression": {"status": "pending"}}),
    }
    rng = random.Random(7)
    docs = [
        {
            "_id": i,
            "status": "pending",
            "next_at": i,
            "client_id": f"c{i % 4}",
            "announced": False,
            "tags": ["a", f"t{i % 3}"],
            **({"task_id": f"k{i}"} if i % 2 else {}),
            **({"code": f"u{i}"} if i % 3 == 0 else {}),
        }
        for i in range(40)
    ]
    changes = [
        {"$set": {"announced": True}},
        {"$set": {"status": "sending", "lease": 1}, "$inc": {"attempts": 1}},
        {"$set": {"status": "sent"}, "$unset": {"lease": ""}},
        {"$push": {"tags": "b"}},
        {"$set": {"tags": ["a", "t1"]}},
        {"$unset": {"task_id": ""}},
        {"$set": {"task_id": "k-new"}},
        {"$set": {"code": "moved"}},
        {"$set": {"next_at": 99, "status": "pending"}},
        {"$set": {"next_at": 99.0}},  # equal to an index, not the same value
        {"$set": {"announced": 0}},  # equal to False in Python, not in BSON
        {"$set": {"body": "nothing indexed"}},
    ]
    plan = [(rng.randrange(45), rng.choice(changes)) for _ in range(300)]
    for db in stores:
        for name, (spec, options) in indexes.items():
            db.create_index("d", "m", name, spec, options)
        db.insert("d", "m", [dict(d, tags=list(d["tags"])) for d in docs])
        for i, change in plan:
            try:  # an id past the documents is an upsert; "moved" taken twice is refused
                db.update_matching("d", "m", {"_id": i}, change, upsert=True)
            except Exception as refused:
                assert "moved" in str(change) or "duplicate" in str(refused).lower()
        db.delete_matching("d", "m", {"_id": {"$lt": 5}})
    assert _entries(stores[0], "m") == _entries(stores[1], "m")
    assert _entries(stores[1], "m")["entries"]  # (the comparison compared something)
    assert written["kept"] < written["as shipped"] * 0.8
    for db in stores:
        db.close()


def test_the_oplog_is_written_once_a_change_stream_is_opened_and_not_before():
    """The store's oplog is for change streams alone: a replica set's storage starts
    without it, and the first command opening a stream turns it on for good (a standalone
    store's never is); other aggregates and commands leave it as it is."""

    class Shipped:
        def __init__(self, path, *, enable_oplog=True):
            self.path, self.enable_oplog, self.bootstrapped = path, enable_oplog, 0

        def ensure_oplog_bootstrap(self):
            self.bootstrapped += 1

    made = store._oplog_once_watched(Shipped)
    replica, standalone = made("a", enable_oplog=True), made("b", enable_oplog=False)
    assert (replica.enable_oplog, standalone.enable_oplog) == (False, False)
    assert isinstance(replica, Shipped) and made.__name__ == "Shipped"
    store._oplog_for("find", {"find": "c", "filter": {}}, replica)
    store._oplog_for("aggregate", {"aggregate": "c", "pipeline": [{"$match": {}}]}, replica)
    store._oplog_for("aggregate", {"aggregate": "c", "pipeline": []}, replica)
    assert replica.enable_oplog is False and replica.bootstrapped == 0
    watch = {"aggregate": 1, "pipeline": [{"$changeStream": {}}, {"$match": {}}]}
    store._oplog_for("aggregate", watch, standalone)
    assert standalone.enable_oplog is False  # no replica set: no stream to serve
    store._oplog_for("aggregate", watch, replica)
    assert replica.enable_oplog is True and replica.bootstrapped == 1
    store._oplog_for("aggregate", watch, replica)
    assert replica.bootstrapped == 1  # once
    store._oplog_for("aggregate", watch, None)  # a command without a storage: nothing


def test_a_value_is_the_same_to_an_index_only_with_its_types_and_order():
    assert store._same({"a": [1, {"b": "x"}]}, {"a": [1, {"b": "x"}]})
    assert not store._same(1, 1.0) and not store._same(True, 1) and not store._same(0, False)
    assert not store._same({"a": 1, "b": 2}, {"b": 2, "a": 1})  # BSON keeps field order
    assert not store._same(float("nan"), float("nan"))  # unsure: the entries are compared
    assert not store._same([1, 2], [1, 2, 3]) and not store._same(None, store._ABSENT)
    assert store._untouched({"a.b": 1, "c": -1}, {"a": {"b": 1}, "c": 2}, {"a": {"b": 1}, "c": 2})
    assert not store._untouched({"a.b": 1}, {"a": {"b": 1}}, {"a": {"b": 1, "d": 0}})


def _outcome(call, *args):
    """What a call returns, or the type, code and message of what it raises (compared with
    what the store's own function raises)."""
    try:
        return call(*args)
    except Exception as err:
        return type(err), getattr(err, "code", None), str(err)


def test_keys_and_values_pack_and_unpack_as_wiredtiger_s_own_functions_do():
    """The packing kept per format (deploy/local/wtpack.py) makes the bytes and values
    WiredTiger's own functions make, for the formats of SecantusDB's tables and for what
    it leaves to them (other columns, sizes, other types, a count that is not the format's,
    a key without a string's terminator); each launcher's store uses it."""
    import random
    import types

    from secantus import storage as shipped

    from deploy.local import wtpack

    swig = shipped.wt
    packing = __import__(swig.pack.__module__)
    rng = random.Random(33)
    fast_int = wtpack.int_packer(packing.pack_int)
    edges = [0, 1, 63, 64, 65, 8255, 8256, 8257, 8258, 2**16, 2**32 - 1, 2**63 - 1, 2**64 - 1]
    others = [-1, -64, -65, -8256, -8257, -(2**63), 2**64, 2**64 + 8255, True, 1.5]
    for x in edges + others + [rng.randrange(0, 2**64) for _ in range(2000)]:
        assert _outcome(fast_int, x) == _outcome(packing.pack_int, x), x
    fast = wtpack.packer(packing.pack, fast_int)
    fast_unpack = wtpack.unpacker(packing.unpack, packing.unpack_int)

    def text():
        return "".join(rng.choice("ab_.$ é\0€") for _ in range(rng.randrange(0, 12)))

    def raw():
        return rng.randbytes(rng.randrange(0, 300))

    def integer():
        return rng.choice(edges + [rng.randrange(0, 2**64), rng.randrange(0, 100_000)])

    made = {"S": text, "u": raw, "q": integer, "Q": integer, "r": integer}
    formats = ["SSq", "SS", "SSu", "SSS", "SSSu", "q", "S", "u", "uq", "uu", "Qu", "rS"]
    for fmt in formats * 150:
        values = tuple(made[c]() for c in fmt)
        packed = packing.pack(fmt, *values)
        assert fast(fmt, *values) == packed, (fmt, values)
        assert fast_unpack(fmt, packed) == packing.unpack(fmt, packed), (fmt, values)
    left = [
        ("i", (5,)),
        ("10s", ("abc",)),
        ("QQQQQQBBBB", tuple(range(10))),
        (".SSq", ("a", "b", 3)),
        ("", ()),
        ("S", (b"bytes",)),
        ("u", ("text",)),
        ("q", (True,)),
        ("q", (1.5,)),
        ("SS", ("one",)),
        ("SS", ("one", "two", "three")),
        ("q", (-70,)),
    ]
    for fmt, values in left:
        assert _outcome(fast, fmt, *values) == _outcome(packing.pack, fmt, *values), fmt
    for fmt, data in [("SSq", b"no terminator"), ("S", b""), ("u", b""), ("q", b"\x81")]:
        assert _outcome(fast_unpack, fmt, data) == _outcome(packing.unpack, fmt, data), fmt

    # the launcher puts them where WiredTiger's cursors look them up (a stand-in here)
    assert store._cursors_module().__dict__ is swig.Cursor.set_key.__globals__
    cursors = types.SimpleNamespace(pack=packing.pack, unpack=packing.unpack)
    store._pack_kept(cursors)
    assert cursors.pack is not packing.pack and cursors.unpack is not packing.unpack
    assert cursors.pack("SSu", "db", "c", b"k") == packing.pack("SSu", "db", "c", b"k")
    with pytest.raises(SystemExit):
        store._pack_kept(types.SimpleNamespace(pack=print, unpack=packing.unpack))


def test_an_update_s_paths_are_checked_once_per_shape_as_the_store_as_shipped_checks_them():
    """The check of an update's operators and paths kept per shape (`_paths_kept`) answers
    as SecantusDB's own: a conflict, an empty path, an unknown operator, a `$rename`'s two
    ends, in the order mongod finds them; what raises raises again; a new shape is checked
    by the store's own code, an update of a shape already seen is not."""
    from bson.son import SON
    from secantus import update as shipped

    calls = []

    def counted(update):
        calls.append(update)
        return shipped._validate_update_paths(update)

    kept = store._paths_kept(counted)
    updates = [
        {"$set": {"a": 1, "b.c": 2}, "$inc": {"n": 1}},
        {"$set": {"a": 2}, "$inc": {"a": 1}},
        {"$set": {"a": 2}, "$inc": {"a.b": 1}},
        {"$set": {"a.b": 2}, "$inc": {"a": 1}},
        {"$set": {"a.b": 2}, "$inc": {"a.b.c": 1}},
        {"$rename": {"a": "b"}, "$set": {"b": 9}},
        {"$rename": {"a": "a"}},
        {"$rename": {"a": 5}, "$set": {"a.x": 1}},
        {"$inc": {"": 1}, "$set": {"a": 1, "a.b": 1}},
        {"$set": {"a": 1, "a.b": 1}, "$inc": {"": 1}},
        {"$nope": {"a": 1}, "$set": {"": 1}},
        {"$set": {"": 1}, "$nope": {"a": 1}},
        {"$set": {"a..b": 1}},
        {"$set": {"a": 1}, "z": 2},
        {"$unset": "a"},
        {"$set": SON([("a", 1), ("a.b", 2)])},
        {"$set": {"status": "sent", "sent_at": 1}, "$unset": {"claim": "", "lease_until": ""}},
    ]
    for update in updates + updates:
        assert _outcome(kept, update) == _outcome(shipped._validate_update_paths, update), update
    calls.clear()
    for update in updates:  # every shape seen: only what raised, and the SON, go again
        _outcome(kept, update)
    again = [u for u in updates if any(u is c for c in calls)]
    assert {"$set": {"a": 1}, "z": 2} in again and {"$nope": {"a": 1}, "$set": {"": 1}} in again
    assert {"$set": SON([("a", 1), ("a.b", 2)])} in again
    assert {"$set": {"a": 2}, "$inc": {"a": 1}} not in again
    assert {"$set": {"a": 1, "b.c": 2}, "$inc": {"n": 1}} not in again
    # the same shape with other values is the same answer, kept
    assert kept({"$set": {"a": "x", "b.c": None}, "$inc": {"n": 5}}) is None
    assert not any(c == {"$set": {"a": "x", "b.c": None}, "$inc": {"n": 5}} for c in calls)


def _changeable(value) -> list:
    """Every object in a value that can be changed in place (not one of the launcher's
    _ATOMS), depth first."""
    found = [] if type(value) in store._ATOMS else [value]
    if isinstance(value, dict):
        for v in value.values():
            found += _changeable(v)
    elif isinstance(value, list):
        for v in value:
            found += _changeable(v)
    return found


def test_a_document_is_copied_as_copy_deepcopy_copies_it_and_shares_nothing_changeable():
    """The launcher's copy for SecantusDB's updates and projections (`_copied`) gives what
    copy.deepcopy gives, types and field order all the way down, and shares with the
    original only values that cannot change in place; other classes (SON, Regex, DBRef,
    Code) go to copy.deepcopy. Installed in the modules that call it, and only there."""
    import copy
    import datetime
    import random
    import uuid
    from types import SimpleNamespace

    import bson
    from bson.son import SON
    from secantus import projection, update

    rng = random.Random(34)
    atoms = [
        lambda: rng.choice(["", "a", "é", "x" * 40]),
        lambda: rng.randint(-(2**31), 2**31),
        lambda: rng.random() * 1e6,
        lambda: rng.choice([True, False]),
        lambda: None,
        lambda: rng.randbytes(rng.randint(0, 8)),
        lambda: datetime.datetime(2026, 12, 6, rng.randint(0, 23), tzinfo=datetime.UTC),
        lambda: uuid.UUID(int=rng.getrandbits(128)),
        lambda: bson.ObjectId(),
        lambda: bson.Int64(rng.randint(0, 2**62)),
        lambda: bson.Decimal128(str(rng.randint(0, 999))),
        lambda: bson.Timestamp(rng.randint(1, 2**31), 1),
        lambda: bson.Binary(rng.randbytes(4), rng.choice([0, 4, 128])),
        lambda: bson.MinKey(),
        lambda: bson.MaxKey(),
    ]
    others = [
        lambda d: SON([("b", value(d)), ("a", value(d))]),
        lambda d: bson.Regex("^a.*", "i"),
        lambda d: bson.DBRef("c", rng.randint(0, 9)),
        lambda d: bson.Code("function () {}", {"x": value(d)}),
    ]

    def value(depth: int):
        pick = rng.random()
        if depth < 4 and pick < 0.2:
            return {f"k{i}": value(depth + 1) for i in rng.sample(range(9), rng.randint(0, 4))}
        if depth < 4 and pick < 0.35:
            return [value(depth + 1) for _ in range(rng.randint(0, 4))]
        if pick < 0.4:
            return rng.choice(others)(depth + 1)
        return rng.choice(atoms)()

    compared = 0
    for _ in range(400):
        doc = {"_id": value(3), **{f"f{i}": value(0) for i in range(rng.randint(0, 8))}}
        copied, deep = store._copied(doc), copy.deepcopy(doc)
        assert store._same(copied, deep), (doc, copied)
        original = {id(v) for v in _changeable(doc)}
        assert not [v for v in _changeable(copied) if id(v) in original], doc
        compared += len(_changeable(doc))
    assert compared > 2000  # (nested dicts, lists and other classes were compared)
    one = {"a": [{"b": [1]}]}
    copied = store._copied(one)
    copied["a"][0]["b"].append(2)
    assert one == {"a": [{"b": [1]}]}
    # installed where the store calls copy.deepcopy, in SecantusDB's updates and projections
    assert update.copy is copy and projection.copy is copy  # (this process is not patched)
    modules = [SimpleNamespace(copy=copy), SimpleNamespace(copy=copy)]
    store._copies_plainly(*modules)
    assert all(m.copy.deepcopy is store._copied and m.copy.copy is copy.copy for m in modules)
    assert copy.deepcopy is not store._copied  # the standard library's own is left as it is
    with pytest.raises(SystemExit):
        store._copies_plainly(SimpleNamespace())


def test_a_dollar_in_of_strings_matches_what_the_store_as_shipped_matches(monkeypatch):
    """A `$in` of strings alone matched by a set (`_in_by_set`) matches the same documents
    as SecantusDB's own matcher: a string, an array holding one (one level read through, as
    the store reads it), and nothing else (a number, a bool, None, a missing field, a
    nested array); a `$in` with any other element, a collation, a `$nin`, goes as shipped,
    and the same list seen again by another document is answered from its set."""
    from bson.regex import Regex
    from secantus import query
    from secantus.collation import parse

    shipped = query._op_matches
    calls = []

    def counted(values, op, arg, *args, **kwargs):
        calls.append((op, arg))
        return shipped(values, op, arg, *args, **kwargs)

    docs = [
        {"_id": "m1", "tags": ["a", "b"], "n": 1, "sub": [{"k": "a"}, {"k": "z"}]},
        {"_id": "m2", "tags": [["a"]], "n": "1", "sub": {"k": "b"}},
        {"_id": "M1", "tags": [], "n": True, "sub": [[{"k": "a"}]]},
        {"_id": 1, "tags": "a", "n": None},
        {"_id": 1.0, "tags": ["c", 1], "n": 1.0},
        {"_id": "", "tags": None},
        {"_id": {"k": "m1"}, "tags": [None, "b"]},
        {"_id": ["m1"], "n": ["1", 2]},
    ]
    filters = [
        {"_id": {"$in": ["m1", "m2", "x"]}},
        {"_id": {"$in": ["M1", "", "m1"]}},
        {"tags": {"$in": ["a"]}},
        {"tags": {"$in": ["b", "c"]}},
        {"n": {"$in": ["1"]}},
        {"sub.k": {"$in": ["a", "b"]}},
        {"missing": {"$in": ["a"]}},
        {"_id": {"$in": ["m1", 1]}},  # not strings alone: as shipped
        {"tags": {"$in": ["a", None]}},
        {"_id": {"$in": [Regex("^m")]}},
        {"_id": {"$in": []}},
        {"_id": {"$nin": ["m1", "m2"]}},
        {"_id": {"$in": ["m1", "m2"]}, "n": {"$in": ["1", "2"]}},
    ]
    collation = parse({"locale": "en", "strength": 2})
    expected = {
        (i, j, c): query.matches(d, f, collation=collation if c else None)
        for i, d in enumerate(docs)
        for j, f in enumerate(filters)
        for c in (False, True)
    }
    assert any(expected.values()) and not all(expected.values())
    monkeypatch.setattr(query, "_op_matches", store._in_by_set(counted))
    for (i, j, c), wanted in expected.items():
        got = query.matches(docs[i], filters[j], collation=collation if c else None)
        assert got == wanted, (docs[i], filters[j], c)
    calls.clear()
    for d in docs:
        query.matches(d, filters[0])
        query.matches(d, filters[7])
        query.matches(d, filters[11])
    assert not [arg for op, arg in calls if arg is filters[0]["_id"]["$in"]]
    assert len([arg for op, arg in calls if arg is filters[7]["_id"]["$in"]]) == len(docs)
    assert len([op for op, _ in calls if op == "$nin"]) == len(docs)


def test_a_find_with_a_limit_reads_no_more_than_it_needs_and_finds_what_the_store_finds(
    tmp_path,
):
    """A find with a limit and no sort, served by an index (`_limit_early`), reads the
    documents the index names `limit` at a time and stops once it has them: the same
    documents, in the same order, as the store as shipped, which read every one named
    first. A multikey index naming a document twice, a projection, a filter the index
    serves only in part, one no index serves, a sort and a skip all answer as shipped."""
    from secantus import storage as shipped

    fetched = []

    class Counted(shipped.Storage):
        def _docs_by_recordids(self, db, coll, recordids):
            fetched.append(len(recordids))
            return shipped.Storage._docs_by_recordids(self, db, coll, recordids)

    class Early(Counted):
        find_matching = store._limit_early(shipped.Storage.find_matching)

    stores = [Counted(str(tmp_path / "a")), Early(str(tmp_path / "b"))]
    docs = [
        {
            "_id": f"m{i:03d}",
            "status": "pending" if i % 4 else "sent",
            "n": i,
            "tags": ["a", "b"] if i % 3 == 0 else [f"t{i % 5}"],
            "body": {"text": "x" * 20, "i": i},
        }
        for i in range(300)
    ]
    for db in stores:
        db.create_index("d", "m", "status", {"status": 1}, {})
        db.create_index("d", "m", "tags", {"tags": 1}, {})
        db.insert("d", "m", [dict(d) for d in docs])
    finds = [
        ({"status": "pending"}, {"limit": 5}),
        ({"status": "pending", "n": {"$gt": 250}}, {"limit": 5}),  # most named do not match
        ({"status": "pending", "n": {"$gt": 1000}}, {"limit": 5}),  # none does
        ({"tags": {"$in": ["a", "b"]}}, {"limit": 7}),  # each named twice
        ({"status": "sent"}, {"limit": 3, "projection": {"n": 1, "body.i": 1}}),
        ({"n": {"$gte": 100}}, {"limit": 4}),  # no index: the collection read
        ({"status": "pending"}, {"limit": 4, "sort": {"n": -1}}),
        ({"status": "pending"}, {"limit": 4, "skip": 3}),
        ({"status": "pending"}, {"limit": 0}),
    ]
    finds.append(({"status": "pending", "$expr": {"$lt": ["$n", "$$cut"]}}, {"limit": 3}))
    read = []
    for f, options in finds:
        answers = []
        for db in stores:
            fetched.clear()
            # the store binds $$NOW for every find (commands._resolve_let_vars)
            let = {"NOW": datetime.datetime.now(datetime.UTC), "cut": 3}
            answers.append(db.find_matching("d", "m", f, let=let, **options))
            read.append(sum(fetched))
        assert answers[0] == answers[1], (f, options)
    assert any(a for a in answers)
    shipped_read, early_read = read[0::2], read[1::2]
    assert early_read[0] == 5 and shipped_read[0] == 225  # the first five of 225 named
    assert early_read[3] == 7 and shipped_read[3] == 100
    assert early_read[1] < shipped_read[1] == 225
    assert early_read[2] == shipped_read[2] == 225  # none matched: every one read
    assert early_read[6:9] == shipped_read[6:9]  # a sort, a skip, no limit: as shipped
    assert answers[0] == [d for d in docs if d["n"] in (1, 2)]  # `$expr`, with the variables
    for db in stores:
        db.close()


class _SweepGate:
    """The TTL sweeper's stop event: the first wait ends at once (a sweep runs), the second
    says so and keeps the sweeper parked, as between two sweeps, until `go`."""

    def __init__(self):
        self.waits, self.parked, self.go = 0, threading.Event(), threading.Event()

    def wait(self, timeout=None) -> bool:
        self.waits += 1
        if self.waits == 1:
            return False
        self.parked.set()
        self.go.wait(30)
        return True  # stopped: the sweeper leaves

    def set(self) -> None:  # the store's close()
        self.go.set()


PINNED = "transaction: transaction range of IDs currently pinned"


def _pinned(db) -> int:
    """WiredTiger's range of transaction ids still pinned, the oldest brought up to date
    (a checkpoint) first."""
    session = db._conn.open_session()
    try:
        session.checkpoint()
    finally:
        session.close()
    counters = store.engine_counters(db._conn, (PINNED,))
    assert PINNED in counters, "the engine did not say what it pins"
    return counters[PINNED]


def test_the_ttl_sweeper_pins_nothing_between_two_sweeps(tmp_path):
    """The store's TTL sweeper (its own loop, on a thread of its own) sweeps, then waits for
    the next sweep. As shipped it waits holding the snapshot of the sweep it ran, so the
    engine keeps every version written meanwhile (a minute of the practice's writes); the
    launcher's sweep lets go of it (`_sweep_lets_go`), as the server does after every
    request."""
    from secantus import storage as shipped

    class Launched(shipped.Storage):
        prune_ttl_all_collections = store._sweep_lets_go(shipped.Storage.prune_ttl_all_collections)

    pinned = {}
    for kind in (shipped.Storage, Launched):
        db = kind(str(tmp_path / kind.__name__), ttl_sweep_seconds=0)
        db._conn.reconfigure("statistics=(fast)")
        db.create_index("d", "keys", "expires", {"expires_at": 1}, {"expireAfterSeconds": 0})
        later = datetime.datetime(2999, 1, 1)
        db.insert("d", "keys", [{"_id": f"k{i}", "expires_at": later} for i in range(50)])
        db.release_thread_snapshot()
        gate = _SweepGate()
        db._ttl_stop, db._ttl_sweep_seconds = gate, 0.01
        sweeper = threading.Thread(target=db._ttl_sweep_loop, daemon=True)
        sweeper.start()
        try:
            assert gate.parked.wait(30), "the sweeper did not sweep"
            for i in range(300):  # requests of other clients meanwhile
                db.insert("d", "w", [{"_id": f"w{i}"}])
                db.release_thread_snapshot()
            pinned[kind.__name__] = _pinned(db)
        finally:
            gate.go.set()
            sweeper.join(30)
            db.close()
    assert pinned["Storage"] >= 300, pinned  # as shipped: pinned by the parked sweeper
    assert pinned["Launched"] < 30, pinned
