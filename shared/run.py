"""Process entry points (`python -m shared.run ...`): the outbox relay, the projection
consumers and the service's other loops, a projection rebuild, and topic creation. Kafka
clients are created here, in the process that uses them, never before a fork."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from . import (
    contracts,  # noqa: F401  (every process knows the whole published language)
    logs,
    services,
)
from .config import Settings
from .consumer import ProjectionRunner, rebuild, redrive
from .events import registry
from .eventstore import EventStore
from .kafka import ensure_topics
from .mongo import client as mongo_client
from .outbox import OutboxRelay, reconcile

log = logging.getLogger("rapport.run")


def _stop_on_signals() -> threading.Event:
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
    store = EventStore(mongo_client(settings.mongo_uri), settings.database(service), registry)
    store.ensure_indexes()
    return OutboxRelay(
        store,
        settings.kafka_bootstrap,
        settings.topic(service),
        partitions=settings.topic_partitions,
    )


def run_threads(loops, stop: threading.Event) -> None:
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.run")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("relay", help="publish the service's outbox to its topic")
    p.add_argument("service")
    p = sub.add_parser("consume", help="run the service's projections (and its other loops)")
    p.add_argument("service")
    p.add_argument("--projection", action="append", help="only these projections")
    p.add_argument("--instance", type=int, default=0, help="index for static group membership")
    p.add_argument("--no-loops", action="store_true", help="projections only")
    p = sub.add_parser("rebuild", help="rebuild a projection into a new generation and swap it in")
    p.add_argument("service")
    p.add_argument("projection")
    p = sub.add_parser("redrive", help="apply a projection's parked (dead-lettered) records again")
    p.add_argument("service")
    p.add_argument("projection")
    p = sub.add_parser(
        "reconcile", help="publish again events marked published but missing from the topic"
    )
    p.add_argument("service")
    p.add_argument("--dry-run", action="store_true")
    sub.add_parser("topics", help="create every service's topic")
    sub.add_parser(
        "rewrap-keys",
        help="wrap every client key under RAPPORT_MASTER_KEY_NEW "
        "(master-key rotation; services stopped)",
    )
    args = parser.parse_args(argv)

    settings = Settings.from_env()
    logs.configure(getattr(args, "service", "rapport"))
    if args.command == "topics":
        ensure_topics(
            settings.kafka_bootstrap,
            [settings.topic(s) for s in services.SERVICE_NAMES],
            settings.topic_partitions,
        )
        return 0
    if args.command == "rewrap-keys":
        return _rewrap_keys(settings)
    definition = services.load(args.service)
    if args.command == "relay":
        stop = _stop_on_signals()
        make_relay(settings, args.service).run(stop)
        return 0
    if args.command == "consume":
        stop = _stop_on_signals()
        wanted = set(args.projection or [])
        projections = definition.projections() + definition.kernel_projections()
        loops = [
            ProjectionRunner(settings, p, instance=args.instance).run
            for p in projections
            if not wanted or p.name in wanted
        ]
        if not args.no_loops and not wanted:
            loops += definition.workers(settings) + definition.kernel_workers(settings)
        if not loops:
            log.error("nothing to run for %s", args.service)
            return 2
        run_threads(loops, stop)
        return 0
    if args.command == "reconcile":
        relay = make_relay(settings, args.service)
        missing = reconcile(
            relay.store,
            settings.kafka_bootstrap,
            settings.topic(args.service),
            republish=not args.dry_run,
        )
        print(
            f"{settings.topic(args.service)}: {len(missing)} events missing from the topic"
            + ("" if args.dry_run else ", published again")
        )
        return 0
    if args.command == "redrive":
        projection = next((p for p in definition.projections() if p.name == args.projection), None)
        if projection is None:
            parser.error(f"{args.service} has no projection {args.projection!r}")
        applied, still = redrive(settings, projection)
        print(f"{args.projection}: {applied} parked records applied, {still} still parked")
        return 0 if still == 0 else 1
    if args.command == "rebuild":
        from tqdm import tqdm

        projection = next((p for p in definition.projections() if p.name == args.projection), None)
        if projection is None:
            parser.error(f"{args.service} has no projection {args.projection!r}")
        bar = tqdm(unit="event", desc=f"rebuild {args.projection}")

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        generation = rebuild(settings, projection, progress=progress)
        bar.close()
        print(f"{args.projection}: generation {generation} is now active")
        return 0
    return 1


def _rewrap_keys(settings: Settings) -> int:
    """RAPPORT_MASTER_KEY is the key in use; RAPPORT_MASTER_KEY_NEW the one to move to."""
    import os
    from dataclasses import replace

    from .config import ConfigError
    from .crypto import rewrap_keys

    new = os.environ.get("RAPPORT_MASTER_KEY_NEW", "")
    if not new:
        print(
            "rewrap-keys: set RAPPORT_MASTER_KEY_NEW (32 random bytes, base64) to the new master key",
            file=sys.stderr,
        )
        return 2
    try:
        replace(settings, master_key=new).check()  # base64, 32 bytes, not the demo key
    except ConfigError as err:
        print(f"rewrap-keys: RAPPORT_MASTER_KEY_NEW: {err}", file=sys.stderr)
        return 2
    counts = rewrap_keys(
        mongo_client(settings.mongo_uri), settings.database("keys"), settings.master_key, new
    )
    print(
        f"{settings.database('keys')}: {counts['rewrapped']} keys wrapped under the new master key, "
        f"{counts['already']} were already, {counts['disposed']} disposed (nothing to wrap). "
        "Now set RAPPORT_MASTER_KEY to the new key everywhere and start the services."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
