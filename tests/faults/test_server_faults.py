"""The broker stopped and the store killed while commands keep coming, with the relay and
the consumer running as real processes. Every acknowledged command's events must be in the
store exactly once, on the topic at least once, and applied exactly once by the projection."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter

import pytest
import requests

from testkit.faults import (
    RecordsLoad,
    open_tasks,
    per_stream_order_kept,
    processed_count,
    read_topic,
    repaired_events,
)
from testkit.plugin import eventually
from testkit.procs import Gunicorn, worker

from .conftest import LOCAL_ONLY

pytestmark = [pytest.mark.slow, LOCAL_ONLY]


def pipeline(settings, procs):
    # PYTHONFAULTHANDLER: a SIGABRT (sent by `diagnose`) writes every thread's stack to the log
    env = {"PYTHONFAULTHANDLER": "1", "RAPPORT_LOG_LEVEL": "INFO"}
    return (
        procs.add(worker(settings, "relay", "records", log_dir=procs.log_dir, env=env)),
        procs.add(
            worker(
                settings,
                "consume",
                "records",
                "--projection",
                "client_summaries",
                log_dir=procs.log_dir,
                env=env,
            )
        ),
    )


def diagnose(settings, store, total: int, stuck) -> str:
    """Where a pipeline that did not converge stands; the stuck processes' stacks go to
    their logs."""
    on_topic = {m["event_id"] for m in read_topic(settings, settings.topic("records"))}
    stored = {d["_id"] for d in store.events.find({}, {"_id": 1})}
    state = (
        f"published_through={store.published_through()} of {total}, "
        f"applied={processed_count(settings)}, marked published but NOT on the topic: "
        f"{len(stored - on_topic)}; logs: {[p.log_path for p in stuck]}"
    )
    for proc in stuck:
        if proc.alive():
            os.kill(proc.pid, signal.SIGABRT)
    return state


def converged(settings, expected: dict, total: int) -> bool:
    return open_tasks(settings) == expected and processed_count(settings) == total


def test_broker_stopped_mid_load_and_restarted_loses_nothing(settings, procs, servers_restored):
    """The local broker (noida-db 0.2.3) was seen acknowledging records (acks=all) and then
    lacking them after a SIGTERM restart under load (6 and 9 events in 3 of 7 runs). The relay
    now checks its recent acknowledgements after a broker failure and publishes the lost ones
    again (shared/outbox.py), so this case holds on either broker."""
    local = servers_restored
    load = RecordsLoad(settings, clients=10)
    relay, consumer = pipeline(settings, procs)
    load.assign(50)
    eventually(lambda: processed_count(settings) > 0, timeout=90, message="pipeline flowing")
    stop = threading.Event()
    during = Counter()

    def steady():  # commands at a steady pace; none may fail while the broker is away
        while not stop.is_set():
            load.assign(1)
            during["commands"] += 1
            time.sleep(0.02)

    thread = threading.Thread(target=steady, daemon=True)
    thread.start()
    try:
        time.sleep(2)
        local.stop("broker")  # SIGTERM: the local broker persists on a clean stop only
        before = during["commands"]
        time.sleep(4)
        assert during["commands"] > before, "commands still succeed with the broker down"
        local.start("broker")
        time.sleep(2)
    finally:
        stop.set()
        thread.join(timeout=30)
        local.start("broker")
    total = load.event_count()
    try:
        eventually(
            lambda: converged(settings, load.expected(), total),
            timeout=120,
            message="projection converged after the broker came back",
        )
    except AssertionError as err:
        seen = diagnose(settings, load.store, total, [relay, consumer])
        raise AssertionError(f"{err}; {seen}") from err
    messages = read_topic(settings, settings.topic("records"))
    stored = {d["_id"] for d in load.store.events.find({}, {"_id": 1})}
    assert {m["event_id"] for m in messages} == stored, "every event published"
    repaired = repaired_events(load.store)
    assert per_stream_order_kept(messages, repaired), "order kept, but for the repaired events"
    print(f"events the broker lost and the relay published again: {len(repaired)}")


def test_store_killed_mid_load_every_acknowledged_command_once_projection_converges(
    settings, procs, servers_restored, auth_header
):
    local = servers_restored
    web = procs.add(
        Gunicorn("services.records.wsgi:app", settings, log_dir=procs.log_dir, name="records-web")
    )
    relay, consumer = pipeline(settings, procs)
    admin, t1 = auth_header("admin"), auth_header("therapist", therapist_id="t1", sub="t1-user")
    clients = []
    for i in range(4):
        r = requests.post(
            f"{web.url}/clients",
            headers=admin,
            timeout=30,
            json={
                "given_name": "Emma",
                "family_name": f"Kill{i}",
                "date_of_birth": "1981-03-02",
                "preferred_modality": "video",
                "therapist_id": "t1",
                "referral_source": "GP",
            },
        )
        assert r.status_code == 201, r.text
        clients.append(r.json()["client_id"])
    acked, outcomes, stop, lock = [], Counter(), threading.Event(), threading.Lock()

    def tasks(n):
        session = requests.Session()
        i = 0
        while not stop.is_set():
            cid = clients[(n + i) % len(clients)]
            i += 1
            try:
                r = session.post(
                    f"{web.url}/clients/{cid}/tasks",
                    headers=t1,
                    timeout=30,
                    json={"description": f"homework {n}-{i}"},
                )
                status = r.status_code
            except requests.RequestException:
                status = 0
            with lock:
                outcomes[status] += 1
                if status == 201:
                    acked.append(r.json()["task_id"])

    threads = [threading.Thread(target=tasks, args=(n,), daemon=True) for n in range(4)]
    for t in threads:
        t.start()
    try:
        eventually(lambda: len(acked) >= 20, timeout=120, message="tasks being assigned")
        local.kill("store")  # SIGKILL, mid-load
        time.sleep(2)
        local.start("store")
        count = len(acked)
        eventually(lambda: len(acked) >= count + 20, timeout=120, message="commands succeed again")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
        local.start("store")
    from shared.web import ServiceContext

    events = ServiceContext("records", settings).store.events
    stored = Counter(
        d["data"]["task_id"] for d in events.find({"type": "TaskAssigned"}, {"data.task_id": 1})
    )
    assert all(stored[t] == 1 for t in acked), "every acknowledged command's event, exactly once"
    assert set(stored.values()) == {1}, "no command's event twice"
    assert outcomes[201] == len(acked) and 500 not in outcomes, dict(outcomes)
    expected = {
        cid: sum(1 for d in events.find({"type": "TaskAssigned", "data.client_id": cid}))
        for cid in clients
    }
    total = events.count_documents({})
    store = ServiceContext("records", settings).store
    eventually(
        lambda: converged(settings, expected, total),
        timeout=180,
        message="projection converged after the store came back",
        describe=lambda: diagnose(settings, store, total, [relay, consumer]),
    )
