"""The flows section's SMTP server in a process of its own (`python -m bench.sink PORT`).

A real practice hands its mail to an SMTP server on another machine; the dev sink run inside
the bench's own process answered each step of every exchange only when the bench's threads
(the appender, the watcher, the lookups) let it have the interpreter, so the time the bench
measured to "accepted" included waiting on the bench itself (issue 14, session 11). Here it
answers from a process of its own and reports each accepted Message-ID on stdout as
`<message-id>\\t<wall time>\\t<monotonic time>` (one clock for every process of the machine)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

from services.notifications.devmail import MailSink
from shared import heap
from testkit.procs import ROOT


class Acceptances:
    """When each Message-ID was accepted: `accepted_at` (monotonic), `accepted_wall`."""

    def __init__(self) -> None:
        self.accepted_at: dict[str, float] = {}
        self.accepted_wall: dict[str, float] = {}

    def note(self, key: str, wall: float, monotonic: float) -> None:
        self.accepted_wall.setdefault(key, wall)
        self.accepted_at.setdefault(key, monotonic)

    def accepted(self, ids) -> list[tuple[str, float]]:
        """A Watch's lookup: the Message-IDs among `ids` accepted, with when."""
        return [(k, self.accepted_at[k]) for k in ids if k in self.accepted_at]


class TimedSink(Acceptances, MailSink):
    """The dev SMTP sink inside the bench's process (`BENCH_SINK=inprocess`)."""

    def __init__(self, port: int):
        Acceptances.__init__(self)
        MailSink.__init__(self, port)

    def received(self, recipients, message, raw) -> None:
        self.note(message["Message-ID"], time.time(), time.monotonic())
        super().received(recipients, message, raw)


class _Reporting(MailSink):
    def received(self, recipients, message, raw) -> None:
        print(f"{message['Message-ID']}\t{time.time()}\t{time.monotonic()}", flush=True)


class SinkProcess(Acceptances):
    """The bench's view of the sink process, with what TimedSink offers."""

    def __init__(self, port: int):
        super().__init__()
        self.port = port
        self._proc: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None

    def start(self) -> SinkProcess:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "bench.sink", str(self.port)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        if self._proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the bench's SMTP sink did not start")
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            key, wall, mono = line.rstrip("\n").split("\t")
            self.note(key, float(wall), float(mono))

    def stop(self) -> None:
        if self._proc is not None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()  # the sink ends when its stdin does
            self._proc.wait(timeout=30)
            if self._reader is not None:
                self._reader.join(timeout=10)
            self._proc = None


def main() -> None:
    sink = _Reporting(int(sys.argv[1])).start()
    # a practice's mail server stops for no garbage collector: one full pass here was 48-142
    # ms of a flows run, with the e-mails of that moment accepted after it (session 37)
    heap.settle()
    print("ready", flush=True)
    sys.stdin.read()
    sink.stop()


if __name__ == "__main__":
    main()
