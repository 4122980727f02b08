"""The urllib3 sender against a real socket: it connects to the checked address it is given (never a
fresh DNS answer), keeps the original Host, does not follow redirects and gives up on time."""

from __future__ import annotations

import socket
import threading
import time

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
