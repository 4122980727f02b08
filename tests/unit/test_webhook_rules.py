"""Webhook delivery rules with fakes: classification, schedule, rotation, rebinding, per-endpoint state."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from medsum.logic.webhooks import (
    NotifierDeps,
    RetryLaterError,
    TooManyWebhooksError,
    UrlPolicy,
    deliver_event,
    register_webhook,
    retry_delay,
    rotate_secret,
)
from medsum.models import (
    DeliveryAttempt,
    DeliveryState,
    EventData,
    Links,
    ReportEvent,
    ReportStatus,
    StoredSecret,
    Webhook,
    WebhookCreateRequest,
    WebhookStatus,
)
from medsum.netguard import Target, UnsafeUrlError
from medsum.ports import DeliveryLog, SecretCipher, SendResult, WebhookRepository, WebhookSender
from medsum.signing import sign
from standardwebhooks import Webhook as Verifier

from tests.support.clock import FakeClock

OWNER = "arn:aws:iam::123456789012:user/clinic-a"


class FakeWebhooks(WebhookRepository):
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], Webhook] = {}

    def create(self, webhook: Webhook) -> None:
        self.items[(webhook.owner, webhook.webhook_id)] = webhook

    def list_for_owner(self, owner: str) -> list[Webhook]:
        return [w for (o, i), w in self.items.items() if o == owner and i.startswith("wh_")]

    def get(self, owner: str, webhook_id: str) -> Webhook | None:
        return self.items.get((owner, webhook_id))

    def delete(self, owner: str, webhook_id: str) -> bool:
        return self.items.pop((owner, webhook_id), None) is not None

    def replace_secrets(
        self, owner: str, webhook_id: str, secrets: Sequence[StoredSecret], now: datetime
    ) -> bool:
        current = self.items.get((owner, webhook_id))
        if current is None:
            return False
        self.items[(owner, webhook_id)] = current.model_copy(update={"secrets": list(secrets)})
        return True

    def disable(self, owner: str, webhook_id: str, reason: str, now: datetime) -> None:
        current = self.items[(owner, webhook_id)]
        self.items[(owner, webhook_id)] = current.model_copy(
            update={"status": WebhookStatus.DISABLED, "disabled_reason": reason}
        )


class FakeCipher(SecretCipher):
    """Reversible, context-bound 'encryption' (the point is that plaintext is never stored)."""

    def encrypt(self, plaintext: str, context: dict[str, str]) -> str:
        return base64.b64encode(f"{sorted(context.items())}|{plaintext}".encode()).decode()

    def decrypt(self, ciphertext: str, context: dict[str, str]) -> str:
        prefix, _, plaintext = base64.b64decode(ciphertext).decode().partition("|")
        assert prefix == str(sorted(context.items()))
        return plaintext


@dataclass
class FakeLog(DeliveryLog):
    rows: list[tuple[str, DeliveryAttempt]] = field(default_factory=list)
    states: dict[str, DeliveryState] = field(default_factory=dict)

    def record_attempt(self, subject_id: str, owner: str, attempt: DeliveryAttempt) -> None:
        self.rows.append((subject_id, attempt))

    def attempts(self, subject_id: str, owner: str) -> list[DeliveryAttempt]:
        return [a for s, a in self.rows if s == subject_id]

    def get_state(self, delivery_id: str) -> DeliveryState | None:
        return self.states.get(delivery_id)

    def put_state(self, state: DeliveryState) -> None:
        self.states[state.delivery_id] = state


@dataclass
class ScriptedSender(WebhookSender):
    """Answers per host from a script of ``SendResult``s (the last repeats)."""

    script: dict[str, list[SendResult]]
    sent: list[tuple[Target, list[str], dict[str, str], bytes]] = field(default_factory=list)

    def send(
        self, target: Target, addresses: Sequence[str], headers: dict[str, str], body: bytes
    ) -> SendResult:
        self.sent.append((target, list(addresses), headers, body))
        answers = self.script[target.host]
        return answers[min(len([s for s in self.sent if s[0].host == target.host]) - 1, len(answers) - 1)]


def resolver(table: dict[str, str]) -> Any:
    def resolve(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        return [(2, 1, 6, "", (table[host], port))]

    return resolve


def ok(code: int = 200, retry_after: int | None = None) -> SendResult:
    return SendResult(status_code=code, latency_ms=12, retry_after_seconds=retry_after)


def event(report_id: str = "r1") -> ReportEvent:
    return ReportEvent(
        type="report.completed",
        id=f"evt_{report_id}_completed",
        timestamp=datetime(2026, 11, 26, 12, tzinfo=UTC),
        data=EventData(report_id=report_id, status=ReportStatus.COMPLETED, links=Links(self="https://x/r1")),
    )


def make(
    script: dict[str, list[SendResult]], dns: dict[str, str] | None = None, max_receive_count: int = 5
) -> tuple[NotifierDeps, FakeWebhooks, FakeLog, ScriptedSender, FakeClock]:
    # The clock is real time: standardwebhooks checks the signed timestamp against now.
    webhooks, log, sender = FakeWebhooks(), FakeLog(), ScriptedSender(script)
    clock = FakeClock(datetime.now(UTC))
    deps = NotifierDeps(
        webhooks=webhooks,
        cipher=FakeCipher(),
        log=log,
        sender=sender,
        policy=UrlPolicy(resolver=resolver(dns or {h: "93.184.216.34" for h in script})),
        max_receive_count=max_receive_count,
        base_delay_seconds=30,
        max_delay_seconds=3600,
        clock=clock,
        jitter=lambda low, high: high,  # deterministic: the top of the jitter range
    )
    return deps, webhooks, log, sender, clock


def register(deps: NotifierDeps, host: str, **kwargs: Any) -> tuple[str, str]:
    created = register_webhook(
        WebhookCreateRequest(url=f"https://{host}/hook", **kwargs),
        OWNER,
        deps.webhooks,
        deps.cipher,
        deps.policy,
        deps.clock(),
    )
    return created.webhook_id, created.secret


def test_success_is_signed_verifiable_and_logged_without_body() -> None:
    deps, webhooks, log, sender, _ = make({"a.example": [ok()]})
    _, secret = register(deps, "a.example")
    assert "whsec_" not in str(webhooks.items)  # only ciphertext is stored
    assert deliver_event(event(), OWNER, 1, deps) == 1
    (target, addresses, headers, body) = sender.sent[0]
    assert addresses == ["93.184.216.34"] and target.host == "a.example"
    assert Verifier(secret).verify(body, headers)["data"]["report_id"] == "r1"
    ((subject, attempt),) = log.rows
    assert subject == "r1" and attempt.outcome == "delivered" and attempt.status_code == 200


@pytest.mark.parametrize(
    ("answer", "outcome", "retried"),
    [
        (ok(500), "retrying", True),
        (ok(503), "retrying", True),
        (ok(429), "retrying", True),
        (SendResult(status_code=None, latency_ms=10_000, error="timeout"), "retrying", True),
        (ok(400), "failed", False),
        (ok(404), "failed", False),
        (ok(301), "failed", False),
        (ok(410), "disabled", False),
    ],
)
def test_status_classification(answer: SendResult, outcome: str, retried: bool) -> None:
    deps, webhooks, log, _, _ = make({"a.example": [answer]})
    webhook_id, _ = register(deps, "a.example")
    if retried:
        with pytest.raises(RetryLaterError):
            deliver_event(event(), OWNER, 1, deps)
    else:
        deliver_event(event(), OWNER, 1, deps)
    assert log.rows[-1][1].outcome == outcome
    disabled = webhooks.items[(OWNER, webhook_id)].status is WebhookStatus.DISABLED
    assert disabled is (outcome == "disabled")


def test_retry_after_is_honoured_and_schedule_grows_to_the_cap() -> None:
    deps, _, log, _, clock = make({"a.example": [ok(429, retry_after=7200)]})
    register(deps, "a.example")
    with pytest.raises(RetryLaterError) as retry:
        deliver_event(event(), OWNER, 1, deps)
    assert retry.value.delay_seconds == 7200
    assert log.rows[-1][1].next_retry_at == clock.now + timedelta(seconds=7200)
    assert [retry_delay(deps, n, None) for n in (1, 2, 3, 8, 12)] == [30, 60, 120, 3600, 3600]


def test_a_failing_endpoint_does_not_resend_to_a_delivered_one() -> None:
    deps, _, _, sender, _ = make({"good.example": [ok()], "bad.example": [ok(500), ok(200)]})
    register(deps, "good.example")
    register(deps, "bad.example")
    with pytest.raises(RetryLaterError):
        deliver_event(event(), OWNER, 1, deps)
    deliver_event(event(), OWNER, 2, deps)
    assert [t.host for t, *_ in sender.sent].count("good.example") == 1
    assert [t.host for t, *_ in sender.sent].count("bad.example") == 2


def test_last_receive_is_exhausted_without_next_retry() -> None:
    deps, _, log, _, _ = make({"a.example": [ok(500)]}, max_receive_count=3)
    register(deps, "a.example")
    with pytest.raises(RetryLaterError) as retry:
        deliver_event(event(), OWNER, 3, deps)
    assert retry.value.last_receive
    assert log.rows[-1][1].outcome == "exhausted" and log.rows[-1][1].next_retry_at is None


def test_dns_rebinding_to_a_private_address_is_never_contacted() -> None:
    # Given an endpoint registered while its host resolved to a public address
    dns = {"rebind.example": "93.184.216.34"}
    deps, _, log, sender, _ = make({"rebind.example": [ok()]}, dns=dns)
    register(deps, "rebind.example")
    # When the name now resolves to the metadata address
    dns["rebind.example"] = "169.254.169.254"
    deliver_event(event(), OWNER, 1, deps)
    # Then nothing was sent and the attempt failed for good
    assert sender.sent == []
    assert log.rows[-1][1].outcome == "failed" and log.rows[-1][1].error == "url_address"


def test_only_matching_event_types_and_enabled_endpoints_are_sent() -> None:
    deps, _, _, sender, _ = make({"a.example": [ok()], "b.example": [ok()]})
    register(deps, "a.example", event_types=["report.failed"])
    register(deps, "b.example")
    deliver_event(event(), OWNER, 1, deps)
    assert [t.host for t, *_ in sender.sent] == ["b.example"]
    assert deliver_event(event(), "arn:aws:iam::123456789012:user/clinic-b", 1, deps) == 0


def test_rotation_signs_with_both_secrets_until_the_overlap_ends() -> None:
    deps, webhooks, _, sender, clock = make({"a.example": [ok()]})
    webhook_id, old = register(deps, "a.example")
    rotated = rotate_secret(OWNER, webhook_id, webhooks, deps.cipher, clock())
    deliver_event(event("r1"), OWNER, 1, deps)
    _, _, headers, body = sender.sent[-1]
    assert len(headers["webhook-signature"].split()) == 2
    Verifier(old).verify(body, headers)
    Verifier(rotated.secret).verify(body, headers)
    # After the overlap only the new secret signs
    clock.advance(25 * 3600)
    deliver_event(event("r2"), OWNER, 1, deps)
    _, _, headers, _ = sender.sent[-1]
    assert len(headers["webhook-signature"].split()) == 1
    assert headers["webhook-signature"] == sign(
        rotated.secret, "evt_r2_completed", int(clock.now.timestamp()), sender.sent[-1][3]
    )


def test_registration_refuses_hosts_resolving_to_private_addresses() -> None:
    deps, *_ = make({"a.example": [ok()]}, dns={"a.example": "10.0.0.5"})
    with pytest.raises(UnsafeUrlError):
        register(deps, "a.example")


def test_an_owner_has_at_most_ten_endpoints() -> None:
    deps, *_ = make({f"h{i}.example": [ok()] for i in range(11)})
    for i in range(10):
        register(deps, f"h{i}.example")
    with pytest.raises(TooManyWebhooksError):
        register(deps, "h10.example")
