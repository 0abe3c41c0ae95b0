"""Real processes for benches and fault tests: gunicorn with the deploy settings, and the
kernel's entry points (`python -m shared.run relay|consume <service>`), each configured
only through the environment, as in production. Started in their own session, stopped by
PID (SIGTERM, or SIGKILL for fault cases) — never by name."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from shared.config import MONGO_URI_OF, Settings, mongo_uri_env

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))


def free_port() -> int:
    """A free TCP port on 127.0.0.1 for a server a test starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def settings_env(settings: Settings, **extra: str) -> dict:
    """The environment that makes `Settings.from_env()` equal to `settings` (prefixes too)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(MONGO_URI_OF)}
    env.update({mongo_uri_env(name): uri for name, uri in settings.mongo_uris.items()})
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "RAPPORT_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "RAPPORT_MONGO_URI": settings.mongo_uri,
            "RAPPORT_TOPIC_PREFIX": settings.topic_prefix,
            "RAPPORT_DB_PREFIX": settings.db_prefix,
            "RAPPORT_TOPIC_PARTITIONS": str(settings.topic_partitions),
            "RAPPORT_DEMO_MODE": "1",
        }
    )
    env.setdefault("RAPPORT_LOG_LEVEL", "WARNING")
    env.update(extra)
    return env


class Proc:
    """One child process; `rss_peak_mib()` reads VmHWM from /proc while it lives."""

    def __init__(self, name: str, argv: list[str], env: dict, log_dir: Path):
        self.name, self.argv, self.env = name, argv, env
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{name}.log"
        self.popen: subprocess.Popen | None = None

    def start(self) -> Proc:
        with open(self.log_path, "ab") as out:
            self.popen = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def rss_peak_mib(self) -> float:
        """Peak resident memory of the process and its children (gunicorn workers)."""
        total = 0.0
        for pid in [self.pid, *child_pids(self.pid)]:
            total += _vmhwm_kib(pid)
        return total / 1024

    def kill(self) -> None:
        """SIGKILL the process (and, for gunicorn, its workers): a crash, no clean-up."""
        if self.alive():
            for pid in child_pids(self.pid):
                _signal(pid, signal.SIGKILL)
            _signal(self.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)

    def stop(self, timeout: float = 30.0) -> None:
        if self.alive():
            _signal(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def child_pids(pid: int) -> list[int]:
    """The direct children of a process (gunicorn's workers), from /proc."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _vmhwm_kib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1])
    except OSError:
        pass
    return 0.0


def worker(
    settings: Settings,
    verb: str,
    service: str,
    *args: str,
    log_dir: Path,
    name: str | None = None,
    env: dict | None = None,
) -> Proc:
    """`python -m shared.run <verb> <service> [args]` as a child process."""
    argv = [PYTHON, "-m", "shared.run", verb, service, *args]
    return Proc(name or f"{verb}-{service}", argv, settings_env(settings, **(env or {})), log_dir)


class Gunicorn(Proc):
    """An app under gunicorn with deploy/gunicorn.conf.py, on a free loopback port."""

    def __init__(
        self,
        app: str,
        settings: Settings,
        *,
        log_dir: Path,
        name: str = "gunicorn",
        workers: int | None = None,
        env: dict | None = None,
    ):
        self.port = free_port()
        extra = {"GUNICORN_BIND": f"127.0.0.1:{self.port}", **(env or {})}
        if workers is not None:
            extra["WEB_CONCURRENCY"] = str(workers)
        argv = [GUNICORN, "-c", str(ROOT / "deploy" / "gunicorn.conf.py"), app]
        super().__init__(name, argv, settings_env(settings, **extra), log_dir)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> Gunicorn:
        super().start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited:\n{self.log_tail()}")
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer in {timeout}s:\n{self.log_tail()}")
