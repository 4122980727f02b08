"""Our Standard Webhooks signatures: the specification's own test vector, and the ``standardwebhooks``
package on the receiving side (rotation, tampering, staleness)."""

from __future__ import annotations

import base64
import json
import time

import pytest
from medsum.signing import new_secret, sign, webhook_headers
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

BODY = json.dumps({"type": "report.completed", "id": "evt_1", "data": {"report_id": "r1"}}).encode()


def test_signature_matches_the_specifications_test_vector() -> None:
    # The test vector published with the Standard Webhooks specification (what any receiver checks against)
    signature = sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        b'{"test": 2432232314}',
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_a_new_secret_is_whsec_and_32_random_bytes() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert new_secret() != secret


def test_signature_verifies_with_the_standardwebhooks_package() -> None:
    # Given a fresh secret and a signed delivery
    secret = new_secret()
    headers = webhook_headers([secret], "evt_1", int(time.time()), BODY)
    # Then the reference implementation accepts it and returns the envelope
    assert Webhook(secret).verify(BODY, headers)["id"] == "evt_1"


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
    stale = webhook_headers([secret], "evt_3", int(time.time()) - 3600, BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, stale)


def test_no_secret_is_an_error() -> None:
    with pytest.raises(ValueError, match="no signing secret"):
        webhook_headers([], "evt", 1, BODY)
