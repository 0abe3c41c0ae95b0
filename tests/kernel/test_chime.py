"""Idle loops wake on a chime from another process (shared.chime) instead of polling the
store: a write in one process rings the Doorbells of another at once, without change
streams; a socket left by a dead process is cleared; an idle relay with chimes leaves the
store alone and still publishes at once (issue 14)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from types import SimpleNamespace

import pymongo
import pytest

from shared import chime
from shared.projections import snapshot
from shared.wakeup import Doorbell
from testkit.kernel import idle_relay
from testkit.plugin import eventually, running
from testkit.procs import ROOT

ANNOUNCE = "from shared import chime; import sys; chime.announce(sys.argv[1:])"
APPEND = """
import sys, pymongo
from shared.events import NewEvent
from shared.eventstore import EventStore
from testkit.kernel import META, reg
store = EventStore(pymongo.MongoClient(sys.argv[1], tz_aware=True), sys.argv[2], reg)
store.append("c-2", 0, [NewEvent("CounterOpened", {"name": "two"})], META)
"""


@pytest.fixture
def wake_dir(tmp_path, monkeypatch):
    folder = tmp_path / "wake"
    monkeypatch.setenv(chime.ENV, str(folder))
    monkeypatch.setenv("RAPPORT_CHANGE_STREAMS", "0")
    return folder


def announce_from_another_process(*names: str) -> None:
    subprocess.run(
        [sys.executable, "-c", ANNOUNCE, *names],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
        timeout=60,
    )


def test_a_write_announced_in_another_process_rings_a_doorbell(settings, wake_dir):
    mongo = pymongo.MongoClient(settings.mongo_uri, tz_aware=True)
    coll = mongo[settings.database("kernel")]["chimed"]
    bell = Doorbell(coll)
    try:
        assert bell.watching  # no change stream: the chime is what it watches
        assert any(wake_dir.glob("*.sock")), "this process listens in the wake folder"
        ticket = bell.ticket()
        assert not bell.wait(ticket, 0.2)  # nothing announced: it times out
        announce_from_another_process(f"{settings.database('kernel')}.elsewhere")
        assert not bell.wait(ticket, 0.5)  # another collection's chime is not ours
        announce_from_another_process(coll.full_name)
        assert bell.wait(ticket, 30)  # rung, not timed out
    finally:
        bell.close()
        mongo.close()


def test_a_socket_left_by_a_dead_process_is_cleared(wake_dir):
    chime.listen()
    dead = wake_dir / "999999-dead.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(dead))
    sock.close()  # the file stays, nobody reads it: as after a SIGKILL
    time.sleep(chime.PEERS_TTL + 0.1)
    chime.announce(["kernel.anything"])  # refused by the dead socket: not an error
    assert not dead.exists()


def test_a_socket_and_listing_left_by_a_dead_process_are_cleared_by_a_chime_it_wanted(wake_dir):
    """A process killed (SIGKILL: no exit handlers) leaves its socket and its listing of
    names; the first chime on one of those names is refused there and clears both. A chime
    on another name is not sent there at all."""
    chime.listen()
    dead = wake_dir / "999998-dead.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(dead))
    sock.close()
    listing = wake_dir / f"999998-dead.sock{chime.WANTED}"
    listing.write_text("kernel.wanted_by_the_dead\n")
    chime.announce(["kernel.something_else"])
    assert dead.exists() and listing.exists()  # not sent there: nothing learnt
    chime.announce(["kernel.wanted_by_the_dead"])
    assert not dead.exists() and not listing.exists()


def test_an_idle_relay_hearing_chimes_leaves_the_store_alone_and_publishes_at_once(
    settings, wake_dir
):
    # its own look every 20 s: one every 5 s fell beside the append below on a loaded CI
    # machine, and counted as a second look
    with idle_relay(settings, lease_ttl=60.0) as (store, listener):
        time.sleep(3.0)
        idle = [n for n in listener.names if n not in ("hello", "isMaster", "ismaster")]
        # polling every 50 ms asked the store ~40 times in 3 s (a look at the outbox and a
        # lease renewal each time); resting on chimes, a look a third of a lease at most
        assert len(idle) <= 4, idle
        # an append by another process (as a gunicorn worker's) chimes the relay awake
        heard = len(listener.commands)
        started = time.monotonic()
        subprocess.run(
            [sys.executable, "-c", APPEND, settings.mongo_uri, store.db.name],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            check=True,
            timeout=60,
        )
        # looked at through a client of its own: the listener hears only the relay's commands
        watcher = pymongo.MongoClient(settings.mongo_uri)
        checkpoint = watcher[store.db.name]["outbox"]
        eventually(
            lambda: (checkpoint.find_one({"_id": "relay"}) or {}).get("published_through") == 2,
            timeout=10,
            interval=0.01,
            message="second published",
        )
        watcher.close()
        assert time.monotonic() - started < 4.0  # inside the 20 s rest: it was woken (the
        # subprocess's start-up, imports included, is in this time)
        time.sleep(0.5)
        # one look at the events found the one appended; it rests again without a second
        # look that could only find nothing (an append since would have rung)
        looks = [c for c in listener.commands[heard:] if c.get("find") == "events"]
        assert len(looks) == 1, looks
        # and it started after the checkpoint it wrote itself, without reading it back
        assert not [c for c in listener.commands[heard:] if c.get("find") == "outbox"]


def test_a_busy_relay_writes_its_checkpoint_twice_a_second_and_soon_after_it_rests(
    settings, wake_dir
):
    """A relay publishing every append of a busy spell wrote its checkpoint after each
    publish, a round trip each (issue 14); it writes it at most every MARK_EVERY while busy,
    and within MARK_EVERY of its last publish when it rests."""
    from shared.events import NewEvent
    from shared.outbox import MARK_EVERY
    from testkit.kernel import META

    with idle_relay(settings) as (store, listener):
        listener.commands.clear()
        started = time.monotonic()
        for i in range(20):
            store.append(f"busy-{i}", 0, [NewEvent("CounterOpened", {"name": str(i)})], META)
            time.sleep(0.05)
        last = time.monotonic()
        eventually(lambda: store.published_through() == 21, timeout=10, interval=0.01)
        written = time.monotonic()
        looks = [c for c in listener.commands if c.get("find") == "events"]
        marks = [c for c in listener.commands if c.get("update") == "outbox"]
        assert len(looks) >= 10, looks  # it published as the appends came, not at the end
        assert len(marks) <= (written - started) / MARK_EVERY + 2, (len(marks), len(looks))
        assert len(marks) < len(looks) / 2
        assert written - last < MARK_EVERY + 1.0  # written soon after it went quiet


def test_a_paced_bell_gathers_the_rings_of_a_busy_spell_and_still_wakes_an_idle_loop_at_once(
    settings, wake_dir
):
    """Under load a collection changes many times a second; a loop woken by each change
    would look for work more often than it used to poll (more load on the store). A paced
    bell wakes at once after a quiet spell, then at most once per `pace`."""
    mongo = pymongo.MongoClient(settings.mongo_uri, tz_aware=True)
    coll = mongo[settings.database("kernel")]["paced"]
    bell = Doorbell(coll, pace=0.5)
    stop = threading.Event()
    try:
        wakes = []
        for _ in range(3):  # three rings in quick succession, the loop waiting each time
            ticket = bell.ticket()
            chime.ring([coll.full_name])
            assert bell.wait(ticket, 10, stop)
            wakes.append(time.monotonic())
        assert wakes[1] - wakes[0] >= 0.45 and wakes[2] - wakes[1] >= 0.45, wakes
        time.sleep(0.6)  # quiet for longer than the pace: the next ring wakes it at once
        ticket = bell.ticket()
        chime.ring([coll.full_name])
        started = time.monotonic()
        assert bell.wait(ticket, 10, stop)
        assert time.monotonic() - started < 0.3
        ticket = bell.ticket()  # a stop ends the paced rest at once
        chime.ring([coll.full_name])
        threading.Timer(0.05, stop.set).start()
        started = time.monotonic()
        bell.wait(ticket, 10, stop)
        assert time.monotonic() - started < 0.3
    finally:
        bell.close()
        mongo.close()


def test_a_ring_wakes_only_the_loops_waiting_on_its_names(settings, wake_dir):
    """Every process hears every write of the deployment. A ring on one collection's name
    wakes the loops waiting on it, and leaves the process's other loops asleep: before,
    each ring woke every wait of the process to find it not theirs, a fifth of a consumer
    process's Python time in the flows bench (issue 14)."""
    mongo = pymongo.MongoClient(settings.mongo_uri, tz_aware=True)
    db = mongo[settings.database("kernel")]
    busy, quiet = Doorbell(db["busy"]), Doorbell([db["quiet"], db["also_quiet"]])
    stop, outcome = threading.Event(), {}

    def rest(bell: Doorbell, key: str) -> None:
        outcome[key] = bell.wait(bell.ticket(), 30, stop)

    try:
        waiter = threading.Thread(target=rest, args=(quiet, "quiet"))
        waiter.start()
        eventually(lambda: any(quiet._cond in w for w in chime.waiting.values()), timeout=10)
        for _ in range(300):  # another loop's collection, written 300 times
            chime.ring([db["busy"].full_name])
        time.sleep(0.2)
        assert waiter.is_alive() and quiet.wakes == 0, "rings on other names woke it"
        started = time.monotonic()
        chime.ring([db["also_quiet"].full_name])  # one of its own names
        waiter.join(10)
        assert outcome == {"quiet": True} and quiet.wakes == 1
        assert time.monotonic() - started < 1.0
        assert not any(quiet._cond in w for w in chime.waiting.values()), "it left the list"
        waiter = threading.Thread(target=rest, args=(busy, "busy"))
        waiter.start()
        eventually(lambda: any(busy._cond in w for w in chime.waiting.values()), timeout=10)
        busy.close()  # closing a bell ends its wait at once
        waiter.join(10)
        assert not waiter.is_alive() and outcome["busy"] is False
    finally:
        stop.set()
        busy.close()
        quiet.close()
        mongo.close()


def test_a_runner_hearing_chimes_polls_only_when_the_broker_holds_records_past_it(
    settings, wake_dir
):
    """The local broker answers an empty fetch at once, so a poll() that waits for records
    spends its whole window sending fetches: a runner that polled after every ring and every
    batch spent about a fifth of a core per process in the flows section (issue 14). Now a
    ring whose records it has already read costs one end-offsets request and no poll, and a
    ring whose records are on the broker still brings them at once."""
    from shared.consumer import ProjectionRunner

    from .test_consumer import append_counters, expected_totals, live, setup

    store, _, relay = setup(settings)
    append_counters(store, streams=2, increments=3)
    relay.drain()
    runner, pstore = live(settings)
    steps = []
    step = runner.step

    def counted(*args, **kwargs):
        steps.append(args[0] if args else kwargs.get("timeout_ms"))
        return step(*args, **kwargs)

    runner.step = counted  # type: ignore[method-assign]
    outbox = store.db["outbox"].full_name  # what the runner's bell watches (its source)
    with running(runner.run):
        eventually(lambda: snapshot(pstore.reader("totals")) == expected_totals(store))
        time.sleep(0.5)  # past the batch: resting on its bell
        before = len(steps)
        for _ in range(20):  # relays announcing records this runner has read already
            chime.ring([outbox])
            time.sleep(0.02)
        time.sleep(0.5)
        assert len(steps) == before, steps[before:]  # no poll: nothing past its positions
        assert isinstance(runner, ProjectionRunner) and runner.idle

        append_counters(store, streams=2, increments=1, start=100)
        started = time.monotonic()
        assert relay.publish_once() == 2  # acknowledged, then announced
        eventually(
            lambda: snapshot(pstore.reader("totals")) == expected_totals(store),
            timeout=10,
            interval=0.01,
        )
        # woken by the ring, well inside its rest between rings (IDLE_REST, 10 s)
        assert time.monotonic() - started < 3.0
        assert len(steps) > before


ANNOUNCE_ENDS = """
import sys
from shared import chime
chime.announce([sys.argv[1]], {(sys.argv[2], 0): int(sys.argv[3]), (sys.argv[2], 1): 2})
"""


def test_how_far_a_relay_published_is_known_before_its_chime_wakes_a_bell(settings, wake_dir):
    """A relay's chime carries each partition's end after what the broker acknowledged; a
    process hearing it knows those ends before the bell wakes (`published_end`), keeps the
    highest, and reads the names as before."""
    mongo = pymongo.MongoClient(settings.mongo_uri, tz_aware=True)
    coll = mongo[settings.database("kernel")]["outbox_ends"]
    topic = f"{coll.full_name}-topic"
    bell = Doorbell(coll)
    try:
        assert chime.published_end(topic, 0) is None
        for end, known in ((7, 7), (5, 7), (9, 9)):  # an older chime heard late: kept 7
            ticket = bell.ticket()
            subprocess.run(
                [sys.executable, "-c", ANNOUNCE_ENDS, coll.full_name, topic, str(end)],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                check=True,
                timeout=60,
            )
            assert bell.wait(ticket, 10), "the chime rang the bell on its name"
            assert chime.published_end(topic, 0) == known
            assert chime.published_end(topic, 1) == 2
        assert chime.published_end(topic, 2) is None
    finally:
        bell.close()
        mongo.close()


def test_a_chime_cut_short_keeps_its_names_and_the_ends_it_carried_whole():
    data = f"db.outbox\n{chime.ENDS}t\t0\t12\n{chime.ENDS}t\t1\t3".encode()
    assert chime._parse(data) == (["db.outbox"], {("t", 0): 12, ("t", 1): 3})
    cut = data[: data.index(b"\t3")]  # the datagram's size ended the last line
    assert chime._parse(cut) == (["db.outbox"], {("t", 0): 12})


@contextmanager
def _spied_runner(settings, monkeypatch):
    """A live runner, caught up with a few events and resting on its bell, whose broker
    requests for end offsets and whose steps are recorded in order in `seen`: ("ends",),
    and ("poll",) then ("step", records applied) for each step (a step may ask for the end
    offsets itself, for its status, after applying)."""
    from kafka import KafkaConsumer

    from .test_consumer import append_counters, expected_totals, live, setup

    store, topic, relay = setup(settings)
    append_counters(store, streams=2, increments=3)
    relay.drain()
    seen: list[tuple] = []
    end_offsets = KafkaConsumer.end_offsets

    def asked(consumer, partitions):
        seen.append(("ends",))
        return end_offsets(consumer, partitions)

    monkeypatch.setattr(KafkaConsumer, "end_offsets", asked)
    runner, pstore = live(settings)
    step = runner.step

    def stepped(*args, **kwargs):
        seen.append(("poll",))
        applied = step(*args, **kwargs)
        seen.append(("step", applied))
        return applied

    runner.step = stepped  # type: ignore[method-assign]
    with running(runner.run):
        eventually(lambda: snapshot(pstore.reader("totals")) == expected_totals(store))
        time.sleep(0.5)  # past the batch: resting on its bell
        yield SimpleNamespace(
            store=store, topic=topic, relay=relay, pstore=pstore, seen=seen, runner=runner
        )


def test_a_runner_woken_by_a_relays_chime_polls_without_asking_the_broker_first(
    settings, wake_dir, monkeypatch
):
    """A ring meant records on the topic, but the runner asked the broker for the end
    offsets before every poll: a round trip on every hop of every flow, 7 % of records'
    consumer's CPU in the flows bench, and 70 % of the answers were "behind" (issue 14). The
    relay's chime now says how far it published; the runner polls at once."""
    from .test_consumer import append_counters, expected_totals

    with _spied_runner(settings, monkeypatch) as spied:
        store, relay, pstore, seen = spied.store, spied.relay, spied.pstore, spied.seen
        for round_ in range(3):
            mark = len(seen)
            append_counters(store, streams=2, increments=1, start=100 + round_)
            assert relay.publish_once() == 2  # acknowledged, then announced with its ends
            eventually(
                lambda: snapshot(pstore.reader("totals")) == expected_totals(store),
                timeout=10,
                interval=0.01,
            )
            eventually(lambda mark=mark: any(s[0] == "step" and s[1] for s in seen[mark:]))
            after = seen[mark:]
            applied = next(i for i, s in enumerate(after) if s[0] == "step" and s[1])
            polled = max(i for i, s in enumerate(after[:applied]) if s == ("poll",))
            assert ("ends",) not in after[:polled], after
            time.sleep(0.3)  # resting again


def test_an_end_the_broker_does_not_have_is_acted_on_once(settings, wake_dir, monkeypatch):
    """What a chime says is a hint: an end past what the broker holds (it lost records in a
    restart, say) makes the runner poll once; then it asks the broker, and rests."""
    with _spied_runner(settings, monkeypatch) as spied:
        seen, mark = spied.seen, len(spied.seen)
        ends = {(spied.topic, p): 10**9 for p in range(settings.topic_partitions)}
        chime.announce([spied.store.db["outbox"].full_name], ends)
        time.sleep(3.0)  # one poll of up to EXPECT_MS (1 s), then the broker asked
        settled = len(seen)
        assert ("ends",) in seen[mark:], "the broker was asked after the hint"
        time.sleep(1.5)
        assert len(seen) == settled, seen[settled:]  # resting, not polling for the hint
        assert spied.runner.idle


def test_a_work_loop_on_one_projections_ring_rests_after_a_busy_step_until_that_ring(
    settings, wake_dir
):
    """billing's charge worker woke on every batch of every billing projection, its own
    charges' included, and stepped again at once after each busy step to look for nothing
    (issue 14). A work loop on one projection's ring (`ring=`) that goes on by itself
    (`again_when_busy=False`) rests after a busy step, is not woken by another projection's
    batch, and wakes at once on its own projection's ring."""
    from shared.wakeup import work_loop

    mongo = pymongo.MongoClient(settings.mongo_uri, tz_aware=True)
    store = SimpleNamespace(mongo=mongo, db=mongo[settings.database("kernel")])  # .mongo, .db
    calls: list[float] = []
    stop = threading.Event()

    def step() -> int:
        calls.append(time.monotonic())
        return 1  # always did something

    thread = threading.Thread(
        target=work_loop,
        args=(store, step, stop),
        kwargs={
            "name": "one ring",
            "interval": 0.05,
            "idle_rest": 30.0,
            "again_when_busy": False,
            "ring": "test_bell",
        },
    )
    thread.start()
    try:
        eventually(lambda: len(calls) == 1, timeout=10, message="the first step")
        time.sleep(0.5)
        assert len(calls) == 1  # busy, and not stepped again at once
        chime.announce([f"{store.db.name}.projection_offsets"])  # another projection's batch
        time.sleep(0.5)
        assert len(calls) == 1
        rung = time.monotonic()
        chime.announce([f"{store.db.name}.test_bell"])
        eventually(lambda: len(calls) == 2, timeout=5, message="woken by its own ring")
        assert calls[1] - rung < 1.0
    finally:
        stop.set()
        thread.join(timeout=10)
        mongo.close()
    assert not thread.is_alive()


SENDER = """
import sys
from shared import chime
chime.PEERS_TTL = 3600.0  # the folder is read again only because it changed
for line in sys.stdin:
    chime.announce([line.strip()])
    print("sent", flush=True)
"""


def test_a_chime_reaches_only_the_processes_waiting_on_its_names(settings, wake_dir):
    """Every process heard every write of the deployment, and its chime thread woke for
    each: 7 % of the consumers' and relays' CPU in the flows bench (issue 14). A process
    lists the names its bells wait on beside its socket; a writer sends it only those. One
    that lists none (a listener without a bell) hears everything, as before."""
    mongo = pymongo.MongoClient(settings.mongo_uri, tz_aware=True)
    db = settings.database("kernel")
    bell = Doorbell(mongo[db]["wanted"])
    plain = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # a listener that lists nothing
    plain.bind(str(wake_dir / "1-plain.sock"))
    plain.settimeout(30)
    try:
        listing = list(wake_dir.glob(f"*.sock{chime.WANTED}"))
        assert len(listing) == 1 and f"{db}.wanted" in listing[0].read_text().split("\n")
        heard, ticket = chime._chime.heard, bell.ticket()
        announce_from_another_process(f"{db}.unwanted")
        assert plain.recv(chime.MAX_DATAGRAM) == f"{db}.unwanted".encode()
        announce_from_another_process(f"{db}.wanted", f"{db}.other")
        assert plain.recv(chime.MAX_DATAGRAM) == f"{db}.wanted\n{db}.other".encode()
        assert bell.wait(ticket, 30)
        time.sleep(0.2)  # the receiving thread has counted what it heard
        assert chime._chime.heard == heard + 1  # its own name's chime, not the other one
    finally:
        plain.close()
        bell.close()
        mongo.close()


def test_a_name_wanted_after_a_writer_read_the_folder_is_heard_from_its_next_chime(
    settings, wake_dir
):
    """A writer keeps its listing of the peers; a process that starts waiting on a new name
    rewrites its own, which changes the folder, and the writer's next chime reads it again
    (here the writer would otherwise keep its listing for an hour)."""
    mongo = pymongo.MongoClient(settings.mongo_uri, tz_aware=True)
    db = mongo[settings.database("kernel")]
    first = Doorbell(db["first"])
    writer = subprocess.Popen(
        [sys.executable, "-c", SENDER],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdin is not None and writer.stdout is not None

    def send(name: str) -> None:
        writer.stdin.write(name + "\n")
        writer.stdin.flush()
        assert writer.stdout.readline().strip() == "sent"

    later = None
    try:
        ticket = first.ticket()
        send(db["first"].full_name)  # the writer reads the folder: this process wants "first"
        assert first.wait(ticket, 30)
        later = Doorbell(db["later"])  # a new name, wanted after that reading
        ticket = later.ticket()
        send(db["later"].full_name)
        assert later.wait(ticket, 30), "the writer did not see the new listing"
    finally:
        writer.stdin.close()
        writer.wait(timeout=60)
        first.close()
        if later is not None:
            later.close()
        mongo.close()
