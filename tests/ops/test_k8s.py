"""Kubernetes manifests: rendered with `kubectl kustomize` (offline), every object validated
against the Kubernetes schemas shipped in the PyPI package kubernetes-validate (strict: unknown
fields are errors), and the shape operators rely on checked."""

from __future__ import annotations

import base64
import functools
import json
import re
import runpy
import subprocess

import kubernetes_validate
import kubernetes_validate.utils
import pytest
import yaml

from shared.config import DEFAULT_PORTS, DEMO_MASTER_KEY, DEMO_TOKEN_SECRET
from tests.ops.deployfiles import (
    DEPLOY,
    KUBECTL,
    entrypoint,
    entrypoint_argv,
    local_commands,
    of_kind,
    pod_spec,
    rendered,
)

pytestmark = pytest.mark.skipif(
    KUBECTL is None, reason="kubectl (renders kustomize offline) not installed"
)
OVERLAYS = ["base", "overlays/production", "overlays/demo"]
REAL = ["base", "overlays/production"]  # no Secret objects, demo mode off
KUBERNETES_VERSION = "1.32"  # the kubectl here; pod-index labels need 1.28 or later
GUNICORN = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))


def is_rapport(container: dict) -> bool:
    """A container of the Rapport image (not the demo's Kafka or MongoDB)."""
    return container["image"].split("@")[0].rsplit(":", 1)[0].rsplit("/", 1)[-1] == "rapport"


def workloads(docs) -> list[dict]:
    return [
        d
        for d in of_kind(docs, "Deployment", "StatefulSet", "CronJob", "Job")
        if is_rapport(pod_spec(d)["containers"][0])
    ]


def containers(doc) -> list[dict]:
    spec = pod_spec(doc)
    return spec.get("initContainers", []) + spec["containers"]


def config(docs) -> dict:
    (cm,) = of_kind(docs, "ConfigMap")
    return cm["data"]


@pytest.fixture(scope="module", autouse=True)
def schemas_read_once():
    """kubernetes-validate reads and parses its ~1 MB definitions file for every object;
    reading each schema file once keeps these tests fast (the validation is unchanged)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            kubernetes_validate.utils,
            "schema_contents",
            functools.cache(kubernetes_validate.utils.schema_contents),
        )
        yield


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_valid_for_kubernetes(overlay):
    docs = rendered(overlay)
    assert len(docs) > 30
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as err:
            where = ".".join(map(str, err.path))
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {where}: {err.message}")


def test_the_validator_rejects_a_misspelt_field():
    deployment = of_kind(rendered("base"), "Deployment")[0]
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_containers_run_exactly_the_local_command_lines(overlay, monkeypatch):
    local = local_commands(monkeypatch)
    seen = set()
    for doc in of_kind(rendered(overlay), "Deployment", "StatefulSet"):
        main, *sidecars = pod_spec(doc)["containers"]
        if not is_rapport(main):
            continue
        name = doc["metadata"]["name"]
        # RAPPORT_CONSUMER_INSTANCE comes from the pod at run time; without it the command is
        # the local one (instance 0), with it `--instance N` is appended (test_image.py)
        assert entrypoint_argv(main["args"]) == local[name], name
        seen.add(name)
        for sidecar in sidecars:  # the demo's dev sinks
            env = {e["name"]: e["value"] for e in sidecar.get("env", [])}
            assert entrypoint_argv(sidecar["args"], env) == local[sidecar["name"]]
            seen.add(sidecar["name"])
    sinks = {"devmail", "devsms"}
    expected = set(local) if overlay.endswith("demo") else set(local) - sinks
    assert seen == expected, "dev sinks only in the demo"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_apis_probe_drain_and_scale(overlay):
    docs = rendered(overlay)
    services = {s["metadata"]["name"]: s for s in of_kind(docs, "Service")}
    hpas = {
        h["spec"]["scaleTargetRef"]["name"]: h for h in of_kind(docs, "HorizontalPodAutoscaler")
    }
    pdbs = {
        p["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        for p in of_kind(docs, "PodDisruptionBudget")
    }
    apis = [d for d in of_kind(docs, "Deployment") if d["metadata"]["name"].endswith("-api")]
    assert {d["metadata"]["name"] for d in apis} == {f"{s}-api" for s in DEFAULT_PORTS}
    for doc in apis:
        name, spec = doc["metadata"]["name"], pod_spec(doc)
        (c,) = spec["containers"]
        port = DEFAULT_PORTS[name.removesuffix("-api")]
        assert c["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        sleep = int(c["lifecycle"]["preStop"]["exec"]["command"][-1])
        assert spec["terminationGracePeriodSeconds"] > sleep + GUNICORN["graceful_timeout"], name
        annotations = doc["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true" and annotations[
            "prometheus.io/port"
        ] == str(port)
        assert services[name]["spec"]["ports"][0]["port"] == port
        assert services[name]["spec"]["selector"] == doc["spec"]["selector"]["matchLabels"]
        assert (
            hpas[name]["spec"]["minReplicas"]
            <= doc["spec"]["replicas"]
            <= hpas[name]["spec"]["maxReplicas"]
        )
        assert name in pdbs
        assert doc["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_one_relay_per_service_and_consumers_within_the_partitions(overlay):
    docs = rendered(overlay)
    partitions = int(config(docs)["RAPPORT_TOPIC_PARTITIONS"])
    relays = [d for d in of_kind(docs, "Deployment") if d["metadata"]["name"].endswith("-relay")]
    assert relays and all(d["spec"]["replicas"] == 1 for d in relays), (
        "extra relays only idle on the lease"
    )
    headless = {
        s["metadata"]["name"]
        for s in of_kind(docs, "Service")
        if s["spec"].get("clusterIP") == "None"
    }
    for sts in (w for w in workloads(docs) if w["kind"] == "StatefulSet"):
        assert 1 <= sts["spec"]["replicas"] <= partitions, sts["metadata"]["name"]
        assert sts["spec"]["serviceName"] in headless
        c = pod_spec(sts)["containers"][0]  # (the demo adds the dev sinks beside it)
        (instance,) = [e for e in c["env"] if e["name"] == "RAPPORT_CONSUMER_INSTANCE"]
        assert (
            instance["valueFrom"]["fieldRef"]["fieldPath"]
            == "metadata.labels['apps.kubernetes.io/pod-index']"
        )
        # shared/run.py joins worker threads for up to 30 s after SIGTERM
        assert pod_spec(sts)["terminationGracePeriodSeconds"] > 30


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_are_non_root_read_only_and_bounded(overlay):
    for doc in workloads(rendered(overlay)):
        spec = pod_spec(doc)
        assert (
            spec["securityContext"]["runAsNonRoot"] is True
            and spec["securityContext"]["runAsUser"] >= 1000
        )
        assert spec["automountServiceAccountToken"] is False
        volumes = {v["name"]: v for v in spec["volumes"]}
        for c in containers(doc):
            where = f"{doc['metadata']['name']}/{c['name']}"
            sc = c["securityContext"]
            assert (
                sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
            ), where
            assert sc["capabilities"]["drop"] == ["ALL"], where
            assert {"cpu", "memory"} <= set(c["resources"]["requests"]) and {
                "cpu",
                "memory",
            } <= set(c["resources"]["limits"]), where
            mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
            assert "emptyDir" in volumes[mounts["/tmp"]], where
            multiproc = next(
                (e["value"] for e in c["env"] if e["name"] == "PROMETHEUS_MULTIPROC_DIR"), None
            )
            if multiproc:
                assert "emptyDir" in volumes[mounts[multiproc]], where


@pytest.mark.parametrize("overlay", REAL)
def test_configuration_and_secrets_are_references(overlay):
    docs = rendered(overlay)
    assert of_kind(docs, "Secret") == [], "Secrets are created in the cluster, never kept here"
    (cm,) = of_kind(docs, "ConfigMap")
    for doc in workloads(docs):
        for c in containers(doc):
            assert c["envFrom"] == [{"configMapRef": {"name": cm["metadata"]["name"]}}]
            env = {e["name"]: e for e in c["env"]}
            for needed in ("RAPPORT_TOKEN_SECRET", "RAPPORT_MASTER_KEY"):
                assert env[needed]["valueFrom"]["secretKeyRef"]["name"] == "rapport-secrets"
            for e in c["env"]:
                if re.search(r"SECRET|PASSWORD|KEY|TOKEN", e["name"]):
                    assert "value" not in e, f"{e['name']} is a literal"
    assert cm["data"]["RAPPORT_DEMO_MODE"] == "false"


def test_portal_gets_its_session_key_from_the_secret():
    (portal,) = [
        d for d in of_kind(rendered("base"), "Deployment") if d["metadata"]["name"] == "portal-api"
    ]
    env = {e["name"]: e for e in pod_spec(portal)["containers"][0]["env"]}
    assert (
        env["RAPPORT_PORTAL_SECRET_KEY"]["valueFrom"]["secretKeyRef"]["key"] == "portal-secret-key"
    )


def test_production_points_at_external_servers_with_a_pinned_image_and_more_replicas():
    base, prod = rendered("base"), rendered("overlays/production")
    data = config(prod)
    assert data["RAPPORT_KAFKA_BOOTSTRAP"] != config(base)["RAPPORT_KAFKA_BOOTSTRAP"]
    assert len(data["RAPPORT_KAFKA_BOOTSTRAP"].split(",")) >= 3
    uri = data["RAPPORT_MONGO_URI"]
    assert "replicaSet=" in uri and "tls=true" in uri and "@" not in uri.split("/?")[0], (
        "no credentials"
    )
    for doc in workloads(prod):
        assert doc["metadata"]["namespace"] == "rapport"
        for c in containers(doc):
            image = c["image"]
            assert re.fullmatch(r"[\w.\-/]+:\d+\.\d+\.\d+(@sha256:[0-9a-f]{64})?", image), image
        if doc["kind"] != "CronJob":
            mounts = {m["name"] for m in pod_spec(doc)["containers"][0]["volumeMounts"]}
            assert "mongo-tls" in mounts, doc["metadata"]["name"]

    def replicas(docs):
        return {
            d["metadata"]["name"]: d["spec"]["replicas"]
            for d in of_kind(docs, "Deployment", "StatefulSet")
        }

    for name, count in replicas(base).items():
        if not name.endswith("-relay"):
            assert replicas(prod)[name] > count, name


def test_rebuild_job_template_runs_the_rebuild_command_and_refuses_placeholders():
    (cron,) = of_kind(rendered("overlays/production"), "CronJob")
    assert cron["spec"]["suspend"] is True, "it is a template; it never runs on a schedule"
    (c,) = pod_spec(cron)["containers"]
    env = {e["name"]: e.get("value") for e in c["env"]}

    def expand(args, values):
        return [re.sub(r"\$\((\w+)\)", lambda m: values[m.group(1)], a) for a in args]

    refused = entrypoint(expand(c["args"], env))
    assert refused.returncode == 64, "unset placeholders must not start a rebuild"
    argv = entrypoint_argv(
        expand(c["args"], {**env, "REBUILD_SERVICE": "records", "REBUILD_PROJECTION": "clients"})
    )
    assert argv[1:] == ["-m", "shared.run", "rebuild", "records", "clients"]
    assert pod_spec(cron)["restartPolicy"] == "Never"


def test_demo_runs_its_own_kafka_and_mongo_with_the_public_demo_secrets_only():
    docs = rendered("overlays/demo")
    data = config(docs)
    assert data["RAPPORT_DEMO_MODE"] == "true"
    (secret,) = of_kind(docs, "Secret")
    values = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert values == {
        "token-secret": DEMO_TOKEN_SECRET,
        "master-key": DEMO_MASTER_KEY,
        "portal-secret-key": "",
    }
    infra = {
        d["metadata"]["name"]: d
        for d in of_kind(docs, "StatefulSet")
        if not is_rapport(pod_spec(d)["containers"][0])
    }
    assert set(infra) == {"kafka", "mongo"}
    kafka_env = {e["name"]: e["value"] for e in pod_spec(infra["kafka"])["containers"][0]["env"]}
    assert (
        kafka_env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{data['RAPPORT_KAFKA_BOOTSTRAP']}"
    )
    mongo = pod_spec(infra["mongo"])["containers"][0]
    assert "rs.initiate" in " ".join(mongo["readinessProbe"]["exec"]["command"])
    assert "replicaSet=rs0" in data["RAPPORT_MONGO_URI"]
    (seed,) = of_kind(docs, "Job")
    assert entrypoint_argv(pod_spec(seed)["containers"][0]["args"])[1:] == [
        "-m",
        "deploy.local.seed",
    ]


def test_the_rebuild_runbook_sets_the_projection_on_a_job_made_from_the_template():
    """deploy/README.md: `kubectl create job --from=cronjob/...` (needs a cluster) then
    `kubectl set env --local` (offline, run here) fills in the service and projection."""
    (cron,) = of_kind(rendered("overlays/production"), "CronJob")
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "rebuild-records-1"},
        "spec": cron["spec"]["jobTemplate"]["spec"],
    }
    result = subprocess.run(
        [
            KUBECTL,
            "set",
            "env",
            "--local",
            "-f",
            "-",
            "-c",
            "rebuild",
            "REBUILD_SERVICE=records",
            "REBUILD_PROJECTION=clients",
            "-o",
            "yaml",
        ],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    (c,) = pod_spec(yaml.safe_load(result.stdout))["containers"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    args = [re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], a) for a in c["args"]]
    assert entrypoint_argv(args)[1:] == ["-m", "shared.run", "rebuild", "records", "clients"]
    readme = (DEPLOY / "README.md").read_text()
    assert (
        "--from=cronjob/rebuild-projection" in readme
        and "set env --local -f - -c rebuild" in readme
    )
