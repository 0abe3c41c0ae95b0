"""JSON logs with the correlation id of the request or event being handled."""

from __future__ import annotations

import contextvars
import logging
import os
import sys

from pythonjsonlogger.json import JsonFormatter

correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "correlation_id", default=None
)


class _CorrelationFilter(logging.Filter):
    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.correlation_id = correlation_id.get()
        record.service = self.service
        return True


_configured = False  # once per process: the first service to configure names its logs


def configure(service: str, level: str | None = None) -> None:
    global _configured
    if _configured:
        return
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(service)s %(correlation_id)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    )
    handler.addFilter(_CorrelationFilter(service))
    root.handlers[:] = [handler]
    # gunicorn takes the same variable in lower case; logging wants upper case
    root.setLevel((level or os.environ.get("RAPPORT_LOG_LEVEL", "INFO")).upper())
    logging.getLogger("kafka").setLevel(logging.WARNING)
    # kafka-python warns of every slow event-loop turn on a busy 2-core machine: not news
    logging.getLogger("kafka.net.selector").setLevel(logging.ERROR)
    _configured = True
