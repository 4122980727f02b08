"""A tiny threaded HTTP receiver on 127.0.0.1 that answers from a script (for webhook tests)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int


@dataclass
class Receiver:
    """Answers ``script`` statuses in order (the last repeats) *per event*: the n-th attempt of a
    delivery (same ``webhook-id``) gets ``script[n]``, so an event of another test that reaches the same
    endpoint never takes a step of this test's script. ``extra_headers`` per status."""

    script: list[int]
    extra_headers: dict[int, dict[str, str]] = field(default_factory=dict)
    requests: list[Received] = field(default_factory=list)
    url: str = ""

    def next_status(self, webhook_id: str) -> int:
        attempts = sum(1 for r in self.requests if r.headers.get("webhook-id", "") == webhook_id)
        return self.script[min(attempts, len(self.script) - 1)]

    def about(self, subject: str) -> list[Received]:
        """The requests whose body names ``subject`` (a report or batch id), in arrival order."""
        return [r for r in self.requests if subject.encode() in r.body]

    @property
    def accepted(self) -> list[Received]:
        return [r for r in self.requests if 200 <= r.status < 300]


@contextmanager
def receiver(script: list[int], extra_headers: dict[int, dict[str, str]] | None = None) -> Iterator[Receiver]:
    state = Receiver(script=list(script), extra_headers=extra_headers or {})
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            with lock:
                status = state.next_status(headers.get("webhook-id", ""))
                state.requests.append(Received(self.path, headers, body, status))
            self.send_response(status)
            for name, value in state.extra_headers.get(status, {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
