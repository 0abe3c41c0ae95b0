"""Fixtures every test tier shares: the real broker and store (local processes by default,
the docker-compose stack through pytest-docker with RAPPORT_TEST_STACK=docker), isolated
topic and database prefixes per test, tokens, and background workers."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from contextlib import contextmanager

import pytest

from deploy.local import infra as local
from shared.auth import issue_token
from shared.config import Settings
from shared.eventstore import forget_append_locks
from shared.mongo import client as mongo_client

STACK = os.environ.get("RAPPORT_TEST_STACK", "local")
# The tests (with `make up`) are the only runs in demo mode; the processes they start inherit
# it. Unset, every service refuses to start without its own secrets (shared/config.py).
os.environ.setdefault("RAPPORT_DEMO_MODE", "1")


@pytest.fixture(scope="session")
def infra(request):
    """(kafka bootstrap, mongo uri) of a running broker and store."""
    if STACK == "docker":
        docker_services = request.getfixturevalue("docker_services")
        kafka, mongo = (
            "127.0.0.1:9092",
            "mongodb://127.0.0.1:27017/?replicaSet=rs0&directConnection=true",
        )
        docker_services.wait_until_responsive(
            timeout=180, pause=1, check=lambda: local.port_open(9092) and local.port_open(27017)
        )
        yield kafka, mongo
        return
    already = all(s.pid() and s.answering() for s in local.servers())
    local.start()
    yield (
        f"127.0.0.1:{local.kafka_port()}",
        local.mongo_uri(),
    )
    if not already and not os.environ.get("RAPPORT_KEEP_INFRA"):
        local.stop()


@pytest.fixture(scope="session")
def own_stores(infra) -> dict[str, str]:
    """{database name: its own store's URI}, as `make up` runs them (deploy/local/infra.py:
    notifications and measures on stores of their own); none on the docker-compose stack's one
    MongoDB."""
    return {} if STACK == "docker" else local.mongo_uris()


@pytest.fixture(scope="session")
def docker_compose_file(pytestconfig):
    return os.path.join(str(pytestconfig.rootpath), "docker-compose.yml")


@pytest.fixture(scope="session")
def docker_setup():
    return ["up -d kafka mongo"]


@pytest.fixture
def settings(infra, own_stores) -> Iterable[Settings]:
    """Settings isolated for one test: its own topics and databases on the shared servers
    (a database with a store of its own there, as in `make up`: `own_stores`)."""
    kafka, mongo = infra
    tag = uuid.uuid4().hex[:10]
    s = Settings(
        kafka_bootstrap=kafka,
        mongo_uri=mongo,
        mongo_uris=dict(own_stores),
        topic_prefix=f"t{tag}.rapport.",
        db_prefix=f"t{tag}_",
        topic_partitions=3,
        demo_mode=True,
        key_cache_seconds=1.0,  # a disposal's sweep waits this long after the key goes
    )
    yield s
    for uri in s.store_uris():
        _drop_databases(uri, s.db_prefix)


def _drop_databases(mongo: str, prefix: str, attempts: int = 5) -> None:
    """Drop a test's databases; on a machine under heavy load the store can miss a reply,
    so try again before leaving them behind (they are isolated by prefix anyway)."""
    from pymongo.errors import PyMongoError

    for attempt in range(attempts):
        try:
            client = mongo_client(mongo)
            for name in client.list_database_names():
                if name.startswith(prefix):
                    client.drop_database(name)
            forget_append_locks(prefix)
            return
        except PyMongoError:
            time.sleep(1 + attempt)
    import warnings

    warnings.warn(f"could not drop the databases prefixed {prefix}", stacklevel=2)


@pytest.fixture
def make_token(settings) -> Callable[..., str]:
    def make(
        role: str = "clinical_lead",
        *,
        sub: str | None = None,
        therapist_id: str | None = None,
        ttl_seconds: int = 600,
    ) -> str:
        return issue_token(
            settings.token_secret,
            sub=sub or f"{role}-user",
            role=role,
            email=f"{role}@rapport.test",
            therapist_id=therapist_id,
            ttl_seconds=ttl_seconds,
        )

    return make


@pytest.fixture
def auth_header(make_token):
    def header(role: str = "clinical_lead", **kwargs) -> dict:
        return {"Authorization": f"Bearer {make_token(role, **kwargs)}"}

    return header


class Workers:
    """Loops (`run(stop)`) on background threads, stopped and joined at the end."""

    def __init__(self):
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self, *loops) -> Workers:
        for loop in loops:
            owner = getattr(loop, "__self__", None)
            name = (
                getattr(getattr(owner, "store", None), "name", None) or type(owner or loop).__name__
            )
            t = threading.Thread(target=loop, args=(self.stop,), daemon=True, name=f"worker:{name}")
            t.start()
            self.threads.append(t)
        return self

    def alive(self) -> dict[str, bool]:
        """Which loops still run (a loop that died shows False), for failure messages."""
        return {t.name: t.is_alive() for t in self.threads}

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)


@pytest.fixture
def workers():
    w = Workers()
    yield w
    w.close()


@contextmanager
def running(*loops):
    w = Workers().start(*loops)
    try:
        yield w
    finally:
        w.close()


def eventually(
    check: Callable[[], object],
    timeout: float = 20.0,
    interval: float = 0.1,
    message: str = "",
    describe: Callable[[], object] | None = None,
):
    """Poll `check` until it returns a truthy value (returned) or fail after `timeout`;
    `describe`, if given, is called on failure and its answer added to the message."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    seen = ""
    if describe is not None:
        try:
            seen = f"; state: {describe()!r}"
        except Exception as err:  # the description must not hide the failure
            seen = f"; state unavailable: {err!r}"
    raise AssertionError(f"not true within {timeout}s: {message or check} (last: {last!r}){seen}")


def service_workers(settings: Settings, service: str, *, relay: bool = True, loops: bool = True):
    """The relay, every projection runner and the extra loops of one service, as callables."""
    from shared import services
    from shared.consumer import ProjectionRunner, runner_groups
    from shared.run import make_relay

    definition = services.load(service)
    out = []
    if relay and definition.publishes:
        out.append(make_relay(settings, service).run)
    out += [
        ProjectionRunner(settings, group).run
        for group in runner_groups(definition.projections() + definition.kernel_projections())
    ]
    if loops:
        out += definition.workers(settings) + definition.kernel_workers(settings)
    return out
