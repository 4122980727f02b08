"""``medsum webhooks listen``: a local receiver that verifies Standard Webhooks signatures and prints
each event: the quickest way to see the contract.

Verification is the ``standardwebhooks`` package's, as any receiver would do it: one of the ``v1``
signatures matches and the timestamp is within its fixed five minutes of now. The receiver answers
``204`` to a verified delivery whose body is a JSON object and ``401`` to anything else (so the
service's delivery log shows what happened), and never prints more than the thin event itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError
from standardwebhooks.webhooks import EmptyWebhookSecretError

MAX_BODY_BYTES = 262_144


@dataclass
class Delivery:
    """One request the listener received."""

    verified: bool
    headers: dict[str, str]
    event: dict[str, Any] | None


@dataclass
class Listener:
    """An HTTP receiver on ``host:port`` (0 picks a free port) checking signatures with ``secret``.

    ``secret`` may be set after :meth:`start` (``--register`` learns it from the API once the port is
    known). ``on_delivery`` is called for every request, from the server's threads.
    """

    secret: str | None
    on_delivery: Callable[[Delivery], None]
    host: str = "127.0.0.1"
    port: int = 0
    verified: int = 0
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://{self.host}:{self._server.server_address[1]}/"

    def start(self) -> Listener:
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY_BYTES:
                    self.send_response(413)
                    self.end_headers()
                    return
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                delivery = listener.check(headers, body)
                self.send_response(204 if delivery.verified else 401)
                self.end_headers()
                listener.on_delivery(delivery)

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="webhooks-listen", daemon=True
        )
        self._thread.start()
        return self

    def check(self, headers: dict[str, str], body: bytes) -> Delivery:
        event = _verified_event(self.secret, headers, body)
        ok = event is not None
        if ok:
            with self._lock:
                self.verified += 1
        wanted = ("webhook-id", "webhook-timestamp", "webhook-signature")
        return Delivery(verified=ok, headers={k: headers[k] for k in wanted if k in headers}, event=event)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


def _verified_event(secret: str | None, headers: dict[str, str], body: bytes) -> dict[str, Any] | None:
    """The event of a delivery that verifies with ``secret`` and is a JSON object, else None.

    Besides ``WebhookVerificationError`` the library lets through what its parsing raises on malformed
    input (a signature without a comma, bad base64, a body that is not UTF-8 or not JSON: all
    ``ValueError``) and ``EmptyWebhookSecretError``; each is a rejected delivery here.
    """
    if secret is None:
        return None
    try:
        parsed = Webhook(secret).verify(body, headers)
    except (WebhookVerificationError, EmptyWebhookSecretError, ValueError):
        return None
    return parsed if isinstance(parsed, dict) else None
