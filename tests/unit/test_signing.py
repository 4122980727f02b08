"""Our Standard Webhooks signatures, verified by the independent ``standardwebhooks`` package."""

from __future__ import annotations

import json
import time

import pytest
from medsum.signing import new_secret, verify, webhook_headers
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

BODY = json.dumps({"type": "report.completed", "id": "evt_1", "data": {"report_id": "r1"}}).encode()


def test_signature_verifies_with_the_standardwebhooks_package() -> None:
    # Given a fresh secret and a signed delivery
    secret = new_secret()
    assert secret.startswith("whsec_")
    headers = webhook_headers([secret], "evt_1", int(time.time()), BODY)
    # Then the reference implementation accepts it and returns the envelope
    assert Webhook(secret).verify(BODY, headers)["id"] == "evt_1"
    # And so does our own receiver-side check
    assert verify(secret, headers, BODY, now=int(time.time()))


def test_during_rotation_both_secrets_verify() -> None:
    old, new = new_secret(), new_secret()
    headers = webhook_headers([new, old], "evt_2", int(time.time()), BODY)
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(BODY, headers)
    Webhook(new).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, headers)


def test_tampered_body_or_stale_timestamp_is_rejected() -> None:
    secret = new_secret()
    headers = webhook_headers([secret], "evt_3", int(time.time()), BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY + b" ", headers)
    assert not verify(secret, headers, BODY + b" ", now=int(time.time()))
    stale = webhook_headers([secret], "evt_3", int(time.time()) - 3600, BODY)
    assert not verify(secret, stale, BODY, now=int(time.time()))


def test_no_secret_is_an_error() -> None:
    with pytest.raises(ValueError, match="no signing secret"):
        webhook_headers([], "evt", 1, BODY)
