"""Consumer runner: one consumer group per runner (a projection, or the projections of a
service that apply at once: `runner_groups`), static membership
(`group_instance_id`, see infrastructure.md: the local broker never expires a dead member),
offsets kept in MongoDB with the projection writes, Kafka commits after them for lag
monitoring (at most once a second, not waited for), rebalances and CommitFailedError
handled, clean stop on SIGTERM; and the projection rebuild: replay the topics from the
start into a new generation, then swap."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import (
    CommitFailedError,
    IllegalGenerationError,
    KafkaError,
    RebalanceInProgressError,
)
from pymongo import UpdateOne
from pymongo.errors import PyMongoError

from . import chime
from . import kafka as kafka_clients
from .backoff import Backoff
from .config import Settings
from .crypto import cipher_for
from .events import EventRegistry, utcnow
from .events import registry as default_registry
from .mongo import client as mongo_client
from .projections import (
    HANDLED,
    GenerationRetired,
    Projection,
    ProjectionStore,
    Record,
    apply_together,
)
from .wakeup import IDLE_REST, Doorbell

log = logging.getLogger(__name__)
# how long poll() waits for records when the runner does not know whether any are there: the
# local broker answers fetches at once instead of holding them for fetch_max_wait_ms, so a
# client waiting in poll() sends fetch after fetch and spends the whole window on the CPU
# (a poll of 20 ms costs about 20 ms of CPU when nothing comes; `BENCH_SECTIONS=idle make
# bench`: an idle runner ~2% of a core at 20 ms, 7-10% at 100 ms)
POLL_MS = 20
# While its bell watches (a source's relay announces each publish: shared.chime, or a change
# stream: shared.wakeup), a runner polls only when the broker holds records past its
# positions: it asks for the partitions' end offsets (one request, ~0.6 ms of CPU) after
# taking its ticket, and rests until the next ring when it has read up to them (a relay's
# chime that says how far it published, past the runner's position, spares the request). A
# relay rings only after the broker acknowledged what it published, so a ring counted in the
# ticket was for records those end offsets include, and a later ring ends the rest. Before
# this, every ring and every batch ended with an empty poll of POLL_MS or more: in the flows
# section (issue 14) the consume processes of notifications and billing were ~22 % of a
# core each, most of it in empty fetches. A runner that knows records are there polls up to
# EXPECT_MS: poll() returns as soon as a fetch brings them.
EXPECT_MS = 1000
# Without a bell, an idle runner rests between polls, from REST_MIN after activity doubling
# to REST_FALLBACK. With one, it rests up to REST_MAX between rings, and looks once then
# whatever the end offsets say (a lost chime costs at most that).
REST_MIN, REST_MAX, REST_FALLBACK = 0.01, IDLE_REST, 0.3
GENERATION_CHECK = 1.0  # seconds between two looks for a swapped-in rebuild, in run()
STATUS_IDLE = 30.0  # an unchanged status is written again only after this long
KAFKA_COMMIT_EVERY = 1.0  # seconds between two commits of the positions to Kafka
KAFKA_COMMIT_WAIT_MS = 2000  # how long the last commit, on close, may wait for the broker
# records a rebuild applies per transaction: the handlers' writes go together at the end of
# the batch (Projection.batched), so larger batches mean fewer round trips and commits
REBUILD_BATCH = 5000
READ_CHECK_WINDOW = 120.0  # seconds of read records checked against the broker on assignment


def group_id(settings: Settings, *projections: Projection) -> str:
    """The consumer group of a runner of these projections (one: its name, as before)."""
    names = "+".join(p.name for p in projections)
    return f"{settings.topic_prefix}{projections[0].service}.{names}"


def projection_store(
    settings: Settings, projection: Projection, registry: EventRegistry = default_registry
) -> ProjectionStore:
    return ProjectionStore(
        mongo_client(settings.mongo_uri_of(projection.service)),
        settings.database(projection.service),
        projection,
        registry,
        cipher=cipher_for(settings),
    )


def _records(batch: Mapping[TopicPartition, Sequence[ConsumerRecord]]) -> list[Record]:
    out: list[Record] = []
    for tp in sorted(batch, key=lambda t: (t.topic, t.partition)):
        out.extend(Record(r.topic, r.partition, r.offset, r.value) for r in batch[tp])
    return out


class _SeekOnAssign(ConsumerRebalanceListener):
    def __init__(self, runner: ProjectionRunner):
        self.runner = runner

    def on_partitions_revoked(self, revoked):
        # offsets live in MongoDB with the projection writes; nothing to flush here. Records
        # held while lingering there are the next owner's now (read from the stored offsets)
        log.info("%s: partitions revoked %s", self.runner.name, sorted(revoked))
        self.runner.drop_held(revoked)

    def on_partitions_assigned(self, assigned):
        log.info("%s: partitions assigned %s", self.runner.name, sorted(assigned))
        self.runner.seek_to_stored(assigned)


def _envelope(value: bytes, key: str) -> str | None:
    """One field of a record's event envelope ("event_id", "type"); None if not an event."""
    try:
        return json.loads(value).get(key)
    except (ValueError, AttributeError):
        return None


def rewritten_partitions(bootstrap: str, checks: dict, timeout: float = 15.0) -> set:
    """Of `checks` ({TopicPartition: [(offset, event id read there), ...]}), the partitions
    where one of those offsets is gone or now holds another record. Real Kafka keeps
    acknowledged records across a clean restart; the local broker was seen losing its last
    ones and giving their offsets to new records, and a consumer resuming past them would skip
    the new ones. A partition that cannot be checked in `timeout` counts as rewritten (reading
    it again costs time; skipping records would lose them)."""
    checks = {tp: sorted(set(samples)) for tp, samples in checks.items() if samples}
    if not checks:
        return set()
    probe = kafka_clients.consumer(
        bootstrap, group_id=None, max_poll_records=200, bootstrap_timeout_ms=int(timeout * 1000)
    )
    deadline = time.monotonic() + timeout
    rewritten = set()
    try:
        ends = probe.end_offsets(list(checks))
        for tp, samples in checks.items():
            if ends[tp] <= samples[-1][0]:
                rewritten.add(tp)  # the partition now ends before a record we read
                continue
            probe.assign([tp])
            held: dict[int, str | None] = {}
            for offset, event_id in samples:
                if offset not in held:
                    probe.seek(tp, offset)
                    while offset not in held and time.monotonic() < deadline:
                        for record in probe.poll(timeout_ms=500).get(tp, []):
                            held[record.offset] = _envelope(record.value, "event_id")
                        if held and max(held) > offset:
                            break  # the offset itself is not there (compacted or missing)
                if held.get(offset, "missing") != event_id:
                    rewritten.add(tp)
                    break
        return rewritten
    finally:
        probe.close()


def runner_groups(projections: Sequence[Projection]) -> list[list[Projection]]:
    """The projections of one service process, grouped into the runners that apply them:
    one runner (one consumer, one transaction per batch: `apply_together`) for all those that
    apply what comes at once, and one for those lingering the same time with the same urgent
    types. A projection whose urgent types are the ones it handles (`HANDLED`) lingers only
    to spare the transactions of the events it ignores; beside prompt ones, those ride in
    their transactions, so it goes with them. Each service had a runner per projection, and
    every publish on a busy topic woke nine runners, each with its fetch, its transaction and
    its commit: that fixed cost per batch was most of the consume processes' CPU (py-spy,
    issue 14, session 29). An urgent lane stays its projection's own: notifications' risk
    alerts sharing the planner's runner carried the planner's work of each batch in the
    alert's transaction, and an alert took 260-325 ms from the topic to planned, against
    73-85 alone (bench/README.md, session 30)."""
    groups: dict[tuple[float, frozenset[str]], list[Projection]] = {}
    for projection in projections:
        prompt = not projection.linger or projection.urgent is HANDLED
        key = (0.0, frozenset()) if prompt else (projection.linger, projection.urgent_types())
        groups.setdefault(key, []).append(projection)
    return list(groups.values())


class ProjectionRunner:
    """Applies one projection, or several of one service (`runner_groups`), from one
    consumer: each record goes to the projections reading its topic, and a batch is one
    transaction for all of them (`apply_together`). Each projection keeps its own offsets,
    positions and generation; the consumer reads from the lowest of their offsets, and a
    projection is given only the records past its own."""

    def __init__(
        self,
        settings: Settings,
        projections: Projection | Sequence[Projection],
        *,
        instance: int = 0,
        registry: EventRegistry = default_registry,
        status_interval: float = 5.0,
    ):
        if isinstance(projections, Projection):
            projections = [projections]
        if not projections or len({p.service for p in projections}) != 1:
            raise ValueError("a runner applies one or more projections of one service")
        self.settings, self.projections = settings, list(projections)
        self.stores = [projection_store(settings, p, registry) for p in self.projections]
        self.name = "+".join(p.name for p in self.projections)
        # each projection's topics, and the topics of them all (in the projections' order)
        self._topics_of = [{settings.topic(s) for s in p.sources} for p in self.projections]
        self.topics = list(
            dict.fromkeys(settings.topic(s) for p in self.projections for s in p.sources)
        )
        self.group = group_id(settings, *self.projections)
        self.instance = instance
        self.instance_id = f"{self.group}-{instance}"
        self.status_interval = status_interval
        self.generations = [0] * len(self.stores)
        # per projection, the next offset to give it per partition (`seek_to_stored`): the
        # consumer reads from the lowest, and each projection skips what it applied already
        self._next: list[dict[TopicPartition, int]] = [{} for _ in self.stores]
        self.consumer: KafkaConsumer | None = None
        self.applied_total = 0
        self.idle = False
        self.idle_wait = REST_MAX  # the longest rest while idle
        self.poll_ms = POLL_MS
        self.linger = min(p.linger for p in self.projections)
        self._last_status = 0.0
        self._last_status_written: tuple | None = None
        self._last_status_write = 0.0
        self._generation_checked = 0.0
        self._kafka_committed = 0.0  # when the positions were last committed to Kafka
        self._kafka_pending = False  # positions moved since then
        # per partition, (time, offset, event id) of the last record of each recent batch:
        # checked on every assignment, so offsets a broker lost and reused are noticed
        self._read: dict[TopicPartition, deque] = {}
        # per partition, the end a relay announced that `_behind` last acted on
        self._hinted: dict[TopicPartition, int] = {}
        # records polled while lingering (Projection.urgent), applied with the next batch;
        # since when the oldest of them waits, and the partitions an urgent one came on
        self._held: dict[TopicPartition, list[ConsumerRecord]] = {}
        self._held_since = 0.0
        self._lane: set[TopicPartition] = set()
        self._urgent = frozenset().union(*(p.urgent_types() for p in self.projections))
        # per projection whose `urgent` is HANDLED, beside others in the runner: the records
        # of the events it ignores, held back until one it handles comes or its linger has
        # passed (`_parts`). Alone it lingered for that; beside prompt projections it went in
        # each of their batches, and its offsets and positions were a third of the writes of
        # scheduling's batches (the store's log, issue 14, session 30)
        self._spares = [
            len(self.projections) > 1 and p.urgent is HANDLED and p.linger > 0
            for p in self.projections
        ]
        self._handled = [p.handled_types() for p in self.projections]
        self._spared: list[list[Record]] = [[] for _ in self.projections]
        self._spared_since = [0.0] * len(self.projections)

    @property
    def store(self) -> ProjectionStore:
        """The projection's store, for a runner of one projection."""
        if len(self.stores) != 1:
            raise AttributeError(f"{self.name}: a runner of several projections has several")
        return self.stores[0]

    @property
    def generation(self) -> int:
        """The generation written, for a runner of one projection."""
        if len(self.generations) != 1:
            raise AttributeError(f"{self.name}: a runner of several projections has several")
        return self.generations[0]

    @generation.setter
    def generation(self, generation: int) -> None:
        if len(self.generations) != 1:
            raise AttributeError(f"{self.name}: a runner of several projections has several")
        self.generations = [generation]

    def drop_held(self, partitions: Iterable[TopicPartition]) -> None:
        """Forget the records held from these partitions: they are read again from the
        stored offsets (a seek, an assignment) or by their next owner (a revocation)."""
        dropped = set()
        for tp in partitions:
            self._held.pop(tp, None)
            self._lane.discard(tp)
            dropped.add((tp.topic, tp.partition))
        for spared in self._spared:
            spared[:] = [r for r in spared if (r.topic, r.partition) not in dropped]

    def seek_to_stored(self, partitions: Iterable[TopicPartition]) -> None:
        """Position each partition at the lowest stored offset of the projections reading it,
        each of them given the records from its own (`_next`). A partition whose record before
        a stored offset is no longer the last event applied (the broker lost records and gave
        their offsets to new ones) is read again from the beginning, by every projection: the
        positions seen and the processed ids drop what was applied already, and nothing new
        is skipped."""
        partitions = list(partitions)
        self.drop_held(partitions)
        stored = [
            store.stored_positions(generation)
            for store, generation in zip(self.stores, self.generations, strict=True)
        ]
        checks = {}
        for tp in partitions:
            samples = [(offset, event_id) for _, offset, event_id in self._read.get(tp, ())]
            for i, positions in enumerate(stored):
                offset, last_id = positions.get((tp.topic, tp.partition), (0, None))
                if last_id and tp.topic in self._topics_of[i]:
                    samples.append((offset - 1, last_id))
            checks[tp] = samples
        rewritten = rewritten_partitions(self.settings.kafka_bootstrap, checks)
        for tp in partitions:
            if tp in rewritten:
                log.warning(
                    "%s: %s:%d no longer holds records this consumer read (the broker lost "
                    "records and reused their offsets): reading it again from the start",
                    self.name,
                    tp.topic,
                    tp.partition,
                )
                self._read.pop(tp, None)
            lowest = None
            for i, positions in enumerate(stored):
                if tp.topic not in self._topics_of[i]:
                    continue
                position = positions.get((tp.topic, tp.partition))
                offset = 0 if position is None or tp in rewritten else position[0]
                self._next[i][tp] = offset
                lowest = offset if lowest is None else min(lowest, offset)
            if not lowest:
                self.opened.seek_to_beginning(tp)
            else:
                self.opened.seek(tp, lowest)

    @property
    def opened(self) -> KafkaConsumer:
        """The Kafka consumer, once `run` (or a test) opened it: stepping and seeking need it."""
        if self.consumer is None:
            raise RuntimeError(f"{self.name}: the consumer is not open")
        return self.consumer

    def _poll(self, timeout_ms: int) -> dict[TopicPartition, list[ConsumerRecord]]:
        """A poll of the consumer, after taking up a join kafka-python left unfinished
        (`kafka_clients.finish_unfinished_join`: a short poll during a rebalance)."""
        consumer = self.opened
        kafka_clients.finish_unfinished_join(consumer)
        return consumer.poll(timeout_ms=timeout_ms)

    def _open(self) -> None:
        for store in self.stores:
            store.ensure_outside()  # before the first transaction writes there
        kafka_clients.ensure_topics(
            self.settings.kafka_bootstrap, self.topics, self.settings.topic_partitions
        )
        self.consumer = consumer = kafka_clients.consumer(
            self.settings.kafka_bootstrap,
            group_id=self.group,
            group_instance_id=self.instance_id,
            client_id=self.instance_id,
        )
        consumer.subscribe(self.topics, listener=_SeekOnAssign(self))

    def _doorbell(self) -> Doorbell:
        """Rings when a source service's relay moves its published checkpoint (the records
        are then on the topic): the sources' `outbox` collections, each on its service's
        store (Settings.mongo_uri_of: notifications' own store is not its sources')."""
        return Doorbell(
            [
                mongo_client(self.settings.mongo_uri_of(s))[self.settings.database(s)]["outbox"]
                for s in dict.fromkeys(s for p in self.projections for s in p.sources)
            ],
            name=f"consumer {self.name}",
        )

    def run(self, stop: threading.Event) -> None:
        backoff, rest = Backoff(), REST_MIN
        bell = self._doorbell()
        try:
            while not stop.is_set():
                try:
                    ticket = bell.ticket()
                    if self.consumer is None:
                        self.generations = [store.active_generation() for store in self.stores]
                        self._open()
                    if bell.watching:
                        applied = self._watched_round(bell, ticket, stop)
                    elif (applied := self._polled_round()) == 0 and self.idle:
                        rung = bell.wait(ticket, min(rest, REST_FALLBACK), stop)
                        rest = REST_MIN if rung else min(rest * 2, REST_FALLBACK)
                    else:
                        rest = REST_MIN
                    if applied and self.linger:
                        self._linger(bell, stop)  # what comes meanwhile goes together
                    backoff.succeeded()
                except (PyMongoError, KafkaError) as err:
                    what = "store unavailable" if isinstance(err, PyMongoError) else "broker error"
                    log.warning(
                        "%s: %s (%s); retrying in %.1fs", self.name, what, err, backoff.delay
                    )
                    backoff.failed(stop)
                    # and, after a broker error, check the broker still holds what was read
                    self._reseek_after_failure()
        finally:
            bell.close()
        self.close()

    def _polled_round(self, timeout_ms: int | None = None) -> int:
        due = time.monotonic() - self._generation_checked >= GENERATION_CHECK
        return self.step(timeout_ms, check_generation=due)

    def _watched_round(self, bell: Doorbell, ticket: int, stop: threading.Event) -> int:
        """Poll when the broker holds records past this runner's positions (or before the
        first assignment: poll() joins the group); otherwise rest until a relay rings, the
        ticket having been taken before the end offsets were asked for (module notes).
        The records applied."""
        if self._held or self._behind():
            return self._polled_round(EXPECT_MS)
        due = min(self._spare_left(), self._kafka_commit_left())
        if due <= 0:
            return self._polled_round(0)  # what was held back is due, or the commit to Kafka
        self.idle = True
        self._report_status()
        rest = min(self.idle_wait, due)
        if not bell.wait(ticket, rest, stop) and not stop.is_set():
            # a long rest without a ring: look anyway (a chime lost); or the held back is due
            return self._polled_round(0 if rest < self.idle_wait else None)
        return 0

    def _spare_left(self) -> float:
        """Seconds until the first records held back (`_spared`) are due; inf without any."""
        return min(
            (
                since + projection.linger - time.monotonic()
                for spared, since, projection in zip(
                    self._spared, self._spared_since, self.projections, strict=True
                )
                if spared
            ),
            default=float("inf"),
        )

    def _linger(self, bell: Doorbell, stop: threading.Event) -> None:
        """Wait Projection.linger after a batch, so that what comes meanwhile is applied
        together. With `urgent` event types and a bell that watches, what comes is polled
        and held as it is published, and one of those types ends the wait at once for the
        partitions it came on (the urgent lane, `step`): the measures board's bookings wait,
        a completed questionnaire does not. What other partitions hold waits out the linger
        counted from when the oldest of it was held, however many urgent batches go first."""
        linger, urgent = self.linger, self._urgent
        if not urgent or not bell.watching:
            stop.wait(linger)
            return
        deadline = (self._held_since if self._held else time.monotonic()) + linger
        while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
            ticket = bell.ticket()
            if not self._behind():
                bell.wait(ticket, left, stop)
                continue
            polled = self._poll(max(1, int(left * 1000)))
            if polled and not self._held:
                self._held_since = time.monotonic()
            for tp, records in polled.items():
                self._held.setdefault(tp, []).extend(records)
                if any(_envelope(r.value, "type") in urgent for r in records):
                    self._lane.add(tp)
            if self._lane:
                return

    def _behind(self) -> bool:
        """True when some assigned partition ends past this runner's position there, or when
        nothing is assigned yet. A relay's chime says how far it published (shared.chime):
        an end past the position there that this runner has not acted on yet is enough, and
        the broker is not asked (each end is acted on once: one the broker no longer has,
        after it lost records in a restart, is then asked about like any other)."""
        consumer = self.opened
        assigned = list(consumer.assignment())
        if not assigned:
            return True
        hinted = False
        for tp in assigned:
            end = chime.published_end(tp.topic, tp.partition)
            if end is not None and end > self._hinted.get(tp, -1) and consumer.position(tp) < end:
                self._hinted[tp] = end
                hinted = True
        if hinted:
            return True
        ends = consumer.end_offsets(assigned)
        return any(consumer.position(tp) < ends[tp] for tp in assigned)

    def step(self, timeout_ms: int | None = None, *, check_generation: bool = True) -> int:
        if check_generation:
            self._generation_checked = time.monotonic()
            active = self._active_generations()
            if active != self.generations:  # a rebuild was swapped in: follow it
                for store, old, new in zip(self.stores, self.generations, active, strict=True):
                    if old != new:
                        log.info("%s: switching to generation %d", store.name, new)
                self.generations = active
                self.seek_to_stored(self.opened.assignment())
        lane = {tp: self._held.pop(tp) for tp in self._lane if tp in self._held}
        self._lane = set()
        if lane:
            # the urgent lane: only the partitions an urgent event came on, all they hold, in
            # order; the others' held records wait out their linger. Order is kept within a
            # partition, the only order the broker gives. The measures board's completions
            # went with a quarter second of attendances and their recounts: three round trips
            # more in the transaction between a completion and the dashboard (issue 14)
            batch = lane
        elif self._held:  # held while lingering: with whatever came since, not waiting for more
            batch, self._held = self._held, {}
            for tp, records in self._poll(0).items():
                batch.setdefault(tp, []).extend(records)
        else:
            wait = self.poll_ms if timeout_ms is None else timeout_ms
            batch = self._poll(wait)
        self.idle = not batch
        applied = 0
        if batch or self._spare_left() <= 0:
            try:
                applied = apply_together(self._parts(batch))
            except GenerationRetired as retired:
                # two swaps since this runner last looked: follow the active generation
                # from its stored positions (the batch in hand is read again from there)
                log.info("%s: %s; switching", self.name, retired)
                self.generations = self._active_generations()
                self.seek_to_stored(self.opened.assignment())
                self._generation_checked = time.monotonic()
                return 0
            self.applied_total += applied
            self._moved_past(batch)
            self._remember(batch)
            self._kafka_pending = True
        if self._kafka_pending:
            self._commit_to_kafka()  # when due: also once idle, after the last batch
        self._report_status()
        return applied

    def _active_generations(self) -> list[int]:
        """Each projection's active generation, in one read for a runner of several."""
        if len(self.stores) == 1:
            return [self.stores[0].active_generation()]
        names = [store.name for store in self.stores]
        active = {
            d["_id"]: d.get("active")
            for d in self.stores[0].meta.find({"_id": {"$in": names}}, {"active": 1})
        }
        return [active.get(store.name) or store.active_generation() for store in self.stores]

    def _parts(
        self, batch: Mapping[TopicPartition, Sequence[ConsumerRecord]]
    ) -> list[tuple[ProjectionStore, list[Record], int]]:
        """Each projection's share of a batch (`apply_together`): the records of its topics
        past its own next offset there, which then moves past the batch."""
        parts: list[tuple[ProjectionStore, list[Record], int]] = [
            (store, [], generation)
            for store, generation in zip(self.stores, self.generations, strict=True)
        ]
        for tp in sorted(batch, key=lambda t: (t.topic, t.partition)):
            polled = batch[tp]
            if not polled:
                continue
            for i, (_, records, _) in enumerate(parts):
                if tp.topic not in self._topics_of[i]:
                    continue
                start = self._next[i].get(tp, 0)
                records.extend(
                    Record(r.topic, r.partition, r.offset, r.value)
                    for r in polled
                    if r.offset >= start
                )
        now = time.monotonic()
        for i, (_, records, _) in enumerate(parts):
            if not self._spares[i]:
                continue
            spared = self._spared[i]
            due = spared and now - self._spared_since[i] >= self.projections[i].linger
            if due or any(_envelope(r.value, "type") in self._handled[i] for r in records):
                records[:0] = spared  # the older first: each partition's order is kept
                spared.clear()
            elif records:
                if not spared:
                    self._spared_since[i] = now
                spared.extend(records)
                records.clear()
        return parts

    def _moved_past(self, batch: Mapping[TopicPartition, Sequence[ConsumerRecord]]) -> None:
        """After a batch applied: each projection reading its partitions is past it."""
        for tp, polled in batch.items():
            if polled:
                for i, nxt in enumerate(self._next):
                    if tp.topic in self._topics_of[i]:
                        nxt[tp] = max(nxt.get(tp, 0), polled[-1].offset + 1)

    def _remember(
        self,
        batch: Mapping[TopicPartition, Sequence[ConsumerRecord]],
        window: float = READ_CHECK_WINDOW,
        slot: float = 0.5,
    ) -> None:
        """Keep, per half second, the last record read: the record read just before an outage
        is always kept, and at most window/slot samples per partition."""
        now = time.monotonic()
        for tp, records in batch.items():
            if not records:
                continue
            last = records[-1]
            read = self._read.setdefault(tp, deque())
            sample = (now, last.offset, _envelope(last.value, "event_id"))
            if read and now - read[-1][0] < slot:
                read[-1] = (read[-1][0], *sample[1:])
            else:
                read.append(sample)
            while read and read[0][0] < now - window:
                read.popleft()

    def _reseek_after_failure(self) -> None:
        # the consumer's positions moved past records that were not applied: go back
        if self.consumer is None:
            return
        try:
            self.seek_to_stored(self.consumer.assignment())
        except (PyMongoError, KafkaError):
            pass  # still down; the next step fails again and we come back here

    def _report_status(self) -> None:
        now = time.monotonic()
        # at rest with nothing applied since the last report, the lag is looked up (a
        # request to the broker per runner) only every STATUS_IDLE
        resting = self.idle and (self._last_status_written or (0, 0, -1))[2] == self.applied_total
        interval = STATUS_IDLE if resting else self.status_interval
        if now - self._last_status < interval or self.consumer is None:
            return
        self._last_status = now
        assigned = list(self.consumer.assignment())
        behind: dict[TopicPartition, int] = {}
        if assigned:
            try:
                ends = self.consumer.end_offsets(assigned)
                behind = {tp: max(0, ends[tp] - self.consumer.position(tp)) for tp in assigned}
            except KafkaError:
                return
        status = (tuple(self.generations), tuple(sorted(behind.items())), self.applied_total)
        if status == self._last_status_written and now - self._last_status_write < STATUS_IDLE:
            return  # idle: the same again would only be a write for every change stream to see
        self._last_status_written, self._last_status_write = status, now
        # one document per projection, as the metrics read them (its lag on its topics); the
        # records applied are the runner's, over its projections
        heartbeat = utcnow()
        self.stores[0].db["worker_status"].bulk_write(
            [
                UpdateOne(
                    {"_id": f"consumer:{group_id(self.settings, projection)}-{self.instance}"},
                    {
                        "$set": {
                            "kind": "consumer",
                            "projection": projection.name,
                            "runner": self.name,
                            "generation": generation,
                            "lag": {
                                f"{tp.topic}:{tp.partition}": n
                                for tp, n in behind.items()
                                if tp.topic in topics
                            },
                            "heartbeat": heartbeat,
                            "applied_total": self.applied_total,
                        }
                    },
                    upsert=True,
                )
                for projection, generation, topics in zip(
                    self.projections, self.generations, self._topics_of, strict=True
                )
            ],
            ordered=False,
        )

    def _commit_to_kafka(self, *, final: bool = False) -> None:
        """The positions, as the group's committed offsets on the broker: the lag a Kafka
        tool shows (the store's offsets, written with the projection's writes, are the source
        of truth, and `_report_status` reads the lag from the positions). At most once a
        KAFKA_COMMIT_EVERY, not waiting for the answer: a commit after every batch was a
        round trip to the broker in the runner's loop before its next poll, 2-3 ms (p50) and
        10-24 ms (p90) a batch under the bench's flows, and some 35 requests a second to the
        broker (issue 14, session 34). Positions moved since the last commit are committed
        once due, after a runner's last batch too (`_watched_round` rests no longer), so a
        Kafka tool sees an idle group's lag reach 0. `final` (on close) waits, up to
        KAFKA_COMMIT_WAIT_MS."""
        now = time.monotonic()
        if not final and self._kafka_commit_left() > 0:
            return
        self._kafka_committed, self._kafka_pending = now, False
        try:
            if final:
                self.opened.commit(timeout_ms=KAFKA_COMMIT_WAIT_MS)
            else:
                self.opened.commit_async(callback=self._kafka_commit_answered)
        except (CommitFailedError, IllegalGenerationError, RebalanceInProgressError) as err:
            # normal during a rebalance: the MongoDB offsets are the source of truth
            log.info("%s: commit skipped during rebalance (%s)", self.name, err)
        except KafkaError as err:
            log.info("%s: commit to the broker failed (%s)", self.name, err)

    def _kafka_commit_left(self) -> float:
        """Seconds until the positions moved since the last commit are due; inf if none."""
        if not self._kafka_pending:
            return float("inf")
        return self._kafka_committed + KAFKA_COMMIT_EVERY - time.monotonic()

    def _kafka_commit_answered(self, offsets: object, answer: object) -> None:
        if isinstance(answer, Exception):
            log.info("%s: commit to the broker failed (%s)", self.name, answer)

    def close(self) -> None:
        if self.consumer is not None:
            if self.applied_total:
                self._commit_to_kafka(final=True)
            try:
                self.consumer.close()  # leaves the group at once
            except KafkaError:
                log.debug("consumer close failed", exc_info=True)
            self.consumer = None


class RebuildStopped(Exception):
    """A rebuild was asked to stop (SIGTERM, Ctrl-C) before it finished: its generation was
    dropped and the old one still serves."""


# One rebuild of a projection at a time: a rebuild holds its projection's build while it runs
# (`_BuildClaim`). Two at once built the same generation, the second dropping what the first had
# written and the first then writing into a collection the second was making, which wedged the
# local store (a disposal sweep of a test beside the service's own disposal worker, session 20).
# A claim not renewed for BUILD_LEASE belongs to a rebuild that died and may be taken over.
BUILD_LEASE = timedelta(seconds=60)
BUILD_RENEW = 10.0  # seconds between two renewals of a claim
BUILD_WAIT = 0.5  # seconds between two looks while another rebuild holds the build


class BuildLost(Exception):
    """A rebuild's claim was taken over (it had not renewed it for BUILD_LEASE): it stops and
    leaves the generation to the rebuild that took it."""


class _BuildClaim:
    """The projection's build, held in its meta document (`build_claim`, `build_renewed_at`)."""

    def __init__(self, store: ProjectionStore):
        self.store, self.token, self.renewed = store, uuid.uuid4().hex, 0.0

    def take(self, stop: threading.Event | None) -> None:
        """Wait until no other rebuild holds the build (or its claim is stale), then hold it."""
        self.store.active_generation()  # the meta document exists from here on
        while True:
            now = utcnow()
            taken = self.store.meta.update_one(
                {
                    "_id": self.store.name,
                    "$or": [
                        {"build_claim": None},
                        {"build_renewed_at": {"$lt": now - BUILD_LEASE}},
                    ],
                },
                {"$set": {"build_claim": self.token, "build_renewed_at": now}},
            )
            if taken.modified_count:
                self.renewed = time.monotonic()
                return
            if stop is not None and stop.is_set():
                raise RebuildStopped(f"{self.store.name}: stopped waiting for another rebuild")
            log.info("rebuild of %s waits for the one running", self.store.name)
            (stop or threading.Event()).wait(BUILD_WAIT)

    def renew(self) -> None:
        """Every BUILD_RENEW seconds, between two batches; BuildLost if it was taken over."""
        if time.monotonic() - self.renewed < BUILD_RENEW:
            return
        if not self.store.meta.update_one(
            {"_id": self.store.name, "build_claim": self.token},
            {"$set": {"build_renewed_at": utcnow()}},
        ).modified_count:
            raise BuildLost(f"{self.store.name}: another rebuild took the build over")
        self.renewed = time.monotonic()

    def release(self) -> None:
        self.store.meta.update_one(
            {"_id": self.store.name, "build_claim": self.token},
            {"$set": {"build_claim": None}},
        )


def rebuild(
    settings: Settings,
    projection: Projection,
    *,
    registry: EventRegistry = default_registry,
    progress: Callable[[int, int], None] | None = None,
    keep_previous: bool = True,
    stop: threading.Event | None = None,
) -> int:
    """Replay the projection's topics from the beginning into a new generation, up to the
    end offsets seen at the start, then make it active. The old generation serves readers
    until the swap. Returns the new generation. `stop`, when set, ends it between two
    batches (never inside a transaction): the new generation is dropped, RebuildStopped.
    One at a time per projection: a second waits for the first to finish, then rebuilds
    (from what is then active)."""
    store = projection_store(settings, projection, registry)
    claim = _BuildClaim(store)
    claim.take(stop)
    try:
        return _rebuild(settings, projection, store, claim, progress, keep_previous, stop)
    except BuildLost:
        log.error("rebuild of %s: its build was taken over; it stops", store.name)
        raise
    finally:
        claim.release()


def _rebuild(
    settings: Settings,
    projection: Projection,
    store: ProjectionStore,
    claim: _BuildClaim,
    progress: Callable[[int, int], None] | None,
    keep_previous: bool,
    stop: threading.Event | None,
) -> int:
    old = store.active_generation()
    new = old + 1
    store.drop_generation(new)  # a previous rebuild that stopped half-way
    store.ensure_generation(new)
    store.ensure_outside()
    store.meta.update_one(
        {"_id": store.name}, {"$set": {"building": new, "build_started_at": utcnow()}}
    )
    try:
        _replay(settings, projection, store, new, progress, stop, claim.renew)
    except BuildLost:
        raise  # the generation is the other rebuild's now
    except BaseException as err:
        # nothing half-built stays behind: the old generation keeps serving as if nothing happened
        if isinstance(err, RebuildStopped):
            log.info("rebuild of %s stopped; generation %d dropped", store.name, new)
        else:
            log.exception("rebuild of %s failed; generation %d dropped", store.name, new)
        store.drop_generation(new)
        store.meta.update_one({"_id": store.name}, {"$set": {"building": None}})
        raise
    claim.renew()  # still ours: swap it in
    store.activate(new, keep=keep_previous)
    if not keep_previous:
        store.drop_generation(old)
    elif old > 1:
        store.drop_generation(old - 1)  # keep one previous generation for rollback
    return new


def _replay(
    settings: Settings,
    projection: Projection,
    store: ProjectionStore,
    generation: int,
    progress: Callable[[int, int], None] | None,
    stop: threading.Event | None = None,
    renew: Callable[[], None] | None = None,
) -> None:
    """Apply the projection's topics from the beginning up to the end offsets seen now;
    `renew` between two batches (the rebuild's claim on the build)."""
    topics = [settings.topic(s) for s in projection.sources]
    consumer = kafka_clients.consumer(
        settings.kafka_bootstrap,
        group_id=None,
        client_id=f"rebuild-{store.name}",
        max_poll_records=REBUILD_BATCH,
    )
    try:
        known = {t: consumer.partitions_for_topic(t) for t in topics}
        missing = [t for t, found in known.items() if not found]
        if missing:  # a source no service has published to yet: made as its relay would
            # (asked only then: an admin client of its own was 8-9 ms of a 3,000-event
            # rebuild's 200, bench kernel, issue 14)
            kafka_clients.ensure_topics(
                settings.kafka_bootstrap, missing, settings.topic_partitions
            )
            known.update({t: consumer.partitions_for_topic(t) for t in missing})
        partitions = [TopicPartition(t, p) for t in topics for p in sorted(known[t] or ())]
        consumer.assign(partitions)
        # each partition's first offset asked now and sought: with `seek_to_beginning` the
        # first poll asks for it, and a poll whose answer has not come when it looks for
        # records sleeps kafka-python's `retry_backoff_ms` (100 ms): one to three rebuilds of
        # 3,000 events in 15-20 took 100 ms more than the others (bench kernel, issue 14)
        for tp, first in consumer.beginning_offsets(partitions).items():
            consumer.seek(tp, first)
        ends = consumer.end_offsets(partitions)
        total = sum(ends.values())
        done = 0
        if progress:
            progress(done, total)
        remaining = {tp for tp in partitions if ends[tp] > 0}
        store.keep_progress(generation)
        # each batch decided while the one before it is written (shared.projections.Ahead)
        with store.ahead(generation) as ahead:
            while remaining:
                if stop is not None and stop.is_set():
                    raise RebuildStopped(f"{store.name}: stopped at {done} of {total} records")
                if renew is not None:
                    renew()
                batch = consumer.poll(timeout_ms=1000)
                wanted = {
                    tp: [r for r in recs if r.offset < ends[tp]] for tp, recs in batch.items()
                }
                records = _records({tp: recs for tp, recs in wanted.items() if recs})
                ahead.apply(records)
                done += len(records)
                if progress:
                    progress(done, total)
                for tp in list(remaining):
                    if consumer.position(tp) >= ends[tp]:
                        remaining.discard(tp)
                        consumer.pause(tp)
        store.write_progress(generation)
    finally:
        consumer.close()


def redrive(
    settings: Settings, projection: Projection, *, registry: EventRegistry = default_registry
) -> tuple[int, int]:
    """Apply the projection's parked records again (after the code that refused them was
    fixed), into the active generation, without moving its offsets. Returns (applied, still
    parked). Records that fail again stay parked. A redriven event lands after the events
    that followed it; for a projection where order matters, rebuild instead."""
    store = projection_store(settings, projection, registry)
    generation = store.active_generation()
    applied = 0
    for doc in list(
        store.dead_letters.find({"projection": store.name}).sort(
            [("topic", 1), ("partition", 1), ("offset", 1)]
        )
    ):
        record = Record(doc["topic"], doc["partition"], doc["offset"], doc["raw"].encode())
        if store.apply([record], generation, track_offsets=False):
            applied += 1
        if not store.dead_letters.find_one({"_id": doc["_id"], "at": {"$gt": doc["at"]}}):
            store.dead_letters.delete_one({"_id": doc["_id"], "at": doc["at"]})
    return applied, store.dead_letters.count_documents({"projection": store.name})
