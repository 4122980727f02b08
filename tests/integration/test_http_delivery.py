"""The urllib3 sender against a real socket: it connects to the checked address it is given (never a
fresh DNS answer), keeps the original Host, does not follow redirects and gives up on time."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from medsum.adapters.http_delivery import Urllib3WebhookSender, parse_retry_after
from medsum.netguard import Target

from tests.support.receiver import receiver


def target(port: int, host: str = "hooks.invalid") -> Target:
    return Target(
        scheme="http", host=host, port=port, request_target="/hook?x=1", host_header=host, local=False
    )


def test_connects_to_the_pinned_address_with_the_original_host() -> None:
    with receiver([200]) as hook:
        port = int(hook.url.rsplit(":", 1)[1].split("/")[0])
        # "hooks.invalid" cannot resolve: reaching the receiver proves the sender used the given IP
        result = Urllib3WebhookSender().send(target(port), ["127.0.0.1"], {"webhook-id": "evt"}, b"{}")
    assert result.status_code == 200 and result.error is None
    (request,) = hook.requests
    assert request.headers["host"] == "hooks.invalid" and request.path == "/hook?x=1"


def test_redirects_are_reported_not_followed_and_retry_after_is_read() -> None:
    headers = {302: {"Location": "http://169.254.169.254/"}, 429: {"Retry-After": "120"}}
    with receiver([302, 429], headers) as hook:
        port = int(hook.url.rsplit(":", 1)[1].split("/")[0])
        sender = Urllib3WebhookSender()
        first = sender.send(target(port), ["127.0.0.1"], {}, b"{}")
        second = sender.send(target(port), ["127.0.0.1"], {}, b"{}")
    assert first.status_code == 302 and len(hook.requests) == 2
    assert second.status_code == 429 and second.retry_after_seconds == 120


def test_a_silent_receiver_times_out_within_the_bound() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True)
    thread.start()
    started = time.monotonic()
    result = Urllib3WebhookSender(timeout_seconds=1.0).send(
        target(listener.getsockname()[1]), ["127.0.0.1"], {}, b"{}"
    )
    assert result.status_code is None and result.error == "timeout"
    assert time.monotonic() - started < 5
    for conn in accepted:
        conn.close()
    listener.close()


def test_retry_after_forms() -> None:
    assert parse_retry_after("30") == 30
    assert parse_retry_after("999999") == 43_200
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0


def _certificates(directory: Path, name: str) -> tuple[Path, Path, Path]:
    """A private CA and a leaf certificate for ``name``: (ca.pem, cert.pem, key.pem)."""
    now = datetime.now(UTC)

    def build(subject: str, issuer: str, key: Any, signer: Any, *, ca: bool) -> Any:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = build("medsum test CA", "medsum test CA", ca_key, ca_key, ca=True)
    leaf = build(name, "medsum test CA", leaf_key, ca_key, ca=False)
    paths = (directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
    paths[0].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


def test_https_to_the_pinned_address_verifies_the_certificate_for_the_original_host(tmp_path: Path) -> None:
    ca, cert, key = _certificates(tmp_path, "hooks.test")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append(self.headers.get("Host", ""))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    try:
        sender = Urllib3WebhookSender(ca_certs=str(ca))

        def https(host: str) -> Target:
            return Target("https", host, port, "/hook", f"{host}:{port}", local=False)

        # The name on the certificate matches the URL's host: delivered over the pinned address
        ok = sender.send(https("hooks.test"), ["127.0.0.1"], {}, b"{}")
        # Another host name at the same address: the certificate check fails, nothing is delivered
        wrong = sender.send(https("other.test"), ["127.0.0.1"], {}, b"{}")
    finally:
        server.shutdown()
        server.server_close()
    assert ok.status_code == 204 and seen == [f"hooks.test:{port}"]
    assert wrong.status_code is None and wrong.error == "tls_error"
