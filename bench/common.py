"""Helpers for `make bench`: isolated settings on the local servers, timing, the table."""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import time
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shared import kafka as kafka_clients
from shared.config import Settings, mongo_uris_from_env
from shared.events import NewEvent
from shared.eventstore import forget_append_locks
from shared.mongo import client as mongo_client
from shared.mongo import close_all, drop_in_pieces

RESULTS = Path(__file__).parent / "results"


def bench_settings() -> Settings:
    from deploy.local import infra

    infra.start()
    tag = uuid.uuid4().hex[:8]
    return Settings(
        kafka_bootstrap=f"127.0.0.1:{infra.kafka_port()}",
        mongo_uri=infra.mongo_uri(),
        # a database's own local store (infra.own_stores), or one named in the environment
        mongo_uris={**infra.mongo_uris(), **mongo_uris_from_env()},
        topic_prefix=f"bench{tag}.rapport.",
        db_prefix=f"bench{tag}_",
        topic_partitions=3,
    )


def session_booked(session_id: str, client_id: str, therapist_id: str, starts) -> NewEvent:
    """scheduling's SessionBooked for a 50-minute treatment session by video."""
    return NewEvent(
        "SessionBooked",
        {
            "session_id": session_id,
            "client_id": client_id,
            "therapist_id": therapist_id,
            "starts_at": starts,
            "ends_at": starts + timedelta(minutes=50),
            "kind": "treatment",
            "modality": "video",
            "room": None,
            "course_id": None,
            "number": None,
            "video_link": None,
        },
    )


# the local servers this run of the bench started itself (bench/__main__.py): the only ones
# `drop` may wipe
started: set[str] = set()


def drop(settings: Settings, *, wipe: bool = False) -> None:
    """A section's topics deleted and its databases dropped. The topics (since session 46):
    the local broker writes all it holds as one JSON file each second it changes, so every
    section left its records to the next ones' cost, and the capacity section, the fifth of
    the whole bench, found the broker at 20-30 % of a core over a 368 MB file (bench/README.md,
    session 46). The databases: their collections first emptied in pieces
    (`shared.mongo.drop_in_pieces`): a database of tens of thousands of documents dropped at
    once held the local store's one lock for 12-15 s (bench/README.md, session 21), into the
    start of the next section.

    `wipe`: a section that leaves millions of documents (the scale section's 1M row) has the
    main store restarted empty instead, when this run of the bench started it. In pieces,
    reading the ids of a scratch collection of two million documents took the store 28-38 s
    a look, the driver's monitor gave up on it meanwhile and cancelled the look, and the run
    ended there without saving its figures (session 31)."""
    kafka_clients.drop_topics(settings.kafka_bootstrap, settings.topic_prefix)
    if wipe and "store" in started:
        _wipe("store")
    for uri in settings.store_uris():
        c = mongo_client(uri)
        for name in c.list_database_names():
            if name.startswith(settings.db_prefix):
                for collection in c[name].list_collection_names():
                    if not collection.startswith("system."):
                        drop_in_pieces(c[name][collection])
                c.drop_database(name)
    forget_append_locks(settings.db_prefix)


def _wipe(name: str) -> None:
    """Restart the local server `name` with an empty data folder."""
    from deploy.local import infra

    (server,) = infra.servers(name)
    infra.stop(name)
    shutil.rmtree(server.datadir, ignore_errors=True)
    close_all()  # the clients of the store stopped: new ones for the next section
    infra.start(name)


class Timer:
    def __init__(self):
        self.seconds = 0.0

    @contextmanager
    def run(self):
        start = time.perf_counter()
        yield self
        self.seconds = time.perf_counter() - start


def percentile(values, p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


class Report:
    """Rows of (figure, value, unit, limit name, limit value): ratio = value / limit."""

    def __init__(self, name: str):
        self.name = name
        self.rows: list[dict] = []

    def add(
        self,
        figure: str,
        value: float,
        unit: str,
        limit: str | None = None,
        limit_value: float | None = None,
        note: str = "",
    ) -> None:
        ratio = (value / limit_value) if limit_value else None
        self.rows.append(
            {
                "figure": figure,
                "value": value,
                "unit": unit,
                "limit": limit,
                "limit_value": limit_value,
                "ratio": ratio,
                "note": note,
            }
        )

    def print(self) -> None:
        print(f"\n== {self.name} ==")
        heading = f"{'figure':<44} {'value':>12} {'unit':<9} {'limit (same run)':<36}"
        print(f"{heading} {'limit':>12} {'ratio':>7}")
        for r in self.rows:
            ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else ""
            limit_value = f"{r['limit_value']:.1f}" if r["limit_value"] is not None else ""
            print(
                f"{r['figure']:<44} {r['value']:>12.1f} {r['unit']:<9} {r['limit'] or '':<36} "
                f"{limit_value:>12} {ratio:>7}" + (f"  {r['note']}" if r["note"] else "")
            )

    def as_dict(self) -> dict:
        return {"name": self.name, "rows": self.rows}


def save(reports: list[Report], stamp: str | None = None) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = stamp or datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"bench-{stamp}.json"
    path.write_text(
        json.dumps(
            {
                "at": stamp,
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                },
                "reports": [r.as_dict() for r in reports],
            },
            indent=2,
            default=str,
        )
    )
    return path


def median(values) -> float:
    return statistics.median(values) if values else float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (gunicorn workers), in seconds."""
    from testkit.procs import child_pids

    total = 0.0
    for p in [pid, *child_pids(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def server_pids() -> dict[str, int]:
    """The local broker's and store's process ids ({} on servers this machine did not start:
    docker-compose, a store of the operator's)."""
    from deploy.local import infra

    found = {}
    for server in infra.servers():
        pid = server.pid()
        if pid:
            found[server.name] = pid
    return found


def store_ops(settings) -> dict[str, float]:
    """The stores' operation counters (serverStatus opcounters: query, insert, update,
    delete, getmore, command), which every client's commands move, summed over every store
    the settings use."""
    total: dict[str, float] = {}
    for uri in settings.store_uris():
        counters = mongo_client(uri).admin.command("serverStatus")["opcounters"]
        for k, v in counters.items():
            total[k] = total.get(k, 0.0) + float(v)
    return total
