"""`python -m shared.run` as a person types it: a wrong service or projection is named in a
usage error (exit 2, nothing done), and the one-off commands print what they did."""

from __future__ import annotations

import pytest
from click.testing import CliRunner, Result

from shared.run import cli


@pytest.fixture
def run(settings, monkeypatch):
    for name, value in {
        "RAPPORT_DEMO_MODE": "true",
        "RAPPORT_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "RAPPORT_MONGO_URI": settings.mongo_uri,
        "RAPPORT_DB_PREFIX": settings.db_prefix,
        "RAPPORT_TOPIC_PREFIX": settings.topic_prefix,
        "RAPPORT_TOPIC_PARTITIONS": str(settings.topic_partitions),
    }.items():
        monkeypatch.setenv(name, value)

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, list(args))

    return invoke


def test_an_unknown_service_or_projection_is_a_usage_error(run):
    result = run("rebuild", "billingz", "clients")
    assert result.exit_code == 2 and "no service 'billingz'" in result.stderr
    result = run("redrive", "records", "no_such_view")
    assert result.exit_code == 2 and "records has no projection 'no_such_view'" in result.stderr


def test_topics_then_a_dry_run_reconcile_counts_and_publishes_nothing(run, settings):
    assert run("topics").exit_code == 0
    result = run("reconcile", "records", "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"{settings.topic('records')}: 0 events missing from the topic"


def test_redrive_with_nothing_parked_applies_nothing(run):
    result = run("redrive", "records", "client_summaries")
    assert result.exit_code == 0, result.output
    assert "client_summaries: 0 parked records applied, 0 still parked" in result.stdout


def test_a_rebuild_gives_way_to_the_services_and_swaps_its_generation_in(run, monkeypatch):
    """The rebuild command lowers its own CPU priority (it would renice this test's process,
    so the call is recorded instead), settles its heap (shared.heap; recorded too: it would
    freeze this test process's) and rebuilds on the real broker and store."""
    niced: list[int] = []
    settled: list[str] = []
    monkeypatch.setattr("shared.run.os.nice", niced.append)
    monkeypatch.setattr("shared.run.heap.settle", lambda: settled.append("settled"))
    result = run("rebuild", "records", "client_summaries")
    assert result.exit_code == 0, result.output
    assert niced == [10] and settled == ["settled"]
    assert "client_summaries: generation 2 is now active" in result.stdout


def test_a_relay_and_a_consumer_settle_their_heap_once_started_and_before_their_loops(
    run, monkeypatch
):
    """Each long-running process keeps what it built at start out of the garbage collector's
    full passes (shared.heap) after building it and before its loops run: the order of the
    calls is recorded, and the loops are not run."""
    calls: list[str] = []
    monkeypatch.setattr("shared.run.heap.settle", lambda: calls.append("settle"))
    monkeypatch.setattr(
        "shared.run.OutboxRelay.run", lambda self, stop: calls.append(f"relay {self.topic}")
    )
    monkeypatch.setattr(
        "shared.run.run_threads", lambda loops, stop: calls.append(f"{len(loops)} loops")
    )
    assert run("relay", "records").exit_code == 0
    result = run("consume", "records")
    assert result.exit_code == 0, result.output
    assert calls[0] == "settle" and calls[1].startswith("relay ") and calls[1].endswith("records")
    assert calls[2] == "settle" and calls[3].endswith(" loops") and calls[3] != "0 loops"
    assert len(calls) == 4, calls
