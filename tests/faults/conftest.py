"""Fixtures of the fault cases: child processes stopped at the end whatever happens, and the
shared session broker and store always running again before a test returns."""

from __future__ import annotations

import pytest

from testkit.plugin import STACK

LOCAL_ONLY = pytest.mark.skipif(STACK == "docker", reason="stops or kills the local servers by PID")


@pytest.fixture
def procs(tmp_path):
    """Start child processes through `procs.add(proc)`; stopped with SIGTERM at teardown (a
    SIGKILL mid-transaction would leave the local store's locks held; see testkit/faults.py)."""

    class Procs(list):
        log_dir = tmp_path / "logs"

        def add(self, proc):
            self.append(proc)
            return proc.start()

    started = Procs()
    yield started
    for proc in started:
        proc.stop(timeout=20)


@pytest.fixture
def servers_restored(infra):
    """Whatever a test did to the broker or the store, they answer again afterwards."""
    from deploy.local import infra as local

    yield local
    local.start()
