"""How the kernel finds a service: each `services/<name>/__init__.py` defines
`SERVICE = ServiceDefinition(...)` (its app factory and its projections)."""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable

from flask import Flask

from .config import Settings
from .projections import Projection

SERVICE_NAMES = ("scheduling", "records", "measures", "notifications")


@dataclass(frozen=True)
class ServiceDefinition:
    name: str
    create_app: Callable[[Settings], Flask]
    projections: Callable[[], list[Projection]] = list
    publishes: bool = True  # has an events store whose outbox a relay publishes
    workers: Callable[[Settings], list] = field(default=lambda settings: [])
    """Extra long-running loops (e.g. the notifications scheduler): callables `run(stop)`."""


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
