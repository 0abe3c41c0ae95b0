"""A local SMTP sink for development and tests: accepts every message, keeps it in memory
and, for `make up`, writes it to `$RAPPORT_RUN_DIR/mail/` — no real mail leaves the machine.

    python -m services.notifications.devmail --port 8025
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import threading
import time
from pathlib import Path

from aiosmtpd.controller import Controller

from .devsinks import sink_command


class _Handler:
    def __init__(self, sink: MailSink):
        self.sink = sink

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.sink.reject:
            return f"550 5.1.1 <{address}>: mailbox unavailable"  # as Postfix words it
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.sink.received(envelope.rcpt_tos, message, envelope.content)
        return "250 OK"


class MailSink:
    """An SMTP server on 127.0.0.1:`port`; `messages` lists (recipients, EmailMessage)."""

    def __init__(self, port: int, directory: Path | None = None):
        self.port, self.directory = port, directory
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []
        self.reject: set[str] = set()  # tests: addresses answered "550 mailbox unavailable"
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    def received(self, recipients, message, raw: bytes) -> None:
        with self._lock:
            self.messages.append((list(recipients), message))
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            name = f"{time.strftime('%Y%m%dT%H%M%S')}-{hashlib.sha256(raw).hexdigest()[:12]}.eml"
            (self.directory / name).write_bytes(raw)

    def to(self, address: str) -> list:
        with self._lock:
            return [m for rcpts, m in self.messages if address in rcpts]

    def start(self) -> MailSink:
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


cli = sink_command(
    "devmail",
    "mail",
    MailSink,
    lambda port, directory: f"SMTP on 127.0.0.1:{port}, writing to {directory}",
    summary="A local SMTP sink for development: every message kept as a file, none sent.",
    port=8025,
    port_envvar="RAPPORT_SMTP_PORT",
)

if __name__ == "__main__":
    cli(prog_name="python -m services.notifications.devmail")
