"""No secret values in the deployment files: only references (Kubernetes secretKeyRef, compose
`${VAR}`), and the demo values that shared/config.py and the portal refuse outside demo mode."""

from __future__ import annotations

import base64
import math
import re
import subprocess
import sys

import pytest

from shared.config import DEMO_MASTER_KEY, DEMO_TOKEN_SECRET, ConfigError, Settings
from tests.ops.deployfiles import (
    COMPOSE,
    DEPLOY,
    KUBECTL,
    ROOT,
    compose_services,
    of_kind,
    rendered,
)

DEMO_PASSWORD = "rapport-demo"  # the documented demo staff password (architecture.md)
DEMO_VALUES = {DEMO_TOKEN_SECRET, DEMO_MASTER_KEY, DEMO_PASSWORD}
SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|_KEY$|CREDENTIAL", re.I)
PATTERNS = {
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "credentials in a URI": re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:[^@\s/'\"]+@"),
    "JSON web token": re.compile(r"\beyJ[\w-]{10,}\.eyJ[\w-]{10,}\."),
    "AWS access key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36}\b"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
}
# base64 / url-safe runs (padding only at the end, so `key=value` splits in two)
RANDOM_LOOKING = re.compile(r"[A-Za-z0-9+/_-]{24,}={0,2}")


def scanned_files() -> list:
    files = [COMPOSE, ROOT / ".dockerignore"]
    files += [p for p in DEPLOY.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    return files


def entropy(token: str) -> float:
    counts = {c: token.count(c) for c in set(token)}
    return -sum(n / len(token) * math.log2(n / len(token)) for n in counts.values())


def findings(text: str) -> list[str]:
    found = [name for name, pattern in PATTERNS.items() if pattern.search(text)]
    for token in (t.lstrip("-/") for t in RANDOM_LOOKING.findall(text)):
        mixed = (
            re.search(r"[A-Z]", token) and re.search(r"[a-z]", token) and re.search(r"\d", token)
        )
        # generated keys have mixed case and digits and ~4.6+ bits per character; paths and
        # identifiers stay below 4.3
        if mixed and entropy(token) > 4.3 and token not in DEMO_VALUES:
            found.append(f"random-looking value {token[:6]}…")
    return found


@pytest.mark.parametrize("path", scanned_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_file_holds_no_secret_values(path):
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        pytest.fail(f"{path}: binary file in deploy/")
    assert findings(text) == []


def test_the_scanner_finds_planted_secrets():
    planted = [
        "RAPPORT_MONGO_URI=mongodb://rapport:s3cr3t@mongo-1:27017/?replicaSet=rs0",
        "-----BEGIN RSA PRIVATE KEY-----",
        "token: eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJsZWFkIn0.abc",
        "master-key: "
        + base64.b64encode(
            bytes.fromhex("9f3a61c2e07b4d58a1f0c39e7b2d6a4f0c8e5b17d2a94f6e3b70c1d8a25e9f4b")
        ).decode(),
    ]
    for text in planted:
        assert findings(text), text
    assert findings(f"RAPPORT_MASTER_KEY: ${{RAPPORT_MASTER_KEY:-{DEMO_MASTER_KEY}}}") == []


def test_no_key_or_env_files_are_committed():
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True
    ).stdout.split()
    offending = [f for f in tracked if re.search(r"(^|/)\.env(\.|$)|\.(pem|key|p12|pfx|jks)$", f)]
    assert offending == []


def test_compose_secrets_are_references_with_demo_defaults_only():
    # demo mode is never the default (issue 15, #7): only `make up` and the tests turn it on
    assert (
        compose_services()["topics"]["environment"]["RAPPORT_DEMO_MODE"]
        == "${RAPPORT_DEMO_MODE:-false}"
    )
    checked = 0
    for name, svc in compose_services().items():
        for var, value in (svc.get("environment") or {}).items():
            if not SECRET_NAME.search(var):
                continue
            ref = re.fullmatch(r"\$\{(\w+)(?::?-(.*))?\}", str(value))
            assert ref and ref.group(1) == var, f"{name}: {var} must be ${{{var}...}}, not a value"
            assert ref.group(2) in (None, "") or ref.group(2) in DEMO_VALUES, (
                f"{name}: {var} default"
            )
            checked += 1
    assert checked >= 2


def test_the_demo_secrets_are_refused_outside_demo_mode():
    real_key = base64.b64encode(bytes(range(32))).decode()
    with pytest.raises(ConfigError, match="RAPPORT_TOKEN_SECRET"):
        Settings(demo_mode=False, token_secret=DEMO_TOKEN_SECRET, master_key=real_key).check()
    with pytest.raises(ConfigError, match="RAPPORT_MASTER_KEY"):
        Settings(demo_mode=False, token_secret="x" * 40, master_key=DEMO_MASTER_KEY).check()
    Settings(demo_mode=False, token_secret="x" * 40, master_key=real_key).check()


def test_the_portal_refuses_to_start_without_its_key_outside_demo_mode(monkeypatch):
    config = pytest.importorskip("services.portal.config")
    monkeypatch.delenv("RAPPORT_PORTAL_SECRET_KEY", raising=False)
    settings = Settings(
        demo_mode=False, token_secret="x" * 40, master_key=base64.b64encode(bytes(32)).decode()
    )
    with pytest.raises(ConfigError):
        config.PortalConfig.from_env(settings)


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
@pytest.mark.parametrize("overlay", ["base", "overlays/production", "overlays/demo"])
def test_rendered_kubernetes_configuration_holds_no_secrets(overlay):
    docs = rendered(overlay)
    for secret in of_kind(docs, "Secret"):  # the demo's, with the public demo values only
        assert overlay.endswith("demo")
        for value in secret["data"].values():
            assert base64.b64decode(value).decode() in DEMO_VALUES | {""}
    for cm in of_kind(docs, "ConfigMap"):
        for key, value in cm["data"].items():
            assert not SECRET_NAME.search(key), f"{key} belongs in rapport-secrets"
            assert findings(value) == [], key


def test_without_demo_mode_or_secrets_a_process_refuses_to_start_and_says_why(monkeypatch):
    """Issue 15 (#7): with RAPPORT_DEMO_MODE unset the services came up in demo mode and
    accepted tokens signed with the public demo secret. Unset now means off."""
    for name in ("RAPPORT_DEMO_MODE", "RAPPORT_TOKEN_SECRET", "RAPPORT_MASTER_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(
        ConfigError, match="RAPPORT_TOKEN_SECRET and RAPPORT_MASTER_KEY not set"
    ) as err:
        Settings.from_env()
    assert "make up" in str(err.value)
    monkeypatch.setenv("RAPPORT_TOKEN_SECRET", DEMO_TOKEN_SECRET)
    monkeypatch.setenv("RAPPORT_MASTER_KEY", DEMO_MASTER_KEY)
    with pytest.raises(ConfigError, match="RAPPORT_TOKEN_SECRET"):
        Settings.from_env()  # the public demo secret is refused too
    real = base64.b64encode(bytes(range(32))).decode()
    monkeypatch.setenv("RAPPORT_TOKEN_SECRET", "s" * 40)
    monkeypatch.setenv("RAPPORT_MASTER_KEY", real)
    assert Settings.from_env().demo_mode is False
    assert Settings().demo_mode is False, "code that builds Settings() is not in demo mode either"


def test_a_wsgi_module_started_without_secrets_exits_with_the_reason():
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", "import services.records.wsgi"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "RAPPORT_TOKEN_SECRET and RAPPORT_MASTER_KEY not set" in done.stderr


def test_only_make_up_turns_demo_mode_on():
    stack = (ROOT / "deploy" / "local" / "stack.py").read_text()
    assert '"RAPPORT_DEMO_MODE": "1"' in stack
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "${RAPPORT_DEMO_MODE:-false}" in compose and "${RAPPORT_DEMO_MODE:-true}" not in compose
