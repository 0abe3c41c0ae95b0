"""Read-your-writes: the positions a projection has seen, per source service, out of order
across partitions; a write answers its position; a read waits (bounded) for it. Against the
real local store (and broker, for the end-to-end case)."""

import threading
import time

import pytest
from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from shared import consistency
from shared.auth import requires
from shared.consumer import ProjectionRunner
from shared.domain import Invalid
from shared.events import NewEvent
from shared.outbox import message_from_document
from shared.projections import Record
from shared.web import RequestEventStore, context, create_service_app, created
from testkit.kernel import META, Totals, kernel_store, reg
from testkit.plugin import running

from .test_consumer import setup

blp = Blueprint("counters", __name__, url_prefix="/counters")


def request_store():
    ctx = context()
    return RequestEventStore(ctx.mongo, ctx.settings.database("kernel"), reg)


@blp.route("/<name>")
class Counter(MethodView):
    @requires("admin")
    def post(self, name):
        if request.args.get("refuse"):
            raise Invalid("refused as asked", field="name")
        store = request_store()
        version = store.stream_version(name)
        events = [] if version else [NewEvent("CounterOpened", {"name": name})]
        store.append(
            name, version, events + [NewEvent("CounterIncremented", {"by": 1, "reason": "t"})], META
        )
        return created({"name": name}, f"/counters/{name}")

    @requires("admin")
    def get(self, name):
        doc = context().projection(Totals()).reader("totals").find_one({"_id": name})
        return {"name": name, "sum": doc["sum"] if doc else 0}


@pytest.fixture
def app(settings):
    return create_service_app(
        "kernel",
        settings,
        title="Kernel test",
        description="test",
        blueprints=[blp],
        projections=[Totals()],
    )


def three_counters(settings):
    """An event store with three streams of three events each (positions 1-9)."""
    store = kernel_store(settings)
    for s in range(3):
        store.append(
            f"c-{s}",
            0,
            [NewEvent("CounterOpened", {"name": f"c-{s}"})]
            + [NewEvent("CounterIncremented", {"by": 1, "reason": "t"})] * 2,
            META,
        )
    return store


def records_of(store, partitions=3):
    """The store's events as Kafka records, spread over partitions by stream."""
    out, offsets = [], [0] * partitions
    for doc in store.events.find().sort("position", 1):
        partition = int(doc["stream_id"].rsplit("-", 1)[-1]) % partitions
        out.append(
            Record("t.rapport.kernel", partition, offsets[partition], message_from_document(doc))
        )
        offsets[partition] += 1
    return out


def test_merge_moves_through_over_joined_ranges():
    assert consistency.merge(0, [], [3, 2, 5]) == (0, [(2, 3), (5, 5)])
    assert consistency.merge(0, [[2, 3], [5, 5]], [1]) == (3, [(5, 5)])
    assert consistency.merge(3, [[5, 5]], [4, 2, 6]) == (6, [])
    assert consistency.merge(6, [], [6, 1]) == (6, []), "positions seen again change nothing"
    assert consistency.merge(0, [(2, 2), (4, 4)], [3, 7, 3]) == (0, [(2, 4), (7, 7)])
    assert consistency.merge(0, [(5, 9)], [4, 10, 6]) == (0, [(4, 10)])


def test_merge_agrees_with_a_set_of_every_position():
    """Random batches of positions, in any order, some given again: the ranges hold exactly
    the positions given beyond `through`, sorted and apart, and `through` is the longest run
    from 1."""
    import itertools
    import random

    rng = random.Random(14)
    for _ in range(50):
        top = rng.randint(1, 400)
        through, ahead = 0, []
        given: set[int] = set()
        for _batch in range(rng.randint(1, 12)):
            batch = [rng.randint(1, top) for _ in range(rng.randint(0, 40))]
            given.update(batch)
            through, ahead = consistency.merge(through, ahead, batch)
            run = 0
            while run + 1 in given:
                run += 1
            assert through == run
            held = {p for first, last in ahead for p in range(first, last + 1)}
            assert held == {p for p in given if p > run}
            assert all(a[1] + 1 < b[0] for a, b in itertools.pairwise(ahead))
            assert all(first <= last for first, last in ahead)


def test_seen_holds_what_merge_gathered_and_nothing_else():
    """Positions from three partitions read at different paces, as a rebuild reads them:
    `holds` (a search among the ranges) answers as a look at every position would."""
    import random

    rng = random.Random(9)
    order = list(range(1, 3001))
    # partition p holds every third position; each partition is read in order, but one
    # runs far ahead of the others
    parts = [order[p::3] for p in range(3)]
    read = parts[0][:800] + parts[1][:50] + parts[2][:10] + parts[0][800:] + parts[1][50:]
    seen_positions: set[int] = set()
    through, ahead = 0, []
    for start in range(0, len(read), 97):
        batch = read[start : start + 97]
        through, ahead = consistency.merge(through, ahead, batch)
        seen_positions.update(batch)
        seen = consistency.Seen(through, tuple(tuple(r) for r in ahead), 1)
        for position in rng.sample(order, 200) + [through, through + 1, 3000, 3001]:
            assert seen.holds(position) is (position in seen_positions), position
    assert len(ahead) > 100  # the case that made the old look slow
    assert consistency.Seen(0, (), 5).holds(3) is None


def test_a_request_reads_a_projections_active_generation_once(settings):
    """Within one request the active generation is read before the first read only; the
    next request reads it again (a rebuild's swap shows there), and work outside a request
    reads it every time."""
    import pymongo
    from flask import Flask

    from shared.projections import ProjectionStore
    from testkit.kernel import Commands

    listener = Commands()
    mongo = pymongo.MongoClient(settings.mongo_uri, tz_aware=True, event_listeners=[listener])
    store = ProjectionStore(mongo, settings.database("kernel"), Totals(), reg)
    store.active_generation()

    def generation_reads(reads: int) -> int:
        listener.commands.clear()
        for _ in range(reads):
            store.reader("totals").find_one({"_id": "c-0"})
        return sum(1 for c in listener.commands if c.get("find") == "projection_meta")

    try:
        web = Flask(__name__)
        with web.test_request_context("/"):
            assert generation_reads(3) == 1
        store.activate(2)
        with web.test_request_context("/"):
            assert generation_reads(2) == 1
            assert store.reader("totals").name == "totals__g2"
        assert generation_reads(2) == 2
    finally:
        mongo.close()


def test_parse_min_positions():
    assert consistency.parse_min_positions("records:12, scheduling:40,records:3") == {
        "records": 12,
        "scheduling": 40,
    }
    for bad in ("records", "records:-1", "Records:1", "records:1;x", "a:" + "9" * 16):
        with pytest.raises(consistency.BadConsistencyHeader):
            consistency.parse_min_positions(bad)


def test_a_projection_has_reached_a_position_only_when_every_event_up_to_it_is_applied(settings):
    """Partitions deliver out of order: position 7 applied does not mean 6 is."""
    store = three_counters(settings)
    records = records_of(store)  # positions 1-3 on partition 0, 4-6 on 1, 7-9 on 2
    pstore = Totals_store(settings)
    generation = pstore.active_generation()
    pstore.apply([r for r in records if r.partition == 2], generation)
    pstore.apply([r for r in records if r.partition == 0], generation)
    assert consistency.unreached(pstore, generation, {"kernel": 3}) == {}
    assert consistency.unreached(pstore, generation, {"kernel": 7}) == {"kernel": 7}
    assert consistency.unreached(pstore, generation, {"other": 99}) == {}, (
        "a service it does not read"
    )
    pstore.apply([r for r in records if r.partition == 1], generation)
    assert consistency.unreached(pstore, generation, {"kernel": 9}) == {}
    assert consistency.unreached(pstore, generation, {"kernel": 10}) == {"kernel": 10}


def test_a_projection_that_was_reading_before_positions_were_recorded_starts_where_it_is(settings):
    """An upgrade: the consumer resumes mid-topic (no record at offset 0) with no positions
    recorded. What it applied before cannot be known and must not be waited for (every read
    would wait 2 s for ever); from there on it is exact."""
    store = kernel_store(settings)
    for s in range(3):
        store.append(
            f"c-{s}",
            0,
            [
                NewEvent("CounterOpened", {"name": f"c-{s}"}),
                NewEvent("CounterIncremented", {"by": 1, "reason": "t"}),
            ],
            META,
        )
    pstore = Totals_store(settings)
    generation = pstore.active_generation()
    resumed = [r for r in records_of(store) if r.offset > 0]  # positions 2, 4, 6
    pstore.apply(resumed[1:], generation)
    assert consistency.unreached(pstore, generation, {"kernel": 6}) == {}
    for s in (0, 1):
        store.append(f"c-{s}", 2, [NewEvent("CounterIncremented", {"by": 1, "reason": "t"})], META)
    newer = [r for r in records_of(store) if r.offset > 1]  # positions 7 (p0), 8 (p1)
    pstore.apply(newer[1:], generation)
    assert consistency.unreached(pstore, generation, {"kernel": 8}) == {"kernel": 8}
    pstore.apply(newer[:1], generation)
    assert consistency.unreached(pstore, generation, {"kernel": 8}) == {}


def test_a_batch_writes_its_progress_without_reading_it_and_reads_it_when_another_moved_it(
    settings, monkeypatch
):
    """After a batch committed, the next one writes the positions on the condition that the
    document still holds what this process wrote (one round trip less per batch, issue 14).
    When another writer moved it (a second instance of the consumer), the condition fails
    and the document is read and merged as before: nothing another writer noted is lost."""
    from shared.consumer import projection_store
    from testkit.kernel import listened_settings

    store = three_counters(settings)
    records = records_of(store)  # positions 1-3 on partition 0, 4-6 on 1, 7-9 on 2
    ours, heard = listened_settings(settings, monkeypatch, "progress-cas")
    pstore = projection_store(ours, Totals(), reg)
    generation = pstore.active_generation()
    progress_id = f"{pstore.name}:g{generation}:kernel"

    def progress_reads() -> int:
        return sum(
            1
            for c in heard.commands
            if c.get("find") == consistency.PROGRESS and progress_id in str(c.get("filter"))
        )

    pstore.apply([r for r in records if r.partition == 0], generation)
    assert progress_reads() == 1  # the first batch: not known yet
    pstore.apply([r for r in records if r.partition == 2], generation)
    assert progress_reads() == 1  # written on condition, not read
    doc = store.db.client[pstore.db.name][consistency.PROGRESS].find_one({"_id": progress_id})
    assert (doc["through"], doc["ahead"]) == (3, [[7, 9]])

    # another instance, in another process, applied partition 1 (positions 4-6)
    store.db.client[pstore.db.name][consistency.PROGRESS].update_one(
        {"_id": progress_id}, {"$set": {"through": 9, "ahead": []}}
    )
    store.append("c-0", 3, [NewEvent("CounterIncremented", {"by": 1, "reason": "t"})], META)
    newest = [r for r in records_of(store) if r.partition == 0 and r.offset == 3]
    totals = store.db.client[pstore.db.name][f"totals__g{generation}"]
    before, aborts = totals.find_one({"_id": "c-0"})["sum"], heard.names.count("abortTransaction")
    # position 10: its condition (3, [[7, 9]]) fails; the write goes with the batch's others
    # (shared.combine.send), so the batch is run again from the start, reading the document
    assert pstore.apply(newest, generation) == 1
    assert progress_reads() == 2  # so it read the document, and merged
    assert heard.names.count("abortTransaction") == aborts + 1  # the first try, undone
    assert totals.find_one({"_id": "c-0"})["sum"] == before + 1  # applied once, not twice
    doc = store.db.client[pstore.db.name][consistency.PROGRESS].find_one({"_id": progress_id})
    assert (doc["through"], doc["ahead"]) == (10, [])
    assert consistency.unreached(pstore, generation, {"kernel": 10}) == {}


def test_events_a_projection_ignores_or_parks_count_as_reached(settings):
    store = kernel_store(settings)
    store.append("c-0", 0, [NewEvent("CounterOpened", {"name": "c-0"})], META)
    doc = store.events.find_one({"position": 1})
    pstore = Totals_store(settings)
    generation = pstore.active_generation()
    ignored = dict(doc, _id="e-2", type="TotalsIgnoreMe", position=2)  # no handler, unknown type
    unreadable = Record("t.rapport.kernel", 0, 2, b'{"position": 3, "type": ')
    pstore.apply(
        [
            Record("t.rapport.kernel", 0, 0, message_from_document(doc)),
            Record("t.rapport.kernel", 0, 1, message_from_document(ignored)),
            unreadable,
        ],
        generation,
    )
    assert consistency.unreached(pstore, generation, {"kernel": 2}) == {}
    assert pstore.dead_letters.count_documents({}) >= 1


def Totals_store(settings):
    from shared.consumer import projection_store

    return projection_store(settings, Totals(), reg)


def test_a_write_answers_its_position_and_a_read_waits_for_it(app, settings, auth_header):
    client, admin = app.test_client(), auth_header("admin")
    r = client.post("/counters/c-1", headers=admin)
    assert r.status_code == 201 and r.headers["X-Rapport-Position"] == "kernel:2"
    assert client.get("/counters/c-1", headers=admin).json["sum"] == 0, "not applied yet"

    store, pstore = kernel_store(settings), Totals_store(settings)
    threading.Timer(
        0.4, lambda: pstore.apply(records_of(store), pstore.active_generation())
    ).start()
    started = time.monotonic()
    r = client.get(
        "/counters/c-1", headers={**admin, "X-Rapport-Min-Position": "kernel:2,records:5"}
    )
    assert r.status_code == 200 and r.json["sum"] == 1, "the read waited for the write"
    assert 0.3 < time.monotonic() - started < 2.0
    assert "X-Rapport-Stale" not in r.headers


def test_a_read_past_two_seconds_answers_anyway_and_says_it_may_be_stale(app, auth_header):
    client, admin = app.test_client(), auth_header("admin")
    started = time.monotonic()
    r = client.get("/counters/c-1", headers={**admin, "X-Rapport-Min-Position": "kernel:40"})
    assert r.status_code == 200 and r.headers["X-Rapport-Stale"] == "kernel:40"
    assert 1.9 < time.monotonic() - started < 3.0


def test_a_malformed_min_position_is_400(app, auth_header):
    r = app.test_client().get(
        "/counters/c-1", headers={**auth_header("admin"), "X-Rapport-Min-Position": "kernel=4"}
    )
    assert r.status_code == 400 and "X-Rapport-Min-Position" in r.json["detail"]


def test_through_the_broker_with_several_partitions(app, settings, auth_header):
    """The relay and a consumer on a 3-partition topic: every write is readable at once."""
    store, topic, relay = setup(settings)
    runner = ProjectionRunner(settings, Totals(), registry=reg)
    client, admin = app.test_client(), auth_header("admin")
    with running(relay.run, runner.run):
        for i in range(12):
            name = f"c-{i % 5}"
            position = client.post(f"/counters/{name}", headers=admin).headers["X-Rapport-Position"]
            r = client.get(
                f"/counters/{name}", headers={**admin, "X-Rapport-Min-Position": position}
            )
            assert "X-Rapport-Stale" not in r.headers, r.headers
            assert r.json["sum"] == i // 5 + 1


def test_duplicates_are_found_by_position_and_below_a_mid_topic_start_by_event_id(settings):
    """The positions a generation has seen (written in the apply transaction) tell which
    events were applied already, so a consumer or a rebuild reading from the start keeps no
    id per event (issue 14: those ids were a fifth of a rebuild's time). A generation that
    began mid-topic cannot tell from positions what came before its first batch: there, as
    before, the ids of the events it applied are kept and checked."""
    store = three_counters(settings)
    records = records_of(store)  # positions 1-3 on partition 0, 4-6 on 1, 7-9 on 2
    pstore = Totals_store(settings)
    generation = pstore.active_generation()
    key = f"{pstore.name}:g{generation}:"

    # from the start: every event once, a copy in the same batch and a later copy dropped
    assert pstore.apply(records[:5] + records[3:4], generation) == 5
    assert pstore.apply(records, generation) == 4
    assert pstore.apply(records, generation) == 0
    assert pstore.processed.count_documents({"_id": {"$regex": f"^{key}"}}) == 0
    totals = {d["_id"]: d["sum"] for d in pstore.reader("totals").find()}
    assert totals == {"c-0": 2, "c-1": 2, "c-2": 2}

    # a generation that begins mid-topic: its first batch (positions 6 and 9) is kept by id
    later = generation + 1
    pstore.ensure_generation(later)
    # as a rebuild's, once it writes its positions (a generation neither active, kept nor
    # being built is retired: ProjectionStore._still_written)
    pstore.meta.update_one({"_id": pstore.name}, {"$set": {"building": later}})
    resumed = [r for r in records if r.offset > 1]  # positions 3, 6, 9
    assert pstore.apply(resumed[1:], later) == 2
    assert pstore.processed.count_documents({"_id": {"$regex": f"^{pstore.name}:g{later}:"}}) == 2
    assert pstore.apply(resumed[1:], later) == 0  # found by id: dropped
    assert pstore.apply(resumed[:1], later) == 1  # position 3, below its start: applied once
    assert pstore.apply(resumed[:1], later) == 0
    store.append("c-0", 3, [NewEvent("CounterIncremented", {"by": 1, "reason": "t"})], META)
    newest = [r for r in records_of(store) if r.partition == 0 and r.offset == 3]  # position 10
    assert pstore.apply(newest, later) == 1 and pstore.apply(newest, later) == 0
    assert pstore.processed.count_documents({"_id": {"$regex": f"^{pstore.name}:g{later}:"}}) == 3
