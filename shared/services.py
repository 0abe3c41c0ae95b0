"""How the kernel finds a service: each `services/<name>/__init__.py` defines
`SERVICE = ServiceDefinition(...)` (its app factory and its projections)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Flask

from .config import Settings
from .projections import Projection

SERVICE_NAMES = ("scheduling", "records", "measures", "notifications", "billing")


@dataclass(frozen=True)
class ServiceDefinition:
    name: str
    create_app: Callable[[Settings], Flask]
    projections: Callable[[], list[Projection]] = list
    publishes: bool = True  # has an events store whose outbox a relay publishes
    workers: Callable[[Settings], list] = field(default=lambda settings: [])
    """Extra long-running loops (e.g. the notifications scheduler): callables `run(stop)`."""
    dispose: Callable[[Settings, str], None] | None = None
    """Forget a disposed client's personal data kept outside projections (shared.disposal)."""

    def kernel_projections(self) -> list[Projection]:
        """Projections the kernel adds to every service (the disposal queue)."""
        from .disposal import DisposalQueue

        return [DisposalQueue(self.name)] if self.name != "portal" else []

    def kernel_workers(self, settings: Settings) -> list:
        from .disposal import DisposalWorker

        return [DisposalWorker(settings, self).run] if self.name != "portal" else []


def load(name: str) -> ServiceDefinition:
    module = importlib.import_module(f"services.{name}")
    return module.SERVICE


def available() -> list[ServiceDefinition]:
    found = []
    for name in SERVICE_NAMES:
        try:
            found.append(load(name))
        except (ImportError, AttributeError):
            continue
    return found
