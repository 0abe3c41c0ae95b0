"""The dependency locks (requirements.txt, requirements-dev.txt, written by `make lock` from
the .in files): every package pinned with its hashes, each direct requirement locked at the
version the .in file names, development on the same versions as production, and the local
stand-in servers only in development."""

from __future__ import annotations

import re

from tests.ops.deployfiles import ROOT

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)")


def _name(raw: str) -> str:
    return re.sub(r"[-_.]+", "-", raw).lower()


def direct(path: str) -> dict[str, str]:
    """`name==version` lines of a .in file (extras dropped), by normalised name."""
    out = {}
    for line in (ROOT / path).read_text().splitlines():
        found = PIN.match(line.strip())
        if found:
            out[_name(found.group(1))] = found.group(3)
    return out


def locked(path: str) -> dict[str, tuple[str, int]]:
    """Each package of a lock file: (version, number of hashes)."""
    out: dict[str, tuple[str, int]] = {}
    current = None
    for line in (ROOT / path).read_text().splitlines():
        found = PIN.match(line)
        if found:
            current = _name(found.group(1))
            out[current] = (found.group(3), 0)
        elif current and line.strip().startswith("--hash=sha256:"):
            version, hashes = out[current]
            out[current] = (version, hashes + 1)
    return out


def test_every_package_is_pinned_with_its_hashes():
    for lock in ("requirements.txt", "requirements-dev.txt"):
        packages = locked(lock)
        assert len(packages) > 30, lock
        unhashed = [name for name, (_, hashes) in packages.items() if hashes == 0]
        assert unhashed == [], f"{lock}: no hashes for {unhashed}"


def test_each_direct_requirement_is_locked_at_its_version():
    for source, lock in (
        ("requirements.in", "requirements.txt"),
        ("requirements-dev.in", "requirements-dev.txt"),
    ):
        packages = locked(lock)
        for name, version in direct(source).items():
            assert name in packages, f"{name} of {source} is missing from {lock}: make lock"
            assert packages[name][0] == version, f"{name}: {source} says {version}: make lock"


def test_development_runs_the_versions_production_runs():
    runtime, dev = locked("requirements.txt"), locked("requirements-dev.txt")
    assert {n: v for n, (v, _) in runtime.items()} == {n: dev[n][0] for n in runtime if n in dev}
    assert set(runtime) <= set(dev)


def test_the_local_stand_in_servers_are_for_development_only():
    stand_ins = {"noida-db", "secantusdb"}
    assert stand_ins <= set(locked("requirements-dev.txt"))
    assert not stand_ins & set(locked("requirements.txt"))
