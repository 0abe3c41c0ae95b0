"""Prometheus metrics. Request rate/latency/errors are counted in-process (multiprocess mode
under gunicorn when PROMETHEUS_MULTIPROC_DIR is set); the figures that workers own —
outbox backlog and age, consumer lag, projection staleness — are read from MongoDB at scrape
time, where relays and consumers keep them, so one /metrics per service shows them all."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from flask import Flask
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from pymongo.errors import PyMongoError

from .projections import Projection, generation_progress

if TYPE_CHECKING:  # for annotations only: shared.web imports this module
    from .web import ServiceContext

log = logging.getLogger(__name__)

REQUESTS = Counter(
    "rapport_http_requests_total", "HTTP requests", ["service", "method", "route", "status"]
)
LATENCY = Histogram(
    "rapport_http_request_seconds",
    "HTTP request latency",
    ["service", "method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


def observe_request(service: str, method: str, route: str, status: int, seconds: float) -> None:
    REQUESTS.labels(service, method, route, str(status)).inc()
    LATENCY.labels(service, method, route).observe(seconds)


class ServiceCollector:
    def __init__(
        self,
        service: str,
        app: Flask,
        projections: Sequence[Projection],
        extra: Callable[[ServiceContext, datetime], Iterable[Any]] | None,
    ) -> None:
        self.service, self.app, self.projections, self.extra = service, app, projections, extra

    def describe(self):
        return []  # registering must not query the store (it may not be up yet)

    def collect(self):
        up = GaugeMetricFamily(
            "rapport_store_up", "MongoDB answered the metrics scrape", labels=["service"]
        )
        try:
            families = list(self._from_store())
            up.add_metric([self.service], 1)
        except PyMongoError as err:
            log.warning("metrics: store unavailable: %r", err)
            families = []
            up.add_metric([self.service], 0)
        yield up
        yield from families

    def _from_store(self):
        ctx = self.app.extensions["rapport"]
        now = datetime.now(UTC)
        # read-only: `ctx.store` would create the events collection and its indexes, which a
        # service that keeps no events (the portal) should not get from being scraped
        from .eventstore import EventStore

        count, oldest = EventStore(ctx.mongo, ctx.settings.database(ctx.service)).outbox_backlog()
        backlog = GaugeMetricFamily(
            "rapport_outbox_backlog", "Events not yet published", labels=["service"]
        )
        backlog.add_metric([self.service], count)
        age = GaugeMetricFamily(
            "rapport_outbox_oldest_age_seconds",
            "Age of the oldest unpublished event",
            labels=["service"],
        )
        age.add_metric([self.service], (now - oldest).total_seconds() if oldest else 0.0)
        yield backlog
        yield age
        yield from self._workers(ctx, now)

    def _workers(self, ctx, now):
        lag = GaugeMetricFamily(
            "rapport_consumer_lag",
            "Records behind the end of the topic",
            labels=["service", "projection"],
        )
        heartbeat = GaugeMetricFamily(
            "rapport_consumer_heartbeat_age_seconds",
            "Seconds since a consumer last reported",
            labels=["service", "projection"],
        )
        for doc in ctx.db["worker_status"].find({"kind": "consumer"}):
            lag.add_metric([self.service, doc["projection"]], sum((doc.get("lag") or {}).values()))
            heartbeat.add_metric(
                [self.service, doc["projection"]], (now - doc["heartbeat"]).total_seconds()
            )
        yield lag
        yield heartbeat

        stale = GaugeMetricFamily(
            "rapport_projection_staleness_seconds",
            "Seconds between now and the recording of the last event applied",
            labels=["service", "projection"],
        )
        meta, offsets = ctx.db["projection_meta"], ctx.db["projection_offsets"]
        for doc in meta.find({"active": {"$exists": True}}):  # one per projection
            progress = generation_progress(offsets, f"{doc['_id']}:g{doc['active']}")
            last = progress.get("last_event_recorded_at")
            if last is not None:
                stale.add_metric([self.service, doc["_id"]], (now - last).total_seconds())
        yield stale
        if self.extra is not None:
            yield from self.extra(ctx, now)


def register_service_collector(
    service: str,
    app: Flask,
    projections: Sequence[Projection],
    extra: Callable[[ServiceContext, datetime], Iterable[Any]] | None,
) -> None:
    """Each app keeps its own collector (several apps share a process in tests)."""
    own = CollectorRegistry(auto_describe=False)
    own.register(ServiceCollector(service, app, projections, extra))
    app.extensions["rapport_metrics"] = own


def exposition(app: Flask) -> tuple[bytes, str]:
    """Request metrics (per process, or summed over gunicorn workers in multiprocess mode)
    followed by the app's figures read from the store."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        process = CollectorRegistry()
        multiprocess.MultiProcessCollector(process)
    else:
        process = REGISTRY
    body = generate_latest(process) + generate_latest(app.extensions["rapport_metrics"])
    return body, CONTENT_TYPE_LATEST
