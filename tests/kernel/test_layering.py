"""The layers depend one way: the kernel (shared/) on nothing of the project; services on the
kernel; deploy on both; the test and bench support (testkit/) on all three; the tests and
the benchmarks on testkit but never on each other. Read from the source with `ast`, so a
lazy import inside a function counts too."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("shared", "services", "deploy", "testkit", "bench", "tests")

# What each layer may import of the project (besides itself).
ALLOWED = {
    "shared": set(),
    "services": {"shared"},
    "deploy": {"shared", "services"},
    "testkit": {"shared", "services", "deploy"},
    "bench": {"shared", "services", "deploy", "testkit"},
    "tests": {"shared", "services", "deploy", "testkit"},
}


def layer(path: Path, root: Path) -> str:
    """A module's layer; a service's own tests (services/*/tests) count as tests."""
    parts = path.relative_to(root).parts
    if parts[0] == "services" and "tests" in parts:
        return "tests"
    return parts[0]


def imported(path: Path, root: Path) -> set[str]:
    """The dotted names a module imports, relative imports resolved against its package."""
    package = path.relative_to(root).with_suffix("").parts[:-1]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                names.add(".".join([*base, node.module] if node.module else base))
            elif node.module:
                names.add(node.module)
    return names


def violations(root: Path = ROOT) -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            own = layer(path, root)
            for name in sorted(imported(path, root)):
                top = name.split(".")[0]
                if top in PACKAGES and top != own and top not in ALLOWED[own]:
                    found.append(f"{path.relative_to(root)} ({own}) imports {name}")
    return found


def test_no_layer_imports_one_above_it():
    assert violations() == []


def test_the_rule_sees_lazy_and_relative_imports(tmp_path):
    """The checker itself: an import inside a function and a relative import both count."""
    (tmp_path / "shared" / "sub").mkdir(parents=True)
    (tmp_path / "shared" / "sub" / "a.py").write_text(
        "def f():\n    from deploy.local import infra\n"
    )
    (tmp_path / "shared" / "sub" / "c.py").write_text("from ...tests import helpers\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "b.py").write_text("from bench.common import x\n")
    for package in ("services", "deploy", "testkit", "bench"):
        (tmp_path / package).mkdir()
    assert violations(tmp_path) == [
        "shared/sub/a.py (shared) imports deploy.local",
        "shared/sub/c.py (shared) imports tests",
        "tests/b.py (tests) imports bench.common",
    ]


def test_no_command_line_is_argparse():
    """Command lines are click commands (Flask's own CLI for the apps), one style throughout."""
    users = [
        str(path.relative_to(ROOT))
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if "argparse" in imported(path, ROOT)
    ]
    assert users == []
