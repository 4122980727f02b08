"""``medsum webhooks listen``: the receiver's verification, and its command line."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
from medsum.signing import new_secret, webhook_headers
from medsum_cli.commands.common import EXIT_INTERRUPTED
from medsum_cli.main import EXIT_USAGE, main
from medsum_cli.webhook_listener import Delivery, Listener

BODY = json.dumps({"type": "report.completed", "id": "evt_1", "data": {"report_id": "r1"}}).encode()


def test_listener_accepts_only_deliveries_signed_with_its_secret() -> None:
    secret = new_secret()
    seen: list[Delivery] = []
    listener = Listener(secret=secret, on_delivery=seen.append)
    good = webhook_headers([secret], "evt_1", int(time.time()), BODY)
    forged = webhook_headers([new_secret()], "evt_1", int(time.time()), BODY)
    stale = webhook_headers([secret], "evt_1", int(time.time()) - 3600, BODY)

    accepted = listener.check(good, BODY)
    assert accepted.verified and accepted.event is not None and accepted.event["id"] == "evt_1"
    assert set(accepted.headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    for headers, body in ((forged, BODY), (stale, BODY), (good, BODY + b" ")):
        rejected = listener.check(headers, body)
        assert not rejected.verified and rejected.event is None
    assert listener.verified == 1


def signed(body: bytes, **overrides: str) -> dict[str, str]:
    return {**webhook_headers([SECRET], "evt_1", int(time.time()), body), **overrides}


SECRET = new_secret()


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        (signed(BODY, **{"webhook-signature": "garbage"}), BODY),  # no "v1," part
        (signed(BODY, **{"webhook-signature": "v1,not base64!"}), BODY),
        (signed(BODY, **{"webhook-timestamp": "soon"}), BODY),
        ({k: v for k, v in signed(BODY).items() if k != "webhook-id"}, BODY),
        (signed(BODY), b"\xff\xfe not UTF-8"),
        (signed(b"not json"), b"not json"),
        (signed(b"[1, 2]"), b"[1, 2]"),  # signed, but not an event
    ],
    ids=["no-version", "bad-base64", "bad-timestamp", "no-id", "not-utf8", "not-json", "not-an-object"],
)
def test_listener_rejects_malformed_deliveries_without_failing(headers: dict[str, str], body: bytes) -> None:
    listener = Listener(secret=SECRET, on_delivery=lambda _: None)
    rejected = listener.check(headers, body)
    assert not rejected.verified and rejected.event is None and listener.verified == 0


@pytest.mark.parametrize("secret", ["", "whsec_", "whsec_%%%"])
def test_listener_with_a_malformed_secret_rejects_deliveries(secret: str) -> None:
    listener = Listener(secret=secret, on_delivery=lambda _: None)
    assert not listener.check(signed(BODY), BODY).verified


def test_listener_without_a_secret_rejects_everything() -> None:
    listener = Listener(secret=None, on_delivery=lambda _: None)
    assert not listener.check(webhook_headers([new_secret()], "e", int(time.time()), BODY), BODY).verified


def test_listen_needs_a_secret_or_register(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEDSUM_WEBHOOK_SECRET", raising=False)
    assert main(["webhooks", "listen"]) == EXIT_USAGE


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_listen_stops_on_a_signal_even_when_started_with_sigint_ignored(signum: int) -> None:
    # Given `medsum webhooks listen` started the way a shell starts a background job: SIGINT ignored
    listen = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "medsum_cli.main",
            "webhooks",
            "listen",
            "--secret",
            new_secret(),
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        assert listen.stderr is not None
        assert "listening on" in listen.stderr.readline()
        # When it is sent the signal
        listen.send_signal(signum)
        _, stderr = listen.communicate(timeout=30)
    finally:
        if listen.poll() is None:
            listen.kill()
    # Then it stops at once, as interrupted
    assert listen.returncode == EXIT_INTERRUPTED, stderr
