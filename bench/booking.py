"""Booking throughput: `POST /sessions` on scheduling under real gunicorn (the deploy
settings), side by side with a bare Flask JSON endpoint under the same gunicorn settings
and with raw single inserts into the same store. Every booking is a distinct free slot
(therapist x weekday x hour x week), so each request does the full work and answers 201."""

from __future__ import annotations

import os
import time
from datetime import time as clock_time
from datetime import timedelta

import requests

from services.scheduling.domain import diary
from services.scheduling.projections import directory
from shared.auth import issue_token
from shared.events import utcnow
from shared.mongo import client as mongo_client
from shared.outbox import message_from_document
from shared.projections import Record
from shared.web import ServiceContext
from testkit.faults import RECEPTION, registered
from testkit.procs import Gunicorn

from .common import Report, percentile
from .load import run_load

SECONDS = float(os.environ.get("BENCH_HTTP_SECONDS", "15"))
THREADS = int(os.environ.get("BENCH_HTTP_THREADS", "8"))
THERAPISTS = 12
COURSE_SECONDS = float(os.environ.get("BENCH_COURSE_SECONDS", "10"))
COURSE_THREADS = 2
COURSE_WEEK = 30  # courses start after every week the single bookings can reach
WORKING_WEEK = [{"weekday": d, "start": "09:00", "end": "17:00"} for d in range(5)]


def _setup(settings, url: str, headers: dict) -> None:
    for t in range(THERAPISTS):
        tid = f"bt{t}"
        r = requests.post(
            f"{url}/therapists",
            headers=headers,
            timeout=60,
            json={
                "therapist_id": tid,
                "name": f"Therapist {t}",
                "email": f"{tid}@rapport.test",
                "modalities": ["video"],
                "rooms": [],
            },
        )
        assert r.status_code == 201, r.text
        r = requests.put(
            f"{url}/therapists/{tid}/availability",
            headers=headers,
            timeout=60,
            json={"weekly_hours": WORKING_WEEK, "exceptions": []},
        )
        assert r.status_code == 200, r.text
    # one client per therapist, known to scheduling's directory (applied by the kernel's code)
    store = ServiceContext("records", settings).store
    for t in range(THERAPISTS):
        store.append(f"bc{t}", 0, [registered(f"bc{t}", f"bt{t}")], RECEPTION)
    target = ServiceContext("scheduling", settings).projection(directory())
    docs = list(store.events.find().sort("position", 1))
    target.apply(
        [Record("direct", 0, d["position"], message_from_document(d)) for d in docs],
        target.active_generation(),
    )


def _slot_body(i: int) -> dict:
    """The i-th distinct slot: therapist, then hour, weekday and week."""
    t, rest = i % THERAPISTS, i // THERAPISTS
    hour, rest = 9 + rest % 8, rest // 8
    weekday, week = rest % 5, 4 + rest // 5
    today = diary.local(utcnow()).date()
    day = today + timedelta(days=7 * week - today.weekday() + weekday)
    return {
        "client_id": f"bc{t}",
        "therapist_id": f"bt{t}",
        "kind": "treatment",
        "modality": "video",
        "starts_at": diary.to_utc(day, clock_time(hour)).isoformat(),
    }


def _course_body(i: int) -> dict | None:
    """The i-th 16-week course: therapist, then hour and weekday, all from COURSE_WEEK on,
    so no two courses (nor a course and a single booking) want the same slot."""
    t, rest = i % THERAPISTS, i // THERAPISTS
    hour, weekday = 9 + rest % 8, rest // 8
    if weekday >= 5:
        return None
    today = diary.local(utcnow()).date()
    day = today + timedelta(days=7 * COURSE_WEEK - today.weekday() + weekday)
    return {
        "client_id": f"bc{t}",
        "therapist_id": f"bt{t}",
        "modality": "video",
        "first_starts_at": diary.to_utc(day, clock_time(hour)).isoformat(),
    }


def _raw_inserts(settings, seconds: float) -> tuple[float, list[float]]:
    coll = mongo_client(settings.mongo_uri)[settings.database("rawbench")]["raw"]
    body, latencies = _slot_body(0), []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        start = time.perf_counter()
        coll.insert_one(dict(body))
        latencies.append(time.perf_counter() - start)
    return len(latencies) / seconds, latencies


def run(settings, log_dir, report: Report) -> dict:
    token = issue_token(
        settings.token_secret,
        sub="bench",
        role="admin",
        email="bench@rapport.test",
        therapist_id=None,
        ttl_seconds=3600,
    )
    headers = {"Authorization": f"Bearer {token}"}
    rss = {}
    web = Gunicorn(
        "services.scheduling.wsgi:app", settings, log_dir=log_dir, name="scheduling-web"
    ).start()
    try:
        _setup(settings, web.url, headers)
        booked = run_load(
            f"{web.url}/sessions", _slot_body, seconds=SECONDS, threads=THREADS, headers=headers
        )
        courses = run_load(
            f"{web.url}/courses",
            _course_body,
            seconds=COURSE_SECONDS,
            threads=COURSE_THREADS,
            headers=headers,
        )
        rss["scheduling gunicorn (master + workers)"] = web.rss_peak_mib()
    finally:
        web.stop()
    bare = Gunicorn("bench.bare_app:app", settings, log_dir=log_dir, name="bare-web").start()
    try:
        flat = run_load(f"{bare.url}/echo", _slot_body, seconds=SECONDS, threads=THREADS)
        rss["bare Flask gunicorn (master + workers)"] = bare.rss_peak_mib()
    finally:
        bare.stop()
    raw_rate, raw_lat = _raw_inserts(settings, min(SECONDS, 8))
    note = f"{THREADS} client threads, {SECONDS:.0f}s; statuses {booked.statuses}"
    report.add(
        "booking POST /sessions (gunicorn)",
        booked.rate,
        "req/s",
        "bare Flask JSON, same gunicorn conf",
        flat.rate,
        note=note,
    )
    report.add(
        "booking POST /sessions (same figure)",
        booked.rate,
        "req/s",
        "raw insert_one, same store, 1 thread",
        raw_rate,
    )
    report.add("booking p50", booked.p(50), "ms", "bare Flask p50", flat.p(50))
    report.add("booking p99", booked.p(99), "ms", "bare Flask p99", flat.p(99))
    report.add(
        "booking p50 (same figure)",
        booked.p(50),
        "ms",
        "raw insert_one p50",
        percentile(raw_lat, 50) * 1000,
    )
    report.add(
        "course POST /courses (16 sessions) p50",
        courses.p(50),
        "ms",
        "bare Flask p50",
        flat.p(50),
        note=f"{COURSE_THREADS} client threads, {COURSE_SECONDS:.0f}s; statuses {courses.statuses}",
    )
    report.add(
        "course POST /courses (16 sessions) p99", courses.p(99), "ms", "bare Flask p99", flat.p(99)
    )
    return rss
