"""A fake SMS provider for development and tests: `POST /messages` with JSON
`{"to", "body", "reference"}` answers 202 and records the text (in memory, and for
`make up` as JSON lines in `$RAPPORT_RUN_DIR/sms/messages.jsonl`). Like real providers it
honours `Idempotency-Key`: a repeated key is answered 200 and not delivered again.

    python -m services.notifications.devsms --port 8026
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .devsinks import sink_command


class SmsSink:
    def __init__(self, port: int, directory: Path | None = None):
        self.port, self.directory = port, directory
        self.delivered: list[dict] = []  # texts that reached a phone
        self.requests = 0  # every POST, repeats included
        self.fail_next = 0  # tests: answer 503 to the next n requests
        self._keys: set[str] = set()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def accept(self, body: dict, key: str | None) -> int:
        with self._lock:
            self.requests += 1
            if self.fail_next > 0:
                self.fail_next -= 1
                return 503
            if not isinstance(body.get("to"), str) or not isinstance(body.get("body"), str):
                return 400
            if key and key in self._keys:
                return 200
            if key:
                self._keys.add(key)
            self.delivered.append(body)
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            with open(self.directory / "messages.jsonl", "a") as out:
                out.write(json.dumps(body) + "\n")
        return 202

    def to(self, number: str) -> list[dict]:
        with self._lock:
            return [m for m in self.delivered if m["to"] == number]

    def start(self) -> SmsSink:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                if self.path != "/messages":
                    return self._answer(404)
                try:
                    length = int(self.headers.get("Content-Length", "0"))
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    return self._answer(400)
                self._answer(
                    sink.accept(
                        body if isinstance(body, dict) else {}, self.headers.get("Idempotency-Key")
                    )
                )

            def _answer(self, status: int):
                payload = json.dumps({"status": status}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):  # quiet: the texts are personal data
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


cli = sink_command(
    "devsms",
    "sms",
    SmsSink,
    lambda port, directory: f"fake SMS provider on http://127.0.0.1:{port}/messages",
    summary="A fake SMS provider for development: every text kept, none sent.",
    port=8026,
)

if __name__ == "__main__":
    cli(prog_name="python -m services.notifications.devsms")
