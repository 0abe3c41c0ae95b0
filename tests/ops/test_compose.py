"""docker-compose.yml: valid against the Compose Specification's schema (vendored; these
machines have no Docker engine), real Kafka and MongoDB as the test suite's docker stack
expects them, and every Rapport process run exactly as `make up` runs it."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys

import jsonschema
import pytest

from shared.config import DEFAULT_PORTS
from tests.ops.deployfiles import (
    COMPOSE,
    DEPLOY,
    DEV_SINKS,
    INFRA,
    ONE_OFFS,
    ROOT,
    compose,
    compose_services,
    entrypoint_argv,
    local_commands,
    service_written,
)

SCHEMA = DEPLOY / "schemas" / "compose-spec.json"
SCHEMA_SHA256 = "56bab44c85c0ce8affb74474950293f37d510673283a243bcd7eeadb900fa35c"


def rapport_processes() -> dict:
    """The compose services that `make up` also runs (APIs, relays, consumers, dev sinks)."""
    return {name: svc for name, svc in compose_services().items() if name not in INFRA | ONE_OFFS}


def service_processes() -> dict:
    return {name: svc for name, svc in rapport_processes().items() if name not in DEV_SINKS}


def test_vendored_schema_is_the_recorded_one_and_a_valid_schema():
    raw = SCHEMA.read_bytes()
    assert hashlib.sha256(raw).hexdigest() == SCHEMA_SHA256, "update deploy/schemas/README.md too"
    jsonschema.Draft201909Validator.check_schema(json.loads(raw))


def test_compose_file_is_valid_against_the_compose_specification():
    validator = jsonschema.Draft201909Validator(json.loads(SCHEMA.read_bytes()))
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(compose())
    ]
    assert errors == []


def test_schema_check_catches_a_misspelt_key():
    # the validation above means something: an unknown key is an error
    validator = jsonschema.Draft201909Validator(json.loads(SCHEMA.read_bytes()))
    broken = json.loads(json.dumps(compose()))
    broken["services"]["kafka"]["helthcheck"] = broken["services"]["kafka"].pop("healthcheck")
    assert any("helthcheck" in e.message for e in validator.iter_errors(broken))


@pytest.mark.skipif(not (shutil.which("docker-compose")), reason="docker-compose not installed")
def test_docker_compose_config_accepts_the_file():
    result = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE), "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_images_are_pinned_to_exact_releases():
    services = compose_services()
    assert re.fullmatch(r"apache/kafka:\d+\.\d+\.\d+", services["kafka"]["image"])
    assert re.fullmatch(r"mongo:\d+\.\d+\.\d+", services["mongo"]["image"])


def test_kafka_is_a_kraft_node_reachable_from_the_host_where_the_tests_expect_it():
    kafka = compose_services()["kafka"]
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "127.0.0.1:9092:9092" in kafka["ports"]
    listeners = dict(item.split("://") for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    assert "127.0.0.1:9092" in listeners.values(), (
        "clients on the host are sent back to 127.0.0.1:9092"
    )
    internal = next(v for v in listeners.values() if not v.startswith("127.0.0.1"))
    assert all(
        s["environment"]["RAPPORT_KAFKA_BOOTSTRAP"] == internal
        for s in service_processes().values()
    )
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert kafka["healthcheck"]["test"] and "kafka-data" in " ".join(kafka["volumes"])
    plugin = (ROOT / "testkit" / "plugin.py").read_text()
    assert '"127.0.0.1:9092"' in plugin and "port_open(9092)" in plugin


def test_mongo_is_a_replica_set_rs0_initiated_by_its_health_check():
    mongo = compose_services()["mongo"]
    assert mongo["command"][mongo["command"].index("--replSet") + 1] == "rs0"
    script = " ".join(mongo["healthcheck"]["test"])
    assert "rs.initiate" in script and "_id: 'rs0'" in script and "isWritablePrimary" in script
    # the member is named as containers resolve it; the host connects with directConnection
    assert re.search(r"host: '(\w+):27017'", script).group(1) == "mongo"
    assert "127.0.0.1:27017:27017" in mongo["ports"]
    assert "/data/db" in " ".join(mongo["volumes"])
    plugin = (ROOT / "testkit" / "plugin.py").read_text()
    assert "mongodb://127.0.0.1:27017/?replicaSet=rs0&directConnection=true" in plugin
    assert all(
        "replicaSet=rs0" in s["environment"]["RAPPORT_MONGO_URI"]
        for s in service_processes().values()
    )


def test_the_docker_test_stack_names_services_that_exist():
    plugin = (ROOT / "testkit" / "plugin.py").read_text()
    setup = re.search(r'\["up -d ([\w\s-]+)"\]', plugin).group(1).split()
    assert set(setup) <= set(compose_services())


def test_topics_are_created_once_with_six_partitions_before_anything_uses_them():
    topics = compose_services()["topics"]
    assert topics["command"] == ["topics"] and topics["restart"] == "no"
    assert topics["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert int(topics["environment"]["RAPPORT_TOPIC_PARTITIONS"]) >= 6
    assert int(compose_services()["kafka"]["environment"]["KAFKA_NUM_PARTITIONS"]) >= 6


def test_every_rapport_process_waits_for_healthy_kafka_and_mongo_and_the_topics():
    for name, svc in service_processes().items():
        deps = svc["depends_on"]
        assert deps["kafka"]["condition"] == "service_healthy", name
        assert deps["mongo"]["condition"] == "service_healthy", name
        assert deps["topics"]["condition"] == "service_completed_successfully", name


def test_compose_runs_the_same_processes_as_make_up(monkeypatch):
    local = local_commands(monkeypatch)
    processes = rapport_processes()
    assert set(processes) == set(local), "compose and deploy/local/stack.py run the same processes"
    for name, svc in processes.items():
        assert entrypoint_argv(svc["command"]) == local[name], name


def test_apis_publish_their_port_and_are_health_checked_on_it():
    for name, svc in service_processes().items():
        if not name.endswith("-api"):
            continue
        port = DEFAULT_PORTS[name.removesuffix("-api")]
        assert f"127.0.0.1:{port}:{port}" in svc["ports"], name
        assert f"http://127.0.0.1:{port}/healthz" in " ".join(svc["healthcheck"]["test"]), name
        for other, url_var in ((n, f"RAPPORT_{n.upper()}_URL") for n in DEFAULT_PORTS):
            assert svc["environment"][url_var] == f"http://{other}-api:{DEFAULT_PORTS[other]}"


def test_seed_is_the_make_up_demo_practice_after_every_api_is_healthy(monkeypatch):
    seed = compose_services()["seed"]
    stack = (ROOT / "deploy" / "local" / "stack.py").read_text()
    assert '"-m", "deploy.local.seed"' in stack and '"-m", "shared.run", "topics"' in stack
    assert entrypoint_argv(seed["command"])[1:] == ["-m", "deploy.local.seed"]
    apis = {n for n in local_commands(monkeypatch) if n.endswith("-api")}
    assert {n for n, d in seed["depends_on"].items() if d["condition"] == "service_healthy"} == apis
    assert seed["restart"] == "no"


def test_seed_module_exists_once_written():
    if not (ROOT / "deploy" / "local" / "seed.py").exists():
        pytest.skip("deploy/local/seed.py (the demo practice) is not written yet")
    result = subprocess.run(
        [sys.executable, "-c", "import deploy.local.seed as s; assert callable(s.main)"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_containers_are_locked_down():
    for name, svc in compose_services().items():
        if name in INFRA:
            continue
        assert svc["read_only"] is True and "/tmp" in svc["tmpfs"], name
        assert svc["cap_drop"] == ["ALL"], name


@pytest.fixture(scope="module")
def imported_services(tmp_path_factory) -> dict:
    """Import every written service's wsgi module and load its definition, each in a fresh
    process, side by side, with demo settings and unreachable servers, and with
    PROMETHEUS_MULTIPROC_DIR set as the entry point sets it for every API (without it,
    registering the metrics collector reads the store at start-up and waits for it)."""
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "RAPPORT_DEMO_MODE": "1",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path_factory.mktemp("prometheus")),
        "RAPPORT_MONGO_URI": "mongodb://127.0.0.1:9/?directConnection=true",
        "RAPPORT_KAFKA_BOOTSTRAP": "127.0.0.1:9",
    }
    running = {}
    for service in (s for s in DEFAULT_PORTS if service_written(s)):
        check = (
            f"import services.{service}.wsgi as w; assert callable(w.app), 'no wsgi app'\n"
            "from shared import services\n"
            f"if '{service}' != 'portal':\n"
            f"    d = services.load('{service}'); assert d.name == '{service}'\n"
            "    assert all(p.name for p in d.projections())\n"
        )
        running[service] = subprocess.Popen(
            [sys.executable, "-c", check],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    return {
        service: (proc.wait(timeout=120), proc.communicate()[1])
        for service, proc in running.items()
    }


@pytest.mark.parametrize("service", sorted(DEFAULT_PORTS))
def test_each_service_in_compose_exists_in_the_code(service, imported_services):
    if not service_written(service):
        pytest.skip(f"services/{service}/wsgi.py is not written yet")
    code, stderr = imported_services[service]
    assert code == 0, stderr[-2000:]


def test_dev_sinks_share_the_network_of_the_process_that_sends_mail():
    # the sinks bind 127.0.0.1 only, so they live in notifications-consumers' namespace
    consumers = compose_services()["notifications-consumers"]
    assert consumers["environment"]["RAPPORT_SMTP_HOST"] == "127.0.0.1"
    assert consumers["environment"]["RAPPORT_SMS_URL"].startswith("http://127.0.0.1:8026/")
    for sink in DEV_SINKS:
        svc = compose_services()[sink]
        assert svc["network_mode"] == "service:notifications-consumers"
        assert svc["environment"]["RAPPORT_RUN_DIR"].startswith("/tmp/"), "the root fs is read-only"
