"""End-to-end latencies at a steady load, with every part a real process
(`python -m shared.run relay|consume <service>`): events appended in their own service's
store, then seen in another service's projection or accepted by the SMTP server. The load is
offered as an open loop: RATE ticks a second on WRITERS threads, each tick started at its time
(`_steady_load`), and the rate achieved is what the stack took.
- SessionBooked (scheduling) -> records' client summary (`sessions`) and measures'
  questionnaire plan, and the questionnaire measures' reactor then requests (its append): no
  one waits for that one, but the stack owes it for every tick, and the store's work per
  tick is counted until it is done;
- QuestionnaireCompleted (measures) -> measures' dashboard read model (`responses`);
- RiskIndicated (measures) -> the clinical lead's alert email accepted by the dev SMTP sink;
- SessionAttended (scheduling) -> the charge visible in billing's ledger (the diary projection,
  the charge worker's append, billing's relay and its ledger projection).
Limits in the same run: a raw produce -> consume round trip on the same broker, and a raw
smtplib send to the same sink. Peak RSS (VmHWM) of each process afterwards."""

from __future__ import annotations

import os
import smtplib
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

from kafka import TopicPartition

from deploy.local.stack import available_services
from services.billing.domain import charge_id_for
from services.billing.projections import Ledger
from services.measures.domain import request_id_for, request_stream
from services.measures.projections import MeasuresBoard, QuestionnairePlans
from services.notifications.domain import message_id
from services.records.projections import ClientSummaries
from shared import kafka as kafka_clients
from shared.events import NewEvent, utcnow
from shared.wakeup import Doorbell
from shared.web import ServiceContext
from testkit.faults import RECEPTION, registered
from testkit.procs import free_port, worker

from .common import Report, cpu_seconds, percentile, server_pids, session_booked, store_ops
from .sink import SinkProcess, TimedSink

RATE = float(os.environ.get("BENCH_FLOW_RATE", "50"))  # issue 14: offer 50 ticks/s
SECONDS = float(os.environ.get("BENCH_FLOW_SECONDS", "30"))
# threads the ticks are offered on (an open loop: _steady_load). Eight held the offer to
# 26-32 ticks/s once the stack took more: a tick's appends wait for the store like anyone's,
# and eight at a time was all the bench offered, the others queued behind them (issue 14,
# session 19: 16 threads achieved 38 ticks/s, 32 all 50)
WRITERS = int(os.environ.get("BENCH_FLOW_WRITERS", "32"))
# the busy section's (the flows while a rebuild runs over and over), as the flows': in session
# 19 a rebuild's drop of a retired generation wedged the local store in two runs of three at
# 32 and the section ran on 8; since generations are dropped in pieces (shared.mongo
# .drop_in_pieces) it finished in nine runs of nine at 32 (bench/README.md, gaps)
BUSY_WRITERS = int(os.environ.get("BENCH_BUSY_WRITERS", "32"))
LEAD = "lead@bench.test"
GENERATION_TTL = 0.5  # seconds the watcher keeps a projection's active generation
SINK = os.environ.get("BENCH_SINK", "process")  # where the SMTP server runs: bench/sink.py
# a practice some months on: the message book holds this many messages sent before and a
# sixth as many reminders waiting for sessions ahead, and the notifications planner a third as
# many past sessions, before the clock starts
HISTORY = int(os.environ.get("BENCH_FLOW_HISTORY", "0"))
# every service's relay and all its consumers and loops, as `make up` runs them: the other
# projections' transactions queue at the same stores as the measured flows' (records'
# timeline and course ends, scheduling's diary and therapists, the measures loops), and a
# user feels that. 0: only the processes the measured flows go through (the tables of
# sessions 19-26 before this; bench/README.md)
STACK = os.environ.get("BENCH_FLOW_STACK", "1") == "1"
# each watch's figure in the table ("<name> p50", "<name> p99"; the capacity section reads them)
NAMES = {
    "records": "SessionBooked -> records summary",
    "plans": "SessionBooked -> measures plan",
    "board": "QuestionnaireCompleted -> dashboard",
    "mail": "RiskIndicated -> email accepted",
    "confirm": "SessionBooked -> confirmation email accepted",
    "charge": "SessionAttended -> billing charge",
}


def _booked(i: int, now: datetime) -> NewEvent:
    starts = now + timedelta(days=7, minutes=60 * i)
    return session_booked(f"fs-{i}", f"fc{i % 10}", "ft1", starts)


def _attended(i: int, now: datetime) -> NewEvent:
    starts = now + timedelta(days=7, minutes=60 * i)
    return NewEvent(
        "SessionAttended",
        {
            "session_id": f"fs-{i}",
            "client_id": f"fc{i % 10}",
            "therapist_id": "ft1",
            "starts_at": starts,
            "ends_at": starts + timedelta(minutes=50),
            "kind": "treatment",
        },
    )


def _completed(i: int) -> NewEvent:
    return NewEvent(
        "QuestionnaireCompleted",
        {
            "response_id": f"fr-{i}",
            "request_id": None,
            "client_id": f"fc{i % 10}",
            "therapist_id": "ft1",
            "session_id": None,
            "completed_at": utcnow(),
            "source": "staff",
            "scores": [
                {
                    "instrument": "PHQ-9",
                    "answers": [1] * 9,
                    "total": 9.0,
                    "band": "mild",
                    "prorated": False,
                }
            ],
            "course_id": None,
            "session_number": None,
        },
    )


def _risk(i: int) -> NewEvent:
    return NewEvent(
        "RiskIndicated",
        {
            "alert_id": f"fa-{i}",
            "client_id": f"fc{i % 10}",
            "therapist_id": "ft1",
            "response_id": f"fr-{i}",
            "instrument": "PHQ-9",
            "item": 9,
            "answer": 1,
            "indicated_at": utcnow(),
        },
    )


class Watch:
    """Ids appended (with the time) and a poller noting when each became visible. `lookup`
    answers the visible ones among the ids asked, as (id, when seen or None for now).
    `bell`, when given, rings when the projection looked at applied a batch: the watch
    looks only then (or when it has not looked for a while)."""

    def __init__(self, lookup, bell: Doorbell | None = None):
        self.lookup, self.appended, self.seen = lookup, {}, {}
        self.bell = bell
        self._lock = threading.Lock()  # the writers add while the poller looks

    def add(self, key: str, at: float) -> None:
        with self._lock:
            self.appended[key] = at

    def poll(self) -> None:
        with self._lock:
            waiting = [k for k in self.appended if k not in self.seen]
        if waiting:
            now = time.monotonic()
            for key, at in self.lookup(waiting):
                self.seen.setdefault(key, at or now)

    def latencies_ms(self) -> list[float]:
        return [(self.seen[k] - t) * 1000 for k, t in self.appended.items() if k in self.seen]


def _watching(watch: Watch, stop: threading.Event) -> None:
    """A watch's own poller: it looks when its projection applied a batch (its bell) or after
    0.2 s without one; a watch without a bell (the sink's, which notes its own times) every
    0.1 s."""
    bell = watch.bell
    while not stop.is_set():
        ticket = bell.ticket() if bell is not None else 0
        watch.poll()
        if bell is None:
            stop.wait(0.1)
        else:
            bell.wait(ticket, 0.2 if bell.watching else 0.01, stop)


def _by_ids(store, logical: str):
    """Look up ids in a projection's collection, in its active generation read again at most
    every GENERATION_TTL (`reader()` asks the store for it on every call: with four watches
    woken by every batch, the watcher's own reads were a quarter of the store's operations
    in the flows section, issue 14). A rebuild swapped in is followed within that; the
    generation it replaced stays until the next swap, so a look meanwhile still answers."""
    seen = {"at": float("-inf"), "generation": 0}

    def lookup(ids):
        now = time.monotonic()
        if now - seen["at"] >= GENERATION_TTL:
            seen["at"], seen["generation"] = now, store.active_generation()
        collection = store.physical(logical, seen["generation"])
        return [(d["_id"], None) for d in collection.find({"_id": {"$in": ids}}, {"_id": 1})]

    return lookup


def _processes(settings, log_dir, smtp_port):
    notify_env = {
        "RAPPORT_SMTP_PORT": str(smtp_port),
        "RAPPORT_QUIET_HOURS": "off",
        # the dispatchers' pace as shipped (0.25 s; the urgent lane rests on the risk alerts'
        # own ring, unpaced): the 0.05 s set here since the first bench, when dispatchers
        # polled, let the main dispatcher look five times as often as in `make up`
        "RAPPORT_CLINICAL_LEAD_EMAIL": LEAD,
    }
    if STACK:  # every relay and every consumer process as `make up` runs them (deploy.local)
        envs = {"notifications": notify_env}
        return [
            worker(settings, verb, service, log_dir=log_dir, env=envs.get(service))
            for service in available_services()
            if service != "portal"  # as deploy.local.stack.processes: no relay, no consumer
            for verb in ("relay", "consume")
        ]
    return [
        # records' relay publishes the clients' registrations (_seed): without it every booking
        # reached notifications for a client it did not know, and was held instead of planned
        worker(settings, "relay", "records", log_dir=log_dir),
        worker(settings, "relay", "scheduling", log_dir=log_dir),
        worker(settings, "relay", "measures", log_dir=log_dir),
        worker(settings, "consume", "records", "--projection", "client_summaries", log_dir=log_dir),
        worker(
            settings,
            "consume",
            "measures",
            "--projection",
            "questionnaire_plans",
            "--projection",
            "measures_board",
            log_dir=log_dir,
        ),
        worker(settings, "consume", "notifications", log_dir=log_dir, env=notify_env),
        worker(settings, "relay", "billing", log_dir=log_dir),
        worker(settings, "consume", "billing", log_dir=log_dir),
    ]


def _steady_load(
    settings,
    watches,
    stop_at: float,
    alerts: dict,
    booked: dict,
    traced: dict,
    writers: int = WRITERS,
    rate: float = RATE,
) -> int:
    """Offer `rate` ticks a second until `stop_at`, each tick started at its time whether or
    not the ticks before it are done (an open loop), on up to WRITERS threads, as the
    practice's people book and answer side by side. One thread appending tick after tick
    measured its own round trips: with three to the store per append under load, it could
    not offer more than about 11 ticks a second, whatever the stack behind it could take
    (issue 14). A tick's own appends keep their order (a session is booked before it is
    attended). Returns the ticks appended by `stop_at`; any not started by then are not.
    `traced` gets, for the records and board watches, {key: (event id, wall time, monotonic
    time)} of each append, for the hops of those flows (`_flow_hops`)."""
    scheduling = ServiceContext("scheduling", settings).store
    measures = ServiceContext("measures", settings).store
    now, interval = utcnow(), 1.0 / rate
    done = threading.Semaphore(0)

    def note(watch: str, key: str, at: float) -> None:
        watches[watch].add(key, at)

    def tick(i: int) -> None:
        if time.monotonic() >= stop_at:
            return  # queued behind slower ticks past the end: not offered
        (event,) = scheduling.append(f"session-fs-{i}", 0, [_booked(i, now)], RECEPTION)
        t = time.monotonic()
        booked[f"confirmation:fs-{i}:email"] = wall = time.time()
        traced["records"][f"fs-{i}"] = (event.event_id, wall, t)
        note("records", f"fs-{i}", t)
        note("plans", f"fs-{i}", t)
        # what the client meets: the confirmation, behind the busy hour's other messages (not
        # for the sessions marked attended below at once: theirs is voided when it is sent)
        if i % 5:
            note("confirm", message_id(f"confirmation:fs-{i}:email"), t)
        if i % 5 == 0:
            scheduling.append(f"session-fs-{i}", 1, [_attended(i, now)], RECEPTION)
            note("charge", charge_id_for(f"fs-{i}"), time.monotonic())
        if i % 4 == 0:
            (event,) = measures.append(f"response-fr-{i}", 0, [_completed(i)], RECEPTION)
            t = time.monotonic()
            note("board", f"fr-{i}", t)
            traced["board"][f"fr-{i}"] = (event.event_id, time.time(), t)
        if i % 10 == 0:
            wall = time.time()
            (event,) = measures.append(f"alert-fa-{i}", 0, [_risk(i)], RECEPTION)
            note("mail", message_id(f"risk:fa-{i}:lead:email"), time.monotonic())
            alerts[f"fa-{i}"] = (event.event_id, wall)
        done.release()

    with ThreadPoolExecutor(writers, thread_name_prefix="bench writer") as pool:
        futures, i, next_at = [], 0, time.monotonic()
        while next_at < stop_at:
            futures.append(pool.submit(tick, i))
            i += 1
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))
        for f in futures:
            f.result()  # an append that failed fails the run
    appended = 0
    while done.acquire(blocking=False):
        appended += 1
    return appended


def _broker_round_trips(settings, n: int = 200) -> list[float]:
    topic = settings.topic("roundtrip")
    kafka_clients.ensure_topics(settings.kafka_bootstrap, [topic], 1)
    producer = kafka_clients.producer(settings.kafka_bootstrap)
    consumer = kafka_clients.consumer(settings.kafka_bootstrap, group_id=None)
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek_to_end(tp)
    consumer.position(tp)
    out = []
    try:
        for _ in range(n):
            start = time.perf_counter()
            producer.send(topic, b"x" * 600).get(timeout=10)
            got = False
            while not got:
                got = any(consumer.poll(timeout_ms=100).values())
            out.append((time.perf_counter() - start) * 1000)
            time.sleep(1.0 / RATE)
    finally:
        producer.close()
        consumer.close()
    return out


def _smtp_sends(sink: TimedSink | SinkProcess, n: int = 100) -> list[float]:
    out = []
    for i in range(n):
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "bench@rapport.test", LEAD, "limit"
        msg["Message-ID"] = f"<raw-{i}-{uuid.uuid4().hex}@bench>"
        msg.set_content("raw send")
        start = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as smtp:
            smtp.send_message(msg)
        out.append((time.perf_counter() - start) * 1000)
    return out


def _fees() -> NewEvent:
    """A price list for billing, so an attended session has a fee."""
    none = {"charge": "none", "amount": None}
    return NewEvent(
        "FeesSet",
        {
            "effective_from": datetime(2000, 1, 1).date(),
            "currency": "GBP",
            "prices": [
                {"kind": "treatment", "modality": None, "therapist_id": None, "amount": 9000}
            ],
            "notice_hours": 24,
            "late_cancellation": none,
            "did_not_attend": none,
            "vat": {"exempt": True, "rate_basis_points": None, "number": None},
        },
    )


def _seed(settings) -> None:
    """The therapist and clients the flows refer to, in their own services' stores."""
    records = ServiceContext("records", settings).store
    for c in range(10):
        records.append(f"fc{c}", 0, [registered(f"fc{c}", "ft1")], RECEPTION)
    ServiceContext("scheduling", settings).store.append(
        "therapist-ft1",
        0,
        [
            NewEvent(
                "TherapistRegistered",
                {
                    "therapist_id": "ft1",
                    "name": "Dr Flow",
                    "email": "ft1@bench.test",
                    "phone": None,
                    "modalities": ["video"],
                    "rooms": [],
                },
            )
        ],
        RECEPTION,
    )
    ServiceContext("billing", settings).store.append("fees", 0, [_fees()], RECEPTION)
    kafka_clients.ensure_topics(
        settings.kafka_bootstrap,
        [
            settings.topic(s)
            for s in ("scheduling", "records", "measures", "notifications", "billing")
        ],
        settings.topic_partitions,
    )


def _history(settings, n: int) -> None:
    """`n` messages already sent, n/6 reminders pending for sessions ahead, and n/3 past
    sessions in the planner's directory, for clients the flows do not touch: what a
    practice's notifications store holds after some months (Maidstone's six therapists book
    about 7,000 sessions a year, each with a confirmation, reminders and questionnaire
    requests). Loaded in bulk, with the indexes the dispatchers and the planner make, before
    any process starts."""
    from services.notifications.application.book import PENDING, SENT, ensure_indexes
    from services.notifications.domain.plans import NORMAL
    from services.notifications.projections import Planner

    if n <= 0:
        return
    context = ServiceContext("notifications", settings)
    ensure_indexes(context.db)
    directory = context.projection(Planner())
    sessions = directory.physical("sessions", directory.active_generation())
    directory.ensure_generation(directory.active_generation())
    past = utcnow() - timedelta(days=200)
    for start in range(0, n, 5000):
        context.db["messages"].insert_many(
            [
                {
                    "_id": f"confirmation:hs-{i}:email",
                    "kind": "confirmation",
                    "channel": "email",
                    "priority": NORMAL,
                    "status": SENT,
                    "session_id": f"hs-{i}",
                    "client_id": f"hc{i % 700}",
                    "therapist_id": f"ht{i % 6}",
                    "audience": "client",
                    "next_at": past + timedelta(minutes=i),
                    "created_at": past + timedelta(minutes=i),
                    "as_of": past + timedelta(minutes=i),
                    "sent_at": past + timedelta(minutes=i, seconds=5),
                    "attempts": 1,
                    "announced": True,
                    "last_error": None,
                }
                for i in range(start, min(n, start + 5000))
            ],
            ordered=False,
        )
    ahead = utcnow() + timedelta(days=2)
    context.db["messages"].insert_many(
        [
            {
                "_id": f"reminder:hs-ahead-{i}:email",
                "kind": "reminder",
                "channel": "email",
                "priority": NORMAL,
                "status": PENDING,
                "session_id": f"hs-ahead-{i}",
                "client_id": f"hc{i % 700}",
                "therapist_id": f"ht{i % 6}",
                "audience": "client",
                "next_at": ahead + timedelta(minutes=30 * i),
                "created_at": past,
                "as_of": past,
                "attempts": 0,
                "announced": True,
                "last_error": None,
            }
            for i in range(n // 6)
        ],
        ordered=False,
    )
    sessions.insert_many(
        [
            {
                "_id": f"hs-{i}",
                "client_id": f"hc{i % 700}",
                "therapist_id": f"ht{i % 6}",
                "starts_at": past + timedelta(hours=i),
                "ends_at": past + timedelta(hours=i, minutes=50),
                "status": "attended",
                "kind": "treatment",
                "modality": "video",
            }
            for i in range(n // 3)
        ],
        ordered=False,
    )


def _rebuilding(settings, log_dir, stop: threading.Event) -> threading.Thread:
    """Rebuild records' client summaries again and again until `stop`: the operator's
    heaviest routine job, running while the practice is at its busiest."""

    def loop():
        while not stop.is_set():
            proc = worker(
                settings, "rebuild", "records", "client_summaries", log_dir=log_dir, name="rebuild"
            ).start()
            while proc.alive() and not stop.is_set():
                time.sleep(0.2)
            proc.stop()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def run(settings, log_dir, report: Report, *, rebuild: bool = False, rate: float = RATE) -> dict:
    """The flows at `rate` ticks a second (RATE, or each of the capacity section's rates);
    with `rebuild`, while records' client summaries are rebuilt over and over (the
    "RiskIndicated -> alert email under load" row of issue 14)."""
    # the SMTP server in a process of its own, as a practice's is (bench/sink.py);
    # BENCH_SINK=inprocess runs it inside the bench, as before session 11
    sink: TimedSink | SinkProcess = (
        TimedSink(free_port()) if SINK == "inprocess" else SinkProcess(free_port())
    ).start()
    summaries = ServiceContext("records", settings).projection(ClientSummaries())
    plans = ServiceContext("measures", settings).projection(QuestionnairePlans())
    board = ServiceContext("measures", settings).projection(MeasuresBoard())
    ledger = ServiceContext("billing", settings).projection(Ledger())

    def bell(store) -> Doorbell:
        # every batch a projection applies writes (and chimes) its offsets
        return Doorbell(store.offsets, name=f"bench watch {store.name}")

    watches = {
        "records": Watch(_by_ids(summaries, "sessions"), bell(summaries)),
        "plans": Watch(_by_ids(plans, "plans"), bell(plans)),
        "board": Watch(_by_ids(board, "responses"), bell(board)),
        "mail": Watch(sink.accepted),
        "confirm": Watch(sink.accepted),
        "charge": Watch(_by_ids(ledger, "charges"), bell(ledger)),
    }
    _seed(settings)
    _history(settings, HISTORY)
    alerts: dict[str, tuple[str, float]] = {}  # alert id -> (event id, wall time appended)
    booked: dict[str, float] = {}  # a confirmation's key -> wall time its booking was appended
    traced: dict[str, dict] = {"records": {}, "board": {}}  # (`_steady_load`)
    procs = [p.start() for p in _processes(settings, log_dir, sink.port)]
    rss = {}
    try:
        time.sleep(8)  # processes up and joined their groups before the clock starts
        stop_at = time.monotonic() + SECONDS
        polling = threading.Event()

        # each projection's watcher looks when that projection applied something (the
        # consumers' chime, shared.chime), not every 10 ms: polling four collections 100
        # times a second was hundreds of store queries a second of the bench's own, on the
        # store it measures. Without chimes (RAPPORT_WAKE_DIR empty) they poll as before.
        # One thread each: a single watcher looking at the four in turn made the dashboard's
        # look wait for the records' and the plans' lookups when their batches came together
        # (the look's start is the time a row is seen).
        threads = [
            threading.Thread(target=_watching, args=(w, polling), daemon=True)
            for w in watches.values()
        ]
        for thread in threads:
            thread.start()
        rebuilding = threading.Event()
        if rebuild:
            _rebuilding(settings, log_dir, rebuilding)
        requests = _Requests(settings)
        spent = _StoreSpend(settings, procs)
        try:
            appended = _steady_load(
                settings,
                watches,
                stop_at,
                alerts,
                booked,
                traced,
                BUSY_WRITERS if rebuild else WRITERS,
                rate,
            )
        finally:
            rebuilding.set()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(
            len(w.seen) < len(w.appended) for w in watches.values()
        ):
            time.sleep(0.2)
        if STACK:  # measures' reactor runs with `make up`'s processes only
            requests.wait(traced["records"], deadline)
        spent.stop()
        polling.set()
        for thread in threads:
            thread.join()
        for w in watches.values():
            if w.bell is not None:
                w.bell.close()
        for p in procs:
            rss[p.name] = p.rss_peak_mib()
    finally:
        for p in procs:
            p.stop()
    requested = requests.latencies(traced["records"]) if STACK else []
    hops = _risk_hops(settings, alerts, sink)
    confirmations = _confirmation_hops(settings, booked, sink)
    flows = {
        "summary": _flow_hops(settings, "scheduling", traced["records"], watches["records"]),
        "dashboard": _flow_hops(settings, "measures", traced["board"], watches["board"]),
    }
    trips, smtp = _broker_round_trips(settings), _smtp_sends(sink)
    sink.stop()
    note = (
        ("while records' client summaries are rebuilt over and over; " if rebuild else "")
        + (f"{HISTORY} messages sent before; " if HISTORY else "")
        + f"target {rate:g} ticks/s on {BUSY_WRITERS if rebuild else WRITERS} threads "
        f"for {SECONDS:.0f}s, achieved {appended / SECONDS:.1f}/s "
        f"({appended} bookings, 1 in 4 + completion, 1 in 10 + risk, 1 in 5 attended)"
    )
    limits = {
        "records": ("raw produce->consume, same broker", trips),
        "plans": ("raw produce->consume, same broker", trips),
        "board": ("raw produce->consume, same broker", trips),
        "mail": ("raw smtplib send, same sink", smtp),
        "confirm": ("raw smtplib send, same sink", smtp),
        "charge": ("raw produce->consume, same broker", trips),
    }
    for key, w in watches.items():
        lat, (limit, raw) = w.latencies_ms(), limits[key]
        missing = len(w.appended) - len(lat)
        extra = note + (f"; {missing} NOT SEEN within 60s" if missing else "")
        report.add(
            f"{NAMES[key]} p50",
            percentile(lat, 50),
            "ms",
            f"{limit} p50",
            percentile(raw, 50),
            note=extra,
        )
        report.add(
            f"{NAMES[key]} p99", percentile(lat, 99), "ms", f"{limit} p99", percentile(raw, 99)
        )
    if STACK:
        missing = len(traced["records"]) - len(requested)
        report.add(
            "SessionBooked -> questionnaire requested p50",
            percentile(requested, 50),
            "ms",
            note="measures' reactor's append (recorded_at); no one waits for it, the stack "
            "owes it" + (f"; {missing} NOT REQUESTED within 60s" if missing else ""),
        )
        report.add("SessionBooked -> questionnaire requested p99", percentile(requested, 99), "ms")
    report.add("ticks achieved", appended / SECONDS, "ticks/s", note=f"{rate:g} offered")
    spent.add_to(report, appended, rebuild)
    for path, by_hop, what in (
        ("risk", hops, "alerts (the lead's email)"),
        ("confirmation", confirmations, "confirmations (email)"),
        ("summary", flows["summary"], "bookings (records summary)"),
        ("dashboard", flows["dashboard"], "completions (dashboard)"),
    ):
        for hop, values in by_hop.items():
            report.add(
                f"  {path} hop: {hop} p50 / p99",
                percentile(values, 50),
                "ms",
                note=f"p99 {percentile(values, 99):.0f} ms; {len(values)} {what}",
            )
    return rss


class _StoreSpend:
    """What the store did for the ticks, from the load's start until every watch saw every
    tick's outcome: its operations (serverStatus opcounters, every client's: the services',
    the bench's appender and watcher) and, when this machine started it, its CPU, both
    summed over every local store (notifications' own too, since session 24). Per tick,
    these say how much of the store one tick of the practice costs, which the latencies
    above only show through the queue it makes: a change that saves round trips shows here
    at once, where a latency moves within the noise of a shared machine."""

    def __init__(self, settings, procs=()):
        self.settings = settings
        servers = server_pids()
        # every local store: the main one and a database's own (deploy/local/infra.py)
        self.pids = [pid for name, pid in servers.items() if name.startswith("store")]
        # and every process of the machine's share: the servers, the stack's, the bench's own
        self.everyone = {
            **servers,
            **{p.name: p.pid for p in procs},
        }
        self.ops, self.cpu = store_ops(settings), self._cpu()
        self.each, self.machine = self._each(), _machine_ticks()
        self.ops_spent = self.cpu_spent = None
        self.each_spent: dict[str, float] = {}
        self.busy: float | None = None

    def _cpu(self) -> float | None:
        return sum(cpu_seconds(pid) for pid in self.pids) if self.pids else None

    def _each(self) -> dict[str, float]:
        each = {name: cpu_seconds(pid) for name, pid in self.everyone.items()}
        own = os.times()
        each["bench"] = own.user + own.system  # its own threads only: the stack is its children
        return each

    def stop(self) -> None:
        after = store_ops(self.settings)
        self.ops_spent = sum(after[k] - self.ops.get(k, 0.0) for k in after)
        cpu = self._cpu()
        self.cpu_spent = None if cpu is None or self.cpu is None else cpu - self.cpu
        each = self._each()
        self.each_spent = {name: each[name] - self.each.get(name, 0.0) for name in each}
        busy, total = (a - b for a, b in zip(_machine_ticks(), self.machine, strict=True))
        self.busy = busy / total if total else None

    def add_to(self, report: Report, ticks: int, rebuild: bool) -> None:
        if not ticks or self.ops_spent is None:
            return
        also = "; a rebuild's too" if rebuild else ""
        report.add(
            "store operations per tick",
            self.ops_spent / ticks,
            "ops",
            note=f"{self.ops_spent:.0f} over {ticks} ticks (serverStatus opcounters){also}",
        )
        if self.cpu_spent is not None:
            report.add(
                "store CPU per tick",
                self.cpu_spent * 1000 / ticks,
                "ms",
                note=f"{self.cpu_spent:.1f} s of the stores' CPU over {ticks} ticks "
                f"({len(self.pids)} stores){also}",
            )
        if self.each_spent:
            spent = sum(self.each_spent.values())
            top = sorted(self.each_spent.items(), key=lambda kv: -kv[1])[:6]
            report.add(
                "CPU per tick, every process",
                spent * 1000 / ticks,
                "ms",
                note=f"{spent:.1f} s over {ticks} ticks; most: "
                + ", ".join(f"{name} {cpu * 1000 / ticks:.1f}" for name, cpu in top),
            )
            # each process's row too: what the top six leave out (the relays, the broker,
            # scheduling's and billing's consumers) was a fifth of the whole, unnamed
            for name, cpu in sorted(self.each_spent.items(), key=lambda kv: -kv[1]):
                report.add(f"  CPU per tick: {name}", cpu * 1000 / ticks, "ms")
        if self.busy is not None:
            report.add(
                "machine busy while counted",
                self.busy * 100,
                "%",
                note=f"of {os.cpu_count()} cores (/proc/stat), every process on the machine",
            )


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of every core since boot (/proc/stat's first line)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait
    return sum(fields) - idle, sum(fields)


class _Requests:
    """Measures' questionnaire requests of the bookings traced, read as the reactor appends
    them: each look reads only the events past the last one read (by `position`, indexed).
    Until session 29 each look counted the requests of every booking's stream (`$in` of
    1,500 stream ids), an aggregate the store's log had at 1.5-2.4 s, inside the window whose
    store CPU is counted."""

    def __init__(self, settings):
        self.events = ServiceContext("measures", settings).db["events"]
        last = self.events.find_one({}, {"position": 1}, sort=[("position", -1)])
        self.last = last["position"] if last else 0  # before the load
        self.at: dict[str, float] = {}  # session id -> its request's recorded_at (epoch s)

    def look(self, streams: dict[str, str]) -> int:
        found = self.events.find(
            {"position": {"$gt": self.last}},
            {"type": 1, "stream_id": 1, "recorded_at": 1, "position": 1},
        ).sort("position", 1)
        for d in found:
            self.last = d["position"]
            session_id = streams.get(d["stream_id"])
            if d["type"] == "QuestionnaireRequested" and session_id is not None:
                at = d["recorded_at"]
                self.at.setdefault(
                    session_id, (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()
                )
        return len(self.at)

    def wait(self, traced: dict, deadline: float) -> None:
        """Wait, until `deadline`, for measures' reactor to have requested the questionnaire
        of every booking: the stack owes that work for every tick, and the store's work per
        tick is counted until it is done. Until session 28 the flows stopped without it, and
        the reactor, starved of its append lock under the load, had requested about one in
        ten."""
        streams = {request_stream(request_id_for(session_id)): session_id for session_id in traced}
        while self.look(streams) < len(traced) and time.monotonic() < deadline:
            time.sleep(0.5)

    def latencies(self, traced: dict) -> list[float]:
        """ms from each booking's append to its questionnaire's request (the reactor's
        append, its `recorded_at`), wall clock."""
        return [(at - traced[session_id][1]) * 1000 for session_id, at in self.at.items()]


def _risk_hops(settings, alerts: dict, sink: TimedSink | SinkProcess) -> dict[str, list[float]]:
    """Where the time from a RiskIndicated to the lead's alert email goes, hop by hop: the
    event's timestamp on the topic (the relay's send), the message's planning in the book
    (created_at), its claim by a dispatcher and the sink's acceptance, all wall clock."""
    on_topic = _topic_times(settings, "measures", {e for e, _ in alerts.values()})
    book = ServiceContext("notifications", settings).db["messages"]
    keys = {f"risk:{a}:lead:email": a for a in alerts}
    docs = {d["_id"]: d for d in book.find({"_id": {"$in": list(keys)}})}
    hops: dict[str, list[float]] = {
        "append -> on topic": [],
        "on topic -> planned": [],
        "planned -> claimed": [],
        "claimed -> accepted": [],
    }
    for key, alert in keys.items():
        event_id, appended = alerts[alert]
        doc, accepted = docs.get(key), sink.accepted_wall.get(message_id(key))
        published = on_topic.get(event_id)
        if doc is None or accepted is None or published is None or not doc.get("claimed_at"):
            continue
        planned = doc["created_at"].timestamp()
        claimed = doc["claimed_at"].timestamp()
        for hop, (start, end) in zip(
            hops,
            ((appended, published), (published, planned), (planned, claimed), (claimed, accepted)),
            strict=True,
        ):
            hops[hop].append((end - start) * 1000)
    return hops


def _flow_hops(settings, service: str, traced: dict, watch: Watch) -> dict[str, list[float]]:
    """Where the time from an append to its projection's row goes: the append's return to
    the record's timestamp on the service's topic (the relay's send), and from there to the
    watcher seeing the row (the consumer's batch, and the watcher's own look)."""
    on_topic = _topic_times(settings, service, {e for e, _, _ in traced.values()})
    hops: dict[str, list[float]] = {"append -> on topic": [], "on topic -> seen": []}
    for key, (event_id, wall, mono) in traced.items():
        published, seen = on_topic.get(event_id), watch.seen.get(key)
        if published is None or seen is None:
            continue
        relay = published - wall
        hops["append -> on topic"].append(relay * 1000)
        hops["on topic -> seen"].append((seen - mono - relay) * 1000)
    return hops


def _confirmation_hops(settings, booked: dict, sink: TimedSink | SinkProcess) -> dict:
    """Where the time from a booking to its confirmation email goes: the booking's append,
    the message's planning in the book (created_at), its claim by the dispatcher and the
    sink's acceptance, all wall clock (a confirmation voided before it went has no claim
    or no acceptance, and is left out)."""
    book = ServiceContext("notifications", settings).db["messages"]
    docs = {d["_id"]: d for d in book.find({"_id": {"$in": list(booked)}})}
    hops: dict[str, list[float]] = {
        "booked -> planned": [],
        "planned -> claimed": [],
        "claimed -> accepted": [],
    }
    for key, appended in booked.items():
        doc, accepted = docs.get(key), sink.accepted_wall.get(message_id(key))
        if doc is None or accepted is None or not doc.get("claimed_at"):
            continue
        planned, claimed = doc["created_at"].timestamp(), doc["claimed_at"].timestamp()
        for hop, (start, end) in zip(
            hops, ((appended, planned), (planned, claimed), (claimed, accepted)), strict=True
        ):
            hops[hop].append((end - start) * 1000)
    return hops


def _topic_times(settings, service: str, event_ids: set[str]) -> dict[str, float]:
    """{event id: the record's timestamp (seconds)} for the given events of a service's topic."""
    import json

    topic = settings.topic(service)
    consumer = kafka_clients.consumer(settings.kafka_bootstrap, group_id=None)
    found: dict[str, float] = {}
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(
            consumer.position(tp) < ends[tp] for tp in partitions
        ):
            for records in consumer.poll(timeout_ms=500).values():
                for r in records:
                    event_id = json.loads(r.value).get("event_id")
                    if event_id in event_ids:
                        found[event_id] = r.timestamp / 1000
    finally:
        consumer.close()
    return found
