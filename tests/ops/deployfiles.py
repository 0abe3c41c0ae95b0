"""Loading the deployment files for the offline checks in tests/ops: the compose file, the
rendered Kustomize overlays, the entry point's command lines, and the local stack's."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
ENTRYPOINT = DEPLOY / "docker-entrypoint.sh"
COMPOSE = ROOT / "docker-compose.yml"
K8S = DEPLOY / "k8s"
KUBECTL = shutil.which("kubectl")
# Compose services that run something other than a Rapport process of `make up`
ONE_OFFS = {"topics", "seed"}
DEV_SINKS = {"devmail", "devsms"}
INFRA = {"kafka", "mongo"}


@functools.cache
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def compose_services() -> dict:
    return compose()["services"]


@functools.cache
def rendered(overlay: str) -> tuple[dict, ...]:
    """`kubectl kustomize deploy/k8s/<overlay>` as a tuple of documents (kubectl renders
    offline; no cluster is contacted)."""
    result = subprocess.run(
        [KUBECTL, "kustomize", str(K8S / overlay)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return tuple(d for d in yaml.safe_load_all(result.stdout) if d)


def of_kind(docs, *kinds: str) -> list[dict]:
    return [d for d in docs if d["kind"] in kinds]


def pod_spec(doc: dict) -> dict:
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return doc["spec"]["template"]["spec"]


def entrypoint(args: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the image's entry point in dry-run mode: it prints the command it would exec,
    one argument per line. PYTHON and the bind host are set to what `make up` uses, so the
    output is comparable with deploy/local/stack.py's command lines."""
    base = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "RAPPORT_ENTRYPOINT_DRY_RUN": "1",
        "PYTHON": sys.executable,
        "RAPPORT_BIND_HOST": "127.0.0.1",
    }
    return subprocess.run(
        ["sh", str(ENTRYPOINT), *args],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=30,
    )


def entrypoint_argv(args: list[str], env: dict | None = None) -> list[str]:
    result = entrypoint(args, env)
    assert result.returncode == 0, f"entry point refused {args}: {result.stderr}"
    return result.stdout.splitlines()


def local_commands(monkeypatch) -> dict[str, list[str]]:
    """{process name: command line} that `make up` runs, for every service — whether or not
    its package is written yet (stack.py lists only services that have a wsgi.py)."""
    from deploy.local import stack
    from shared.config import SERVICES

    monkeypatch.setattr(stack, "available_services", lambda: list(SERVICES))
    return {name: command for name, command, _ in stack.processes()}


def service_written(name: str) -> bool:
    return (ROOT / "services" / name / "wsgi.py").exists()
