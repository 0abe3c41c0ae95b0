"""A batch's writes, combined (shared.combine), leave the store exactly as the same writes one
by one do: checked on the real store with random batches, and the folding rules one by one."""

from __future__ import annotations

import copy
import random

import pymongo
import pytest
from pymongo import monitoring
from pymongo.errors import WriteError

from shared.combine import TOGETHER_MAX, Fresh, Write, combine, fold, send
from shared.projections import snapshot


class Named:
    """Stands in for a collection where only its name matters (the pure rules below)."""

    def __init__(self, full_name: str):
        self.full_name = full_name


C = Named("db.c")


def up(filter_, update, **options) -> Write:
    return Write.of(C, "update_one", (filter_, update), options)


def test_increments_and_pushes_of_one_document_fold_into_one_update():
    folded = fold(
        up({"_id": 1}, {"$inc": {"sum": 2}, "$push": {"v": 1}}, upsert=True),
        up({"_id": 1}, {"$inc": {"sum": 3}, "$push": {"v": 2}}, upsert=True),
    )
    assert folded is not None
    assert folded.params["update"] == {"$inc": {"sum": 5}, "$push": {"v": {"$each": [1, 2]}}}
    assert folded.options == {"upsert": True}


def test_a_later_set_wins_and_a_later_set_on_insert_is_dropped():
    folded = fold(
        up({"_id": 1}, {"$set": {"a": 1}, "$setOnInsert": {"n": 0}}, upsert=True),
        up({"_id": 1}, {"$set": {"a": 2, "b": 3}, "$setOnInsert": {"m": 0}}, upsert=True),
    )
    assert folded is not None
    assert folded.params["update"] == {"$set": {"a": 2, "b": 3}, "$setOnInsert": {"n": 0}}


@pytest.mark.parametrize(
    "first, then",
    [
        # another document, or a condition besides _id
        (up({"_id": 1}, {"$set": {"a": 1}}), up({"_id": 2}, {"$set": {"a": 1}})),
        (up({"_id": 1, "s": 0}, {"$set": {"a": 1}}), up({"_id": 1, "s": 0}, {"$set": {"a": 1}})),
        # upsert differs: the first might do nothing where the second inserts
        (up({"_id": 1}, {"$set": {"a": 1}}), up({"_id": 1}, {"$set": {"a": 2}}, upsert=True)),
        # one path under two operators, or a path inside another
        (up({"_id": 1}, {"$setOnInsert": {"n": 0}}), up({"_id": 1}, {"$inc": {"n": 1}})),
        (up({"_id": 1}, {"$set": {"a": {"x": 1}}}), up({"_id": 1}, {"$set": {"a.x": 2}})),
        (up({"_id": 1}, {"$set": {"a": 1}}), up({"_id": 1}, {"$inc": {"a": 1}})),
        # operators and options it does not know
        (up({"_id": 1}, {"$unset": {"a": ""}}), up({"_id": 1}, {"$set": {"a": 1}})),
        (
            up({"_id": 1}, {"$push": {"v": {"$each": [1], "$slice": -2}}}),
            up({"_id": 1}, {"$push": {"v": 2}}),
        ),
        (up({"_id": 1}, {"$set": {"a": 1}}), up({"_id": 1}, {"$set": {"a": 1}}, hint="_id_")),
        (up({"_id": 1}, {"$inc": {"n": True}}), up({"_id": 1}, {"$inc": {"n": 1}})),
        (up({"_id": 1}, {"$inc": {"n": 1}}), up({"_id": 1}, {"$inc": {"n": "1"}})),
        # one update touching a path twice, or a path and a path inside it (the store refuses
        # it: folded, the other update's change would go or fail with it)
        (up({"_id": 1}, {"$set": {"a": 1}, "$inc": {"a": 1}}), up({"_id": 1}, {"$set": {"b": 1}})),
        (up({"_id": 1}, {"$set": {"b": 1}}), up({"_id": 1}, {"$set": {"a": 1}, "$inc": {"a": 1}})),
        (up({"_id": 1}, {"$set": {"a": {}, "a.x": 1}}), up({"_id": 1}, {"$set": {"b": 1}})),
        (
            up({"_id": 1}, {"$set": {"b": 1}}),
            up({"_id": 1}, {"$set": {"a.x": 1}, "$inc": {"a": 1}}),
        ),
    ],
)
def test_what_cannot_be_folded_for_certain_is_not(first, then):
    assert fold(first, then) is None


def test_increments_of_ints_and_floats_add_up_and_unrelated_dotted_paths_fold():
    folded = fold(
        up({"_id": 1}, {"$inc": {"n": 1, "a.x": 0.5}, "$set": {"a.y": 1}}),
        up({"_id": 1}, {"$inc": {"n": 2.5, "a.x": 1}, "$set": {"ab": 2}}),
    )
    assert folded is not None
    assert folded.params["update"] == {"$inc": {"n": 3.5, "a.x": 1.5}, "$set": {"a.y": 1, "ab": 2}}


def test_a_documents_many_updates_fold_into_one_and_the_writes_given_stay_as_they_were():
    """A rebuild folds about 60 updates of each document into one (in place, issue 14):
    the updates it was given are not changed by it, and folding them again gives the same."""
    writes = [up({"_id": 1}, {"$inc": {"n": 1}, "$push": {"v": {"$each": [0]}}}, upsert=True)]
    writes += [
        up({"_id": 1}, {"$inc": {"n": 1}, "$push": {"v": i}}, upsert=True) for i in range(1, 60)
    ]
    writes.append(
        up({"_id": 1}, {"$set": {"a": 1}, "$push": {"w": {"$each": [1, 2]}}}, upsert=True)
    )
    given = copy.deepcopy([w.params for w in writes])
    out = combine(writes)
    assert [w.params["update"] for w in out] == [
        {
            "$inc": {"n": 60},
            "$push": {"v": {"$each": list(range(60))}, "w": {"$each": [1, 2]}},
            "$set": {"a": 1},
        }
    ]
    assert [w.params for w in writes] == given
    assert [w.params for w in combine(writes)] == [w.params for w in out]
    # a write that cannot fold leaves the tail as it was, and the next folds after it
    odd = up({"_id": 1}, {"$inc": {"v": 1}}, upsert=True)
    again = combine([*writes[:3], odd, writes[3]])
    assert [w.params["update"] for w in again] == [
        {"$inc": {"n": 3}, "$push": {"v": {"$each": [0, 1, 2]}}},
        {"$inc": {"v": 1}},
        {"$inc": {"n": 1}, "$push": {"v": 3}},
    ]


def test_a_write_that_may_touch_any_document_is_a_fence():
    writes = [
        up({"_id": 1}, {"$inc": {"n": 1}}),
        up({"_id": 2}, {"$inc": {"n": 1}}),
        Write.of(C, "update_many", ({}, {"$set": {"seen": True}}), {}),
        up({"_id": 1}, {"$inc": {"n": 1}}),
        up({"_id": 2}, {"$inc": {"n": 1}}),
        up({"_id": 1}, {"$inc": {"n": 1}}),
    ]
    out = combine(writes)
    assert [(w.name, w.params["filter"]) for w in out] == [
        ("update_one", {"_id": 1}),
        ("update_one", {"_id": 2}),
        ("update_many", {}),
        ("update_one", {"_id": 1}),
        ("update_one", {"_id": 2}),
    ]
    assert out[3].params["update"] == {"$inc": {"n": 2}}


def test_a_collection_with_a_unique_index_keeps_its_order():
    writes = [
        up({"_id": 1}, {"$inc": {"n": 1}}),
        up({"_id": 2}, {"$inc": {"n": 1}}),
        up({"_id": 1}, {"$inc": {"n": 1}}),
        up({"_id": 1}, {"$inc": {"n": 1}}),
    ]
    out = combine(writes, frozenset({"db.c"}))
    assert [w.params["filter"]["_id"] for w in out] == [1, 2, 1]
    assert out[2].params["update"] == {"$inc": {"n": 2}}


# -- a generation its only writer began empty (a rebuild): Fresh ------------------------------


def test_the_upsert_that_makes_a_document_goes_as_the_insert_of_what_it_makes():
    fresh = Fresh()
    made = up(
        {"_id": 1},
        {
            "$set": {"a": 1, "c.x": 2},
            "$inc": {"n": 3},
            "$push": {"v": {"$each": [4, 5]}},
            "$setOnInsert": {"s": 0},
        },
        upsert=True,
    )
    sent, first = fresh.settle(made)
    assert first and sent is not None and sent.name == "insert_one"
    assert sent.params["document"] == {"_id": 1, "a": 1, "c": {"x": 2}, "n": 3, "v": [4, 5], "s": 0}
    again = up({"_id": 1}, {"$inc": {"n": 1}}, upsert=True)
    assert fresh.settle(again) == (again, False)  # made already: an update as given


def test_what_would_find_no_document_is_not_sent_and_what_is_uncertain_goes_as_given():
    fresh = Fresh()
    assert fresh.settle(up({"_id": 1}, {"$set": {"a": 1}})) == (None, False)
    assert fresh.settle(Write.of(C, "delete_one", ({"_id": 1},), {})) == (None, False)
    # an upsert with a condition besides _id also copies it: made, but sent as given
    odd = up({"_id": 2, "k": "v"}, {"$set": {"a": 1}}, upsert=True)
    assert fresh.settle(odd) == (odd, False)
    assert fresh.settle(up({"_id": 2}, {"$set": {"a": 2}}))[0] is not None
    # an operator it does not fold, or a path it does not build
    for update in ({"$addToSet": {"t": 1}}, {"$set": {"a.0": 1}}, {"$set": {"a": 1, "a.b": 2}}):
        given = up({"_id": 3 + len(str(update))}, update, upsert=True)
        assert fresh.settle(given) == (given, False)


def test_a_write_that_may_make_a_document_of_an_unknown_id_stops_the_tracking():
    fresh = Fresh()
    unkeyed = Write.of(C, "update_one", ({"k": "v"}, {"$set": {"a": 1}}), {"upsert": True})
    assert fresh.settle(unkeyed) == (unkeyed, False)
    update = up({"_id": 9}, {"$set": {"a": 1}})
    assert fresh.settle(update) == (update, False)  # it may be there now: sent
    other = Write.of(Named("db.d"), "update_one", ({"_id": 9}, {"$set": {"a": 1}}), {})
    assert fresh.settle(other) == (None, False)  # another collection is still tracked


def test_past_its_limit_a_collection_is_no_longer_tracked():
    fresh = Fresh(limit=2)
    assert fresh.settle(up({"_id": 1}, {"$set": {"a": 1}}, upsert=True))[1]
    assert fresh.settle(up({"_id": 2}, {"$set": {"a": 1}}, upsert=True))[1]
    third = up({"_id": 3}, {"$set": {"a": 1}}, upsert=True)
    assert fresh.settle(third) == (third, False)
    first_again = up({"_id": 1}, {"$set": {"a": 2}})
    assert fresh.settle(first_again) == (first_again, False)
    assert fresh.count == 0


def test_first_writes_go_together_before_the_others_and_a_documents_order_holds():
    fresh = Fresh()
    fresh.settle(up({"_id": 1}, {"$set": {"a": 0}}, upsert=True))  # made in an earlier batch
    writes = [
        up({"_id": 1}, {"$set": {"a": 1}}),
        up({"_id": 2}, {"$set": {"a": 1}}, upsert=True),
        up({"_id": 2}, {"$addToSet": {"t": 1}}),
        up({"_id": 3}, {"$set": {"a": 1}}, upsert=True),
    ]
    out = fresh.settle_all(combine(writes))
    assert [(w.name, w.params.get("filter", w.params.get("document"))["_id"]) for w in out] == [
        ("insert_one", 2),
        ("insert_one", 3),
        ("update_one", 1),
        ("update_one", 2),
    ]


# -- on the real store: random batches, combined and not --------------------------------------

FIELDS = {"$set": ("a", "b", "c.x"), "$inc": ("n", "m"), "$push": ("v", "w")}


def _update(rng: random.Random) -> dict:
    update: dict = {}
    used: set[str] = set()
    for _ in range(rng.randint(1, 3)):
        op = rng.choice(["$set", "$inc", "$push", "$setOnInsert"])
        if op == "$setOnInsert":
            path = rng.choice(["a", "n", "v", "s"])
            value = {"a": "first", "n": 100, "v": [], "s": rng.randint(0, 9)}[path]
        else:
            path = rng.choice(FIELDS[op])
            value = {
                "$set": lambda: rng.choice(["x", "y", {"k": rng.randint(0, 5)}, rng.randint(0, 9)]),
                "$inc": lambda: rng.choice([1, 2, -1, 0.5]),
                "$push": lambda: rng.choice([rng.randint(0, 9), {"$each": [1, 2]}]),
            }[op]()
        root = path.split(".")[0]
        if root in used:
            continue
        used.add(root)
        update.setdefault(op, {})[path] = value
    return update


def _batch(rng: random.Random, coll) -> list[Write]:
    writes = []
    for _ in range(rng.randint(5, 60)):
        doc = rng.randint(0, 4)
        roll = rng.random()
        if roll < 0.8:
            writes.append(
                Write.of(
                    coll, "update_one", ({"_id": doc}, _update(rng)), {"upsert": rng.random() < 0.8}
                )
            )
        elif roll < 0.87:
            writes.append(
                Write.of(
                    coll, "update_one", ({"_id": doc, "m": {"$gt": 1}}, {"$inc": {"n": 10}}), {}
                )
            )
        elif roll < 0.92:
            writes.append(Write.of(coll, "delete_one", ({"_id": doc},), {}))
        elif roll < 0.96:
            writes.append(
                Write.of(coll, "update_many", ({"n": {"$gte": 2}}, {"$inc": {"m": 1}}), {})
            )
        else:
            writes.append(
                Write.of(coll, "replace_one", ({"_id": doc}, {"a": "replaced"}), {"upsert": True})
            )
    return writes


def _apply_one_by_one(writes: list[Write]) -> None:
    for w in writes:
        try:
            getattr(w.collection, w.name)(**w.params, **w.options)
        except WriteError:
            raise AssertionError(f"the generator made an invalid write: {w}") from None


def test_random_batches_combined_leave_the_same_documents(settings):
    mongo = pymongo.MongoClient(settings.mongo_uri)
    db = mongo[settings.database("combine")]
    folded_away = 0
    try:
        for seed in range(40):
            rng = random.Random(seed)
            one, together = db[f"one_{seed}"], db[f"together_{seed}"]
            writes = _batch(rng, one)
            _apply_one_by_one(writes)
            moved = [Write(together, w.name, w.params, w.options) for w in writes]
            combined = combine(moved)
            folded_away += len(moved) - len(combined)
            together.bulk_write([w.op() for w in combined], ordered=True)
            assert snapshot(together) == snapshot(one), f"seed {seed}: {[w.params for w in writes]}"
        assert folded_away > 200  # the batches did fold: this compares something
    finally:
        mongo.drop_database(db.name)
        mongo.close()


def test_random_batches_settled_into_an_empty_collection_leave_the_same_documents(settings):
    """A rebuild's batches (shared.combine.Fresh): combined, first writes sent as inserts,
    writes that find nothing left out, batch after batch into a collection begun empty,
    leave what the same writes one by one do."""
    mongo = pymongo.MongoClient(settings.mongo_uri)
    db = mongo[settings.database("fresh")]
    inserted = dropped = 0
    try:
        for seed in range(20):
            rng = random.Random(1000 + seed)
            one, together = db[f"one_{seed}"], db[f"together_{seed}"]
            fresh = Fresh()
            for _ in range(4):
                writes = _batch(rng, one)
                _apply_one_by_one(writes)
                moved = [Write(together, w.name, w.params, w.options) for w in writes]
                combined = combine(moved)
                sent = fresh.settle_all(combined)
                inserted += sum(w.name == "insert_one" for w in sent)
                dropped += len(combined) - len(sent)
                if sent:
                    together.bulk_write([w.op() for w in sent], ordered=True)
                assert snapshot(together) == snapshot(one), f"seed {seed}"
        assert inserted > 50 and dropped > 5, (inserted, dropped)  # both paths were taken
    finally:
        mongo.drop_database(db.name)
        mongo.close()


class _Updates(monitoring.CommandListener):
    """The update commands a client sends, by collection."""

    def __init__(self):
        self.sent: list[str] = []

    def started(self, event):
        if event.command_name == "update":
            self.sent.append(event.command["update"])

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


def test_many_interleaved_writes_go_as_one_bulk_per_collection_in_their_order(settings):
    """Past TOGETHER_MAX, a batch's writes go one bulk per collection, each collection's in
    the order they came, and a write whose matched count is asked for in a bulk of its own:
    sent as they came, interleaved writes to three collections were a bulk per write, and a
    consumer behind with a few hundred of them fell further behind (issue 14, session 28).
    They leave what the same writes one by one leave."""
    listener = _Updates()
    mongo = pymongo.MongoClient(settings.mongo_uri, event_listeners=[listener])
    db = mongo[settings.database("send")]
    try:
        writes, alone = [], []
        for i in range(150):
            name = "abc"[i % 3]
            for coll in (db[f"one_{name}"], db[f"together_{name}"]):
                update = {"$inc": {"n": 1}, "$push": {"seen": i}}
                write = Write.of(coll, "update_one", ({"_id": i % 7}, update), {"upsert": True})
                (alone if coll.name.startswith("one") else writes).append(write)
        checked = 76  # a conditional write in the middle of b's
        condition = ({"_id": 4, "n": {"$gte": 3}}, {"$set": {"flag": 1}})
        writes.insert(checked, Write.of(db["together_b"], "update_one", condition, {}))
        alone.insert(checked, Write.of(db["one_b"], "update_one", condition, {}))
        assert len(writes) > TOGETHER_MAX
        _apply_one_by_one(alone)
        listener.sent.clear()
        with mongo.start_session() as session:
            matched = session.with_transaction(lambda s: send(writes, s, frozenset({checked})))
        assert matched == {checked: 1}
        assert listener.sent == [
            "together_a",
            "together_b",
            "together_b",
            "together_b",
            "together_c",
        ]
        for name in "abc":
            assert snapshot(db[f"together_{name}"]) == snapshot(db[f"one_{name}"]), name
    finally:
        mongo.drop_database(db.name)
        mongo.close()


def test_a_write_conflict_in_a_bulk_across_collections_runs_the_transaction_again(settings):
    """Another transaction holds a document the batch writes: the store answers the batch's
    `bulkWrite` with a WriteConflict, which pymongo wraps without the label its
    `with_transaction` retries on. The transaction runs again once the other ends, instead
    of the error reaching the consumer as if the store were down (and a backoff after it)."""
    import threading

    from shared.combine import can_send_together
    from shared.mongo import in_transaction

    mongo = pymongo.MongoClient(settings.mongo_uri)
    db = mongo[settings.database("conflict")]
    db.a.insert_one({"_id": 1, "n": 0})
    db.b.insert_one({"_id": 1, "n": 0})
    assert can_send_together(mongo)  # the local store has the command (and real MongoDB 8)
    holder = mongo.start_session()
    holder.start_transaction()
    db.a.update_one({"_id": 1}, {"$set": {"held": True}}, session=holder)
    runs = []

    def work(session):
        runs.append(1)
        if len(runs) == 1:  # the other transaction ends a moment after the first conflict
            threading.Timer(0.3, holder.abort_transaction).start()
        db.b.find_one({"_id": 1}, session=session)  # as a batch reads before it writes
        writes = [
            Write(db.a, "update_one", {"filter": {"_id": 1}, "update": {"$inc": {"n": 1}}}),
            Write(db.b, "update_one", {"filter": {"_id": 1}, "update": {"$inc": {"n": 1}}}),
        ]
        send(writes, session)
        return len(runs)

    try:
        assert in_transaction(mongo, work) >= 2  # conflicted, then ran again and committed
        assert db.a.find_one({"_id": 1}) == {"_id": 1, "n": 1}
        assert db.b.find_one({"_id": 1}) == {"_id": 1, "n": 1}
    finally:
        holder.end_session()
        mongo.drop_database(db.name)
        mongo.close()
