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
    so the call is recorded instead) and rebuilds on the real broker and store."""
    niced: list[int] = []
    monkeypatch.setattr("shared.run.os.nice", niced.append)
    result = run("rebuild", "records", "client_summaries")
    assert result.exit_code == 0, result.output
    assert niced == [10]
    assert "client_summaries: generation 2 is now active" in result.stdout
