"""Process entry points (`python -m shared.run ...`, a click group, one function per
command): the outbox relay, the projection consumers and the service's other loops, a
projection rebuild or redrive, a topic reconciliation, topic creation, and the master-key
rotation. Kafka
clients are created here, in the process that uses them, never before a fork."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable

import click

from . import (
    contracts,  # noqa: F401  (every process knows the whole published language)
    heap,
    logs,
    services,
)
from .config import Settings
from .consumer import ProjectionRunner, RebuildStopped, runner_groups
from .consumer import rebuild as rebuild_projection
from .consumer import redrive as redrive_parked
from .events import registry
from .eventstore import EventStore
from .kafka import ensure_topics
from .mongo import client as mongo_client
from .outbox import OutboxRelay
from .outbox import reconcile as reconcile_topic
from .projections import Projection

log = logging.getLogger("rapport.run")


def stop_on_signals() -> threading.Event:
    """SIGTERM/SIGINT set `stop`. The handler runs in the main thread between two bytecodes,
    possibly while that thread holds the very lock `stop.set()` (or a logging handler) needs
    — inside `stop.wait()` — which deadlocked processes on SIGTERM (seen: a consumer process
    that ignored three SIGTERMs). So the handler only hands the work to a new thread."""
    stop = threading.Event()

    def handler(signum, frame):
        threading.Thread(target=_stop, args=(stop, signum), daemon=True).start()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def _stop(stop: threading.Event, signum: int) -> None:
    log.info("signal %s: stopping", signum)
    stop.set()


def make_relay(settings: Settings, service: str) -> OutboxRelay:
    # its indexes are made by the relay's loop, which waits for a store that is down
    store = EventStore(
        mongo_client(settings.mongo_uri_of(service)), settings.database(service), registry
    )
    return OutboxRelay(
        store,
        settings.kafka_bootstrap,
        settings.topic(service),
        partitions=settings.topic_partitions,
    )


def run_threads(loops: Iterable[Callable[[threading.Event], None]], stop: threading.Event) -> None:
    threads = [
        threading.Thread(
            target=loop, args=(stop,), name=getattr(loop, "__qualname__", "loop"), daemon=True
        )
        for loop in loops
    ]
    for t in threads:
        t.start()
    while not stop.is_set():
        stop.wait(0.5)
        if not stop.is_set() and not all(t.is_alive() for t in threads):
            log.error("a worker thread died; stopping the process so it is restarted")
            stop.set()
            for t in threads:
                t.join(timeout=30)
            sys.exit(1)
    for t in threads:
        t.join(timeout=30)


def _service(service: str) -> tuple[Settings, services.ServiceDefinition]:
    """The settings from the environment and a service's definition, logging as it."""
    settings = Settings.from_env()
    logs.configure(service)
    try:
        return settings, services.load(service)
    except ModuleNotFoundError as err:
        if err.name != f"services.{service}":
            raise
        raise click.BadParameter(f"no service {service!r}", param_hint="SERVICE") from None


def _projection(definition: services.ServiceDefinition, name: str) -> Projection:
    found = next((p for p in definition.projections() if p.name == name), None)
    if found is None:
        raise click.BadParameter(
            f"{definition.name} has no projection {name!r}", param_hint="PROJECTION"
        )
    return found


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Rapport's process entry points and one-off operations."""


@cli.command()
@click.argument("service")
def relay(service: str) -> None:
    """Publish the service's outbox to its topic."""
    settings, _ = _service(service)
    publisher = make_relay(settings, service)
    heap.settle()
    publisher.run(stop_on_signals())


@cli.command()
@click.argument("service")
@click.option("--projection", "wanted", multiple=True, help="Only these projections.")
@click.option("--instance", type=int, default=0, help="Index for static group membership.")
@click.option("--no-loops", is_flag=True, help="Projections only.")
def consume(service: str, wanted: tuple[str, ...], instance: int, no_loops: bool) -> None:
    """Run the service's projections (and its other loops)."""
    settings, definition = _service(service)
    stop = stop_on_signals()
    projections = [
        p
        for p in definition.projections() + definition.kernel_projections()
        if not wanted or p.name in wanted
    ]
    # the projections that apply at once share a runner: one fetch and one transaction per
    # batch for all of them (shared.consumer.runner_groups)
    loops = [
        ProjectionRunner(settings, group, instance=instance).run
        for group in runner_groups(projections)
    ]
    if not no_loops and not wanted:
        loops += definition.workers(settings) + definition.kernel_workers(settings)
    if not loops:
        log.error("nothing to run for %s", service)
        sys.exit(2)
    heap.settle()
    run_threads(loops, stop)


# how much lower than the services' a rebuild's CPU priority is (`nice`)
REBUILD_NICENESS = 10


@cli.command()
@click.argument("service")
@click.argument("projection")
def rebuild(service: str, projection: str) -> None:
    """Rebuild a projection into a new generation and swap it in."""
    from tqdm import tqdm

    settings, definition = _service(service)
    chosen = _projection(definition, projection)
    # it gives way to the services when the machine is busy (a rebuild writes as fast as the
    # store takes it, two threads of it since its batches overlap: shared.projections.Ahead),
    # and runs at full speed when it is not: a risk alert matters more than the rebuild
    os.nice(REBUILD_NICENESS)
    bar = tqdm(unit="event", desc=f"rebuild {projection}")

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    # SIGTERM or Ctrl-C ends it between two batches, never inside a transaction: the new
    # generation is dropped and the old one still serves (a rebuild killed mid-transaction
    # left it half-built and, on the local store, a transaction open)
    stop = stop_on_signals()
    heap.settle()
    try:
        generation = rebuild_projection(settings, chosen, progress=progress, stop=stop)
    except RebuildStopped as stopped:
        bar.close()
        raise click.ClickException(
            f"{stopped}; the generation it was building was dropped"
        ) from stopped
    bar.close()
    click.echo(f"{projection}: generation {generation} is now active")


@cli.command()
@click.argument("service")
@click.argument("projection")
def redrive(service: str, projection: str) -> None:
    """Apply a projection's parked (dead-lettered) records again."""
    settings, definition = _service(service)
    applied, still = redrive_parked(settings, _projection(definition, projection))
    click.echo(f"{projection}: {applied} parked records applied, {still} still parked")
    sys.exit(0 if still == 0 else 1)


@cli.command()
@click.argument("service")
@click.option("--dry-run", is_flag=True, help="Only count; publish nothing.")
def reconcile(service: str, dry_run: bool) -> None:
    """Publish again events marked published but missing from the topic."""
    settings, _ = _service(service)
    relay = make_relay(settings, service)
    topic = settings.topic(service)
    missing = reconcile_topic(relay.store, settings.kafka_bootstrap, topic, republish=not dry_run)
    click.echo(
        f"{topic}: {len(missing)} events missing from the topic"
        + ("" if dry_run else ", published again")
    )


@cli.command()
def topics() -> None:
    """Create every service's topic."""
    settings = Settings.from_env()
    logs.configure("rapport")
    ensure_topics(
        settings.kafka_bootstrap,
        [settings.topic(s) for s in services.SERVICE_NAMES],
        settings.topic_partitions,
    )


@cli.command("rewrap-keys")
def rewrap_keys_command() -> None:
    """Wrap every client key under RAPPORT_MASTER_KEY_NEW (master-key rotation; services
    stopped). RAPPORT_MASTER_KEY is the key in use."""
    import os
    from dataclasses import replace

    from .config import ConfigError
    from .crypto import rewrap_keys

    settings = Settings.from_env()
    logs.configure("rapport")
    new = os.environ.get("RAPPORT_MASTER_KEY_NEW", "")
    if not new:
        raise click.UsageError(
            "set RAPPORT_MASTER_KEY_NEW (32 random bytes, base64) to the new master key"
        )
    try:
        replace(settings, master_key=new).check()  # base64, 32 bytes, not the demo key
    except ConfigError as err:
        raise click.UsageError(f"RAPPORT_MASTER_KEY_NEW: {err}") from None
    keys = settings.database("keys")
    mongo = mongo_client(settings.mongo_uri_of("keys"))
    counts = rewrap_keys(mongo, keys, settings.master_key, new)
    click.echo(
        f"{keys}: {counts['rewrapped']} keys wrapped under the new master key, "
        f"{counts['already']} were already, {counts['disposed']} disposed (nothing to wrap). "
        "Now set RAPPORT_MASTER_KEY to the new key everywhere and start the services."
    )


if __name__ == "__main__":
    cli(prog_name="python -m shared.run")
