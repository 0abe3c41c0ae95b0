"""`make up` / `make down`: the whole of Rapport as local processes on 127.0.0.1 — the
broker and store, each service's API under gunicorn, its outbox relay and its consumers,
the portal, and the demo practice. Runs in the background; PIDs and logs under .run/.

    python -m deploy.local.stack up|down|status
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import click

from deploy.local import infra
from shared.config import DEFAULT_PORTS, Settings, mongo_uri_env

ROOT = infra.ROOT


def pid_dir() -> Path:
    return infra.run_dir() / "pids"


def log_dir() -> Path:
    return infra.run_dir() / "logs"


def available_services() -> list[str]:
    return [
        name
        for name in ("scheduling", "records", "measures", "notifications", "billing", "portal")
        if (ROOT / "services" / name / "wsgi.py").exists()
    ]


def processes() -> list[tuple[str, list[str], dict]]:
    """(name, command line, extra environment) of every process `make up` runs."""
    py = sys.executable
    out = []
    if (ROOT / "services" / "notifications" / "devmail.py").exists():
        # no real mail or SMS leaves a dev machine: local sinks under .run/mail and .run/sms
        out.append(
            (
                "devmail",
                [
                    py,
                    "-m",
                    "services.notifications.devmail",
                    "--port",
                    os.environ.get("RAPPORT_SMTP_PORT", "8025"),
                ],
                {},
            )
        )
        out.append(("devsms", [py, "-m", "services.notifications.devsms", "--port", "8026"], {}))
    for service in available_services():
        port = int(os.environ.get(f"RAPPORT_{service.upper()}_PORT", DEFAULT_PORTS[service]))
        out.append(
            (
                f"{service}-api",
                [
                    py,
                    "-m",
                    "gunicorn",
                    "-c",
                    str(ROOT / "deploy" / "gunicorn.conf.py"),
                    "--bind",
                    f"127.0.0.1:{port}",
                    f"services.{service}.wsgi:app",
                ],
                {"PROMETHEUS_MULTIPROC_DIR": str(infra.run_dir() / "prometheus" / service)},
            )
        )
        if service != "portal":
            out.append((f"{service}-relay", [py, "-m", "shared.run", "relay", service], {}))
            out.append((f"{service}-consumers", [py, "-m", "shared.run", "consume", service], {}))
    return out


def _pid(name: str) -> int | None:
    try:
        pid = int((pid_dir() / f"{name}.pid").read_text())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def move_to_own_stores(main_uri: str, own: dict[str, str], prefix: str) -> list[str]:
    """Move each database named in `own` ({name: its store's URI}) that is still on the main
    store to its own store: every collection's indexes and documents copied, the counts
    checked, then the main store's copy dropped. Run before any process of the practice
    starts. A move cut short leaves the main store's copy, so the next start copies again
    over what the last one left. The names of the databases moved, in order."""
    import pymongo

    moved = []
    main = pymongo.MongoClient(main_uri, tz_aware=True)
    try:
        for name, uri in own.items():
            database = f"{prefix}{name}"
            if uri == main_uri or database not in main.list_database_names():
                continue
            target = pymongo.MongoClient(uri, tz_aware=True)
            try:
                target.drop_database(database)  # what a move cut short left there
                for collection in main[database].list_collection_names():
                    if not collection.startswith("system."):
                        _copy(main[database][collection], target[database][collection])
            finally:
                target.close()
            main.drop_database(database)
            moved.append(database)
    finally:
        main.close()
    return moved


def _copy(source, target, batch: int = 1000) -> None:
    """A collection (made even when empty), its indexes, then its documents, copied; raises
    if the counts differ."""
    if target.name not in target.database.list_collection_names():
        target.database.create_collection(target.name)
    for index in source.list_indexes():
        spec = dict(index)
        if spec.pop("name") == "_id_":
            continue
        keys = list(spec.pop("key").items())
        spec.pop("v", None)
        spec.pop("ns", None)
        target.create_index(keys, name=index["name"], **spec)
    documents = []
    for document in source.find().sort("_id", 1):
        documents.append(document)
        if len(documents) >= batch:
            target.insert_many(documents, ordered=False)
            documents = []
    if documents:
        target.insert_many(documents, ordered=False)
    if target.count_documents({}) != source.count_documents({}):
        raise RuntimeError(f"{source.full_name}: the copy's count differs; nothing dropped")


def up(seed: bool = True, timeout: float = 90.0) -> None:
    infra.start()
    pid_dir().mkdir(parents=True, exist_ok=True)
    log_dir().mkdir(parents=True, exist_ok=True)
    # `make up` is the demo practice on this machine: the one place (with the tests) that
    # turns demo mode on, so a deployment that forgot its secrets refuses to start instead
    # (an explicit RAPPORT_DEMO_MODE=0 with real secrets still gives a non-demo local run)
    env = {"RAPPORT_DEMO_MODE": "1", **os.environ, "PYTHONPATH": str(ROOT)}
    # every process wakes the others' idle loops after its writes (shared.chime)
    env.setdefault("RAPPORT_WAKE_DIR", str(infra.run_dir() / "wake"))
    env.setdefault("RAPPORT_MONGO_URI", infra.mongo_uri())  # the store on its port, as in tests
    env.setdefault("RAPPORT_KAFKA_BOOTSTRAP", f"127.0.0.1:{infra.kafka_port()}")  # and the broker
    for name, uri in infra.mongo_uris().items():  # a database's own store (infra.own_stores)
        env.setdefault(mongo_uri_env(name), uri)
    # a practice started before a database had a store of its own (notifications', measures'):
    # the database moves there before anything runs (the message book must not be planned,
    # nor anything sent, again; no questionnaire answer may be left behind)
    own = {
        name: env[mongo_uri_env(name)] for name in infra.own_stores() if env[mongo_uri_env(name)]
    }
    prefix = env.get("RAPPORT_DB_PREFIX", Settings.db_prefix)
    for moved in move_to_own_stores(env["RAPPORT_MONGO_URI"], own, prefix):
        print(f"{moved}: moved from the main store to its own")
    subprocess.run([sys.executable, "-m", "shared.run", "topics"], env=env, cwd=ROOT, check=True)
    for name, command, extra in processes():
        if _pid(name):
            print(f"{name}: already running (pid {_pid(name)})")
            continue
        with open(log_dir() / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(
                command,
                cwd=ROOT,
                env={**env, **extra},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        (pid_dir() / f"{name}.pid").write_text(str(proc.pid))
    deadline = time.monotonic() + timeout
    for service in available_services():
        url = f"http://127.0.0.1:{DEFAULT_PORTS[service]}/healthz"
        while not _healthy(url):
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"{service} did not become healthy; see {log_dir()}/{service}-api.log"
                )
            time.sleep(0.2)
    if seed and (ROOT / "deploy" / "local" / "seed.py").exists():
        subprocess.run([sys.executable, "-m", "deploy.local.seed"], env=env, cwd=ROOT, check=True)
    print("\nRapport is running:")
    for service in available_services():
        print(f"  {service:<14} http://127.0.0.1:{DEFAULT_PORTS[service]}")
    print(f"  broker         127.0.0.1:{infra.kafka_port()}  store  127.0.0.1:{infra.mongo_port()}")
    for server in infra.servers():
        if server.name.startswith("store-"):
            print(f"  {server.name:<14} 127.0.0.1:{server.port}")
    print(f"  logs           {log_dir()}\n  stop with      make down")


def down() -> None:
    names = [p.stem for p in pid_dir().glob("*.pid")] if pid_dir().exists() else []
    pids = {}
    for name in names:
        pid = _pid(name)
        if pid:
            os.kill(pid, signal.SIGTERM)
            pids[name] = pid
    deadline = time.monotonic() + 30
    for name, pid in pids.items():
        while _pid(name) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _pid(name):
            print(f"{name}: still running after SIGTERM; sending SIGKILL")
            os.kill(pid, signal.SIGKILL)
        print(f"{name}: stopped")
    for name in names:
        (pid_dir() / f"{name}.pid").unlink(missing_ok=True)
    infra.stop()


def status() -> int:
    code = infra.status()
    for name, _, _ in processes():
        pid = _pid(name)
        code |= 0 if pid else 1
        print(f"{name}: {'running pid ' + str(pid) if pid else 'down'}")
    return code


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """The whole of Rapport as local processes (`make up`, `make down`, `make status`)."""


@cli.command("up")
@click.option("--no-seed", is_flag=True, help="Do not seed the demo practice.")
def up_command(no_seed: bool) -> None:
    """Start the broker, store, every service, the portal and the demo practice."""
    up(seed=not no_seed)


@cli.command("down")
def down_command() -> None:
    """Stop everything `up` started, by PID."""
    down()


@cli.command("status")
def status_command() -> None:
    """Show what runs; exit 1 if something is down."""
    sys.exit(status())


if __name__ == "__main__":
    cli(prog_name="python -m deploy.local.stack")
