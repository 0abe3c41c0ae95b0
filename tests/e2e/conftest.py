"""End to end: every service as `make up` runs it — gunicorn APIs, outbox relays and
consumers as separate processes on free ports — against the real local broker and store
(topics and databases under a prefix of their own), and headless Debian Chromium driven by
Playwright. Screenshots go to tests/artifacts/ (git-ignored)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from shared.config import mongo_uri_env
from testkit.procs import free_port

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERVICES = ("scheduling", "records", "measures", "notifications", "billing", "portal")
PASSWORD = "e2e-password-not-for-production"


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


class Stack:
    """The processes of one practice; stopped by PID with SIGTERM (then SIGKILL)."""

    def __init__(self, kafka: str, mongo: str, own_stores: dict[str, str]):
        tag = uuid.uuid4().hex[:8]
        self.run_dir = ROOT / ".run" / f"e2e-{tag}"
        (self.run_dir / "logs").mkdir(parents=True, exist_ok=True)
        self.ports = {name: free_port() for name in SERVICES}
        self.urls = {name: f"http://127.0.0.1:{port}" for name, port in self.ports.items()}
        smtp, sms = free_port(), free_port()
        self.db_prefix = f"e2e{tag}_"
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "RAPPORT_KAFKA_BOOTSTRAP": kafka,
            "RAPPORT_MONGO_URI": mongo,
            # a database's own store, as `make up` has it (deploy/local/infra.py)
            **{mongo_uri_env(name): uri for name, uri in own_stores.items()},
            "RAPPORT_TOPIC_PREFIX": f"e2e{tag}.rapport.",
            "RAPPORT_DB_PREFIX": self.db_prefix,
            "RAPPORT_TOPIC_PARTITIONS": "3",
            "RAPPORT_DEMO_MODE": "1",
            "SESSION_COOKIE_SECURE": "0",
            "RAPPORT_RUN_DIR": str(self.run_dir),
            "RAPPORT_WAKE_DIR": str(self.run_dir / "wake"),  # as `make up` (shared.chime)
            "RAPPORT_MEASURES_PUBLIC_URL": self.urls["measures"],
            "RAPPORT_SMTP_PORT": str(smtp),
            "RAPPORT_SMS_URL": f"http://127.0.0.1:{sms}/messages",
            "RAPPORT_SMS_PORT": str(sms),
            "RAPPORT_DEMO_PASSWORD": PASSWORD,
            # the tests read confirmations and links from the client's inbox: a run in the
            # evening must not wait for the end of the practice's quiet hours (21:00-08:00)
            "RAPPORT_QUIET_HOURS": "off",
            "WEB_CONCURRENCY": "1",
            "GUNICORN_THREADS": "8",
            "RAPPORT_PORTAL_BACKEND_TIMEOUT": "90",
            **{f"RAPPORT_{n.upper()}_URL": u for n, u in self.urls.items()},
        }
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def commands(self) -> list[tuple[str, list[str]]]:
        py = sys.executable
        out = []
        if (ROOT / "services" / "notifications" / "devmail.py").exists():
            out.append(
                (
                    "devmail",
                    [
                        py,
                        "-m",
                        "services.notifications.devmail",
                        "--port",
                        self.env["RAPPORT_SMTP_PORT"],
                    ],
                )
            )
        if (ROOT / "services" / "notifications" / "devsms.py").exists():  # texts in run_dir/sms/
            out.append(
                (
                    "devsms",
                    [
                        py,
                        "-m",
                        "services.notifications.devsms",
                        "--port",
                        self.env["RAPPORT_SMS_PORT"],
                    ],
                )
            )
        for name in SERVICES:
            # scheduling's clock can be moved forward by a test (tests/e2e/clock.py)
            app = "tests.e2e.clock:app" if name == "scheduling" else f"services.{name}.wsgi:app"
            out.append(
                (
                    f"{name}-api",
                    [
                        py,
                        "-m",
                        "gunicorn",
                        "-c",
                        str(ROOT / "deploy" / "gunicorn.conf.py"),
                        "--bind",
                        f"127.0.0.1:{self.ports[name]}",
                        # who asked what, how long it took and with which form key: a
                        # failed journey's logs show a request sent twice or a slow one
                        "--access-logfile",
                        "-",
                        "--access-logformat",
                        '%(t)s %(p)s "%(r)s" %(s)s %(M)sms key=%({idempotency-key}i)s',
                        app,
                    ],
                )
            )
            if name != "portal":
                out.append((f"{name}-relay", [py, "-m", "shared.run", "relay", name]))
                out.append((f"{name}-consumers", [py, "-m", "shared.run", "consume", name]))
        return out

    def start(self, timeout: float = 300.0) -> None:
        subprocess.run(
            [sys.executable, "-m", "shared.run", "topics"], env=self.env, cwd=ROOT, check=True
        )
        for name, command in self.commands():
            log = open(self.run_dir / "logs" / f"{name}.log", "ab")
            proc = subprocess.Popen(
                command,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            self.procs.append((name, proc))
        deadline = time.monotonic() + timeout
        for name in SERVICES:
            while not _healthy(self.urls[name] + "/healthz"):
                dead = [n for n, p in self.procs if p.poll() is not None]
                if dead or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"{name} did not start (exited: {dead}); see {self.run_dir}/logs"
                    )
                time.sleep(0.2)

    def shift_clock(self, seconds: float) -> None:
        """Move the scheduling API's clock `seconds` ahead of real time (0: back to now)."""
        from .clock import OFFSET_FILE

        (self.run_dir / OFFSET_FILE).write_text(str(seconds))

    def stop(self) -> None:
        for _, proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for _, proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()

    def seed(self) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "deploy.local.seed"],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=1200,
        )


@pytest.fixture(scope="package")
def stack(infra, own_stores):
    kafka, mongo = infra
    practice = Stack(kafka, mongo, own_stores)
    practice.start()
    yield practice
    practice.stop()
    from shared.eventstore import forget_append_locks
    from shared.mongo import client

    for uri in dict.fromkeys([mongo, *own_stores.values()]):
        c = client(uri)
        for name in c.list_database_names():
            if name.startswith(practice.db_prefix):
                c.drop_database(name)
    forget_append_locks(practice.db_prefix)


@pytest.fixture(scope="package")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (bash deploy/local/ensure-chromium.sh)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


def new_context(browser):
    """A fresh browser context (its own cookies) as the practice's staff have it: desktop
    width, British English, UK time. The caller closes it."""
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, locale="en-GB", timezone_id="Europe/London"
    )
    context.set_default_timeout(60_000)  # a shared 2-core machine can be very slow
    return context


@pytest.fixture
def new_page(browser):
    """`new_page()` -> a page in a fresh context (its own cookies), closed at the end."""
    contexts = []

    def make():
        context = new_context(browser)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def shot(page, name: str) -> Path:
    from playwright.sync_api import Error

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    # A page that has waited behind another (a journey keeps one per person, and the client's
    # phone opens and closes a context) may have no frame drawn yet: Chromium then answers
    # "Unable to capture screenshot" (seen once in 14 journey runs). Bring it to the front,
    # and give it one more frame's time if the first capture still fails.
    page.bring_to_front()
    try:
        page.screenshot(path=str(path), full_page=True)
    except Error as err:
        if "Unable to capture screenshot" not in str(err):
            raise
        page.wait_for_timeout(500)
        page.screenshot(path=str(path), full_page=True)
    return path


AXE = Path(__file__).with_name("vendor") / "axe.min.js"


def accessibility_violations(page, impacts=("serious", "critical")) -> list[dict]:
    """axe-core (vendored, MPL-2.0) run in the page; evaluated through the DevTools protocol,
    so the portal's CSP (no inline scripts) need not be loosened for the test."""
    page.evaluate(AXE.read_text())
    result = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))"
    )
    return [v for v in result if v["impact"] in impacts]
