"""The image (deploy/Dockerfile, .dockerignore) and its entry point, checked without Docker."""

from __future__ import annotations

import re
import subprocess

import pytest

from shared.config import DEFAULT_PORTS, SERVICES
from shared.services import SERVICE_NAMES
from tests.ops.deployfiles import DEPLOY, ENTRYPOINT, ROOT, entrypoint, entrypoint_argv

DOCKERFILE = (DEPLOY / "Dockerfile").read_text()


def instructions(keyword: str) -> list[str]:
    """The arguments of every Dockerfile instruction `keyword` (continuation lines joined)."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [
        line.split(None, 1)[1]
        for line in joined.splitlines()
        if line.strip() and line.split(None, 1)[0].upper() == keyword
    ]


def test_base_image_is_python_311_slim_pinned_to_an_exact_release():
    (arg,) = [a for a in instructions("ARG") if a.startswith("PYTHON_IMAGE=")]
    image = arg.split("=", 1)[1]
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?", image), image
    assert all(f.split()[0] == "${PYTHON_IMAGE}" for f in instructions("FROM"))


def test_runs_as_a_fixed_non_root_user_without_healthcheck():
    (user,) = instructions("USER")
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000, "numeric uid so runAsNonRoot can verify it"
    assert instructions("HEALTHCHECK") == [], "orchestrators probe /healthz and /readyz"
    env = " ".join(instructions("ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env


def test_installs_the_locked_runtime_requirements_only():
    run = " ".join(instructions("RUN"))
    assert "requirements-dev" not in run + " ".join(instructions("COPY"))
    assert "pip install --require-hashes --no-deps -r requirements.txt" in run, (
        "exactly the lock: every package hash-checked, nothing resolved at build time"
    )


def test_copies_only_existing_paths_that_dockerignore_keeps():
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for must in (".git", ".venv", ".run", ".env", "tests"):
        assert must in ignored, f".dockerignore must leave out {must}"
    for copy in instructions("COPY"):
        parts = [p for p in copy.split() if not p.startswith("--")]
        if "--from=" in copy:
            continue
        for source in parts[:-1]:
            assert (ROOT / source).exists(), f"COPY {source}: no such path"
            assert source not in ignored and source.split("/")[0] not in ignored, source
    assert instructions("ENTRYPOINT") == ['["/app/deploy/docker-entrypoint.sh"]']


def test_entrypoint_is_committed_executable():
    mode = subprocess.run(
        ["git", "ls-files", "-s", str(ENTRYPOINT.relative_to(ROOT))],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert mode and mode[0] == "100755", mode


@pytest.mark.parametrize("service", SERVICES)
def test_api_runs_gunicorn_on_the_service_port(service):
    argv = entrypoint_argv(["api", service])
    assert argv[1:5] == ["-m", "gunicorn", "-c", str(DEPLOY / "gunicorn.conf.py")]
    assert argv[5:] == [
        "--bind",
        f"127.0.0.1:{DEFAULT_PORTS[service]}",
        f"services.{service}.wsgi:app",
    ]


def test_api_port_follows_the_same_variable_as_make_up():
    argv = entrypoint_argv(["api", "records"], {"RAPPORT_RECORDS_PORT": "9102"})
    assert "127.0.0.1:9102" in argv


def test_consume_takes_the_static_member_index_from_the_environment():
    assert entrypoint_argv(["consume", "measures"], {"RAPPORT_CONSUMER_INSTANCE": "4"})[-2:] == [
        "--instance",
        "4",
    ]
    explicit = entrypoint_argv(
        ["consume", "measures", "--instance", "1"], {"RAPPORT_CONSUMER_INSTANCE": "4"}
    )
    assert explicit.count("--instance") == 1 and explicit[-1] == "1"
    refused = entrypoint(["consume", "measures"], {"RAPPORT_CONSUMER_INSTANCE": "pod-x"})
    assert refused.returncode == 64 and "must be a number" in refused.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["api", "payroll"],
        ["relay", "portal"],
        ["consume", "portal"],
        ["rebuild", "set-me", "set-me"],
        ["rebuild", "records"],
        ["topics", "extra"],
        ["api"],
    ],
)
def test_wrong_command_lines_are_refused_with_a_usage_error(args):
    result = entrypoint(args)
    assert result.returncode == 64, (args, result.stdout)
    assert result.stdout == "" and result.stderr.startswith("docker-entrypoint:")


def test_one_off_commands_and_passthrough():
    py = entrypoint_argv(["topics"])[0]
    assert entrypoint_argv(["topics"]) == [py, "-m", "shared.run", "topics"]
    assert entrypoint_argv(["rebuild", "records", "clients"]) == [
        py,
        "-m",
        "shared.run",
        "rebuild",
        "records",
        "clients",
    ]
    assert entrypoint_argv(["seed"]) == [py, "-m", "deploy.local.seed"]
    assert entrypoint_argv(["python", "-m", "services.notifications.devmail"]) == [
        "python",
        "-m",
        "services.notifications.devmail",
    ]
    assert set(SERVICE_NAMES) | {"portal"} == set(SERVICES)


def test_help_lists_every_command():
    result = entrypoint(["help"])
    assert result.returncode == 0
    for verb in ("api", "relay", "consume", "rebuild", "topics", "seed"):
        assert re.search(rf"^\s*{verb}\b", result.stdout, re.M), verb
