"""Local infrastructure without Docker (see ../shared/infrastructure.md): a Kafka-protocol
broker (noida-db) and a MongoDB-wire server (SecantusDB, --sync-on-commit), on 127.0.0.1,
data under the git-ignored run folder, stopped by PID with SIGTERM. Starting twice is
harmless: a server already answering on its port with a live PID is left alone.

A database may have a store of its own (RAPPORT_LOCAL_OWN_STORES, "notifications,measures"
unless set): one more SecantusDB on the next port for each, `store-notifications` and
`store-measures` (`mongo_uris`).

    python -m deploy.local.infra start|stop|status|restart [broker|store|store-<database>]
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[2]


def run_dir() -> Path:
    return Path(os.environ.get("RAPPORT_RUN_DIR", ROOT / ".run")).resolve()


def kafka_port() -> int:
    return int(os.environ.get("RAPPORT_KAFKA_PORT", "19092"))


def mongo_port() -> int:
    return int(os.environ.get("RAPPORT_MONGO_PORT", "27117"))


def own_stores() -> list[str]:
    """The databases the local servers give a store of their own, each on the port after
    the last (RAPPORT_LOCAL_OWN_STORES, comma-separated; empty: one store for all).

    Notifications and measures by default. The local store runs one transaction's statement
    at a time (one interpreter, one lock: bench/README.md, gaps of the local servers), so
    every hop of every flow queues at it. Notifications' message book was half of its work
    (issue 14, session 24). Measures then had most of the queue left (issue 14, session 43):
    the measures board waited 5-9 ms (p50) for each of its three round trips, 0.3-1.5 ms of
    the store's CPU each, behind scheduling's, records' and billing's batches. On its own
    store, in three pairs of flows runs, the dashboard's p50 was 42.6/40.4/35.8 ms before and
    24.5/26.5/30.8 after, the records summary's 34.4/38.9/30.4 and 22.6/26.1/29.9 (its
    batches no longer wait behind measures'). Session 24 tried this and left it out because
    the risk alert's e-mail got slower then; in session 43 its p99 moved within the noise
    (215/257/182 ms before, 152/205/212 after; target 500), and while a rebuild runs it was
    37-126 ms higher in three pairs of three, each under its 1 s target (bench/README.md).
    Each service still keeps its own database, as on real MongoDB, where one server runs
    commands side by side and RAPPORT_MONGO_URI_<NAME> is not needed."""
    raw = os.environ.get("RAPPORT_LOCAL_OWN_STORES", "notifications,measures")
    return [name.strip() for name in raw.split(",") if name.strip()]


def _uri(port: int) -> str:
    return f"mongodb://127.0.0.1:{port}/?directConnection=true&retryWrites=false"


def own_store_ports() -> dict[str, int]:
    """{database name: its own local store's port}: the ports after the main store's."""
    return {name: mongo_port() + 1 + i for i, name in enumerate(own_stores())}


def mongo_uris() -> dict[str, str]:
    """{database name: its own local store's URI} (Settings.mongo_uris)."""
    return {name: _uri(port) for name, port in own_store_ports().items()}


def mongo_uri() -> str:
    """The local store's URI, as every local client (make up, the tests, the bench) uses it.

    `retryWrites=false`: the store keeps a driver's retryable-write records in memory and, on
    every write outside a transaction, scans them all twice and, once 10,000 are held (30
    minutes' worth in the busy hour), sorts them, so such a write cost 2-5 times a plain one
    (issue 14, bench/README.md "Gaps of the local servers"). The records do not survive the
    store's restart, so a driver retry across a restart re-applied the write anyway; on this
    one local node the only blip they cover is the store going away, and there an error the
    caller's loop retries is the safer answer. Transactions are unaffected: the driver retries
    a commit whatever this says. Real MongoDB (docker-compose, k8s) keeps retryable writes.
    """
    return _uri(mongo_port())


def _venv_bin(name: str) -> Path:
    return Path(sys.prefix) / "bin" / name


def _noida_binary() -> Path:
    import noida_db  # the Rust binary inside the wheel, not the console-script wrapper

    return Path(noida_db.__file__).parent / "noida-db"


def store_command(port: int, datadir: Path, *, as_shipped: bool = False) -> list[str]:
    """The store's command line: SecantusDB's own, with its session registries kept to the
    sessions in use (deploy/local/store.py; `as_shipped` leaves them as the package has them,
    for the bench's side-by-side). Run by path: the server starts in the run folder."""
    launcher = (
        [str(_venv_bin("secantusd-py"))]
        if as_shipped
        else [str(_venv_bin("python")), str(ROOT / "deploy" / "local" / "store.py")]
    )
    return [
        *launcher,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--storage-path",
        str(datadir),
        "--sync-on-commit",
        "--cache-size",
        "512M",
        "--log-level",
        "WARNING",
    ]


@dataclass(frozen=True)
class Server:
    name: str
    port: int

    @property
    def pidfile(self) -> Path:
        return run_dir() / f"{self.name}.pid"

    @property
    def logfile(self) -> Path:
        return run_dir() / "logs" / f"{self.name}.log"

    @property
    def datadir(self) -> Path:
        return run_dir() / "data" / f"{self.name}-{self.port}"

    def command(self) -> list[str]:
        if self.name == "broker":
            return [
                str(_noida_binary()),
                "start",
                "--only",
                "kafka",
                "--kafka-port",
                str(self.port),
                "--host",
                "127.0.0.1",
                "--data-dir",
                str(self.datadir),
            ]
        return store_command(self.port, self.datadir)

    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        return pid

    def answering(self) -> bool:
        if not port_open(self.port):
            return False
        if self.name.startswith("store"):
            import pymongo

            try:
                c = pymongo.MongoClient(
                    f"mongodb://127.0.0.1:{self.port}/?directConnection=true",
                    serverSelectionTimeoutMS=1000,
                )
                c.admin.command("ping")
                c.close()
                return True
            except Exception:
                return False
        return True


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def servers(which: str | None = None) -> list[Server]:
    all_ = [Server("broker", kafka_port()), Server("store", mongo_port())]
    all_ += [Server(f"store-{name}", port) for name, port in own_store_ports().items()]
    return [s for s in all_ if which in (None, s.name)]


def start(which: str | None = None, timeout: float = 60.0) -> None:
    for server in servers(which):
        if server.pid() and server.answering():
            print(f"{server.name}: already running (pid {server.pid()}, port {server.port})")
            continue
        if port_open(server.port):
            raise SystemExit(f"{server.name}: port {server.port} is taken by another process")
        server.datadir.mkdir(parents=True, exist_ok=True)
        server.logfile.parent.mkdir(parents=True, exist_ok=True)
        with open(server.logfile, "ab") as out:
            proc = subprocess.Popen(
                server.command(),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=run_dir(),
            )
        server.pidfile.write_text(str(proc.pid))
        deadline = time.monotonic() + timeout
        while not server.answering():
            if proc.poll() is not None:
                raise SystemExit(f"{server.name} exited ({proc.returncode}); see {server.logfile}")
            if time.monotonic() > deadline:
                raise SystemExit(f"{server.name} did not answer on {server.port} in {timeout}s")
            time.sleep(0.1)
        print(f"{server.name}: started (pid {proc.pid}, 127.0.0.1:{server.port})")


def stop(which: str | None = None, timeout: float = 30.0) -> None:
    for server in servers(which):
        pid = server.pid()
        if pid is None:
            server.pidfile.unlink(missing_ok=True)
            print(f"{server.name}: not running")
            continue
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while server.pid() is not None and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.1)
        if server.pid() is not None:
            print(f"{server.name}: did not stop on SIGTERM in {timeout}s; sending SIGKILL")
            os.kill(pid, signal.SIGKILL)
        server.pidfile.unlink(missing_ok=True)
        print(f"{server.name}: stopped (pid {pid})")


def kill(which: str) -> None:
    """SIGKILL, for fault tests."""
    for server in servers(which):
        pid = server.pid()
        if pid:
            os.kill(pid, signal.SIGKILL)
            while server.pid() is not None:
                _reap(pid)
                time.sleep(0.05)
            server.pidfile.unlink(missing_ok=True)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def status() -> int:
    code = 0
    for server in servers():
        pid = server.pid()
        ok = pid is not None and server.answering()
        code |= 0 if ok else 1
        print(f"{server.name}: {'running' if ok else 'down'} pid={pid} port={server.port}")
    return code


WHICH = click.argument("which", required=False, type=click.Choice([s.name for s in servers()]))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """The local broker and store (both, or the one named)."""


@cli.command("start")
@WHICH
def start_command(which: str | None) -> None:
    """Start them (a server already answering is left alone)."""
    start(which)


@cli.command("stop")
@WHICH
def stop_command(which: str | None) -> None:
    """Stop them by PID (SIGTERM)."""
    stop(which)


@cli.command("restart")
@WHICH
def restart_command(which: str | None) -> None:
    """Stop, then start."""
    stop(which)
    start(which)


@cli.command("status")
def status_command() -> None:
    """Show each server's PID and port; exit 1 if one is down."""
    sys.exit(status())


if __name__ == "__main__":
    cli(prog_name="python -m deploy.local.infra")
