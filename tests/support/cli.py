"""The ``medsum`` CLI's tests' fake HTTP transport, the local stack file it reads, the SigV4 check of
what it sends, and builders of the API's answers.

No sockets: every request goes through a ``requests`` transport adapter that records it and answers
from a script, so the tests see exactly the bytes and headers a server would receive. The fixtures that
run the CLI (``isolated_env``, ``project``, ``run``, ``fake_time``) are in ``tests/unit/conftest.py``.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from medsum_cli.client import MedsumClient
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from tests.support.clock import FakeClock

API_URL = "http://127.0.0.1:3000"
REPORT_ID = "01JDQ3Z6W5Y7K8M9N0P1Q2R3S4"
#: The identities of the local stack file :func:`write_local_stack` writes: (access key, secret key).
IDENTITIES = {
    "clinic-a": ("AKIACLINICA000000001", "clinic-a-secret"),
    "clinic-b": ("AKIACLINICB000000002", "clinic-b-secret"),
    "operator": ("AKIAOPERATOR00000003", "operator-secret"),
}


# --------------------------------------------------------------------------------------------------
# Fake transport
# --------------------------------------------------------------------------------------------------
Reply = tuple[int, Any, dict[str, str]] | Exception


class FakeAdapter(BaseAdapter):
    """Records every prepared request and answers with the next scripted reply (the last repeats)."""

    def __init__(self, replies: list[Reply]) -> None:
        super().__init__()
        self.replies = list(replies)
        self.requests: list[requests.PreparedRequest] = []
        self.timeouts: list[Any] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.requests.append(request)
        self.timeouts.append(kwargs.get("timeout"))
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, Exception):
            raise reply
        status, body, headers = reply
        response = requests.Response()
        response.status_code = status
        response.headers = CaseInsensitiveDict(headers)
        if body is None:
            response._content = b""
        elif isinstance(body, bytes):
            response._content = body
        else:
            response._content = json.dumps(body).encode()
            response.headers.setdefault("Content-Type", "application/json")
        response.url = request.url or ""
        response.request = request
        response.reason = "scripted"
        return response

    def close(self) -> None:
        pass


def fake_session(*replies: Reply) -> tuple[requests.Session, FakeAdapter]:
    """A session whose every request goes to a :class:`FakeAdapter` answering ``replies``."""
    adapter = FakeAdapter(list(replies))
    session = requests.Session()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session, adapter


def ok(body: Any, status: int = 200, **headers: str) -> Reply:
    """A scripted answer (JSON ``body``)."""
    return (status, body, dict(headers))


def error(status: int, code: str, message: str) -> Reply:
    """A scripted answer in the API's error shape."""
    return (status, {"error": {"code": code, "message": message}}, {})


def write_local_stack(root: Path, api_url: str = API_URL, region: str = "us-east-1") -> Path:
    """Write ``root/.medsum/local-stack.json`` as ``make run`` does, with :data:`IDENTITIES`."""
    path = root / ".medsum" / "local-stack.json"
    path.parent.mkdir(parents=True)
    path.write_text(
        json.dumps(
            {
                "api_url": api_url,
                "region": region,
                "aws_endpoint_url": "http://127.0.0.1:4566",
                "outputs": {"ApiUrl": api_url},
                "identities": [
                    {
                        "name": name,
                        "role": "operator" if name == "operator" else "client",
                        "access_key_id": key,
                        "secret_access_key": secret,
                        "arn": f"arn:aws:iam::123456789012:user/{name}",
                    }
                    for name, (key, secret) in IDENTITIES.items()
                ],
            }
        )
    )
    return path


# --------------------------------------------------------------------------------------------------
# SigV4 verification: recompute the signature with botocore, as the API's verifier would
# --------------------------------------------------------------------------------------------------
AUTH_PATTERN = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)"
    r"/aws4_request, "
    r"SignedHeaders=(?P<signed>[^,]+), Signature=(?P<signature>[0-9a-f]{64})$"
)


def parse_authorization(request: requests.PreparedRequest) -> dict[str, str]:
    """The parts of a request's SigV4 ``Authorization`` header (``key``, ``date``, ``region``, ...)."""
    match = AUTH_PATTERN.match(request.headers["Authorization"])
    assert match is not None, request.headers["Authorization"]
    return match.groupdict()


def signature_is_valid(
    request: requests.PreparedRequest,
    secret_key: str,
    *,
    body: bytes | None = None,
    token: str | None = None,
) -> bool:
    """Whether the request's signature is the one botocore computes with ``secret_key``."""
    auth = parse_authorization(request)
    assert auth["service"] == "execute-api"
    assert request.url is not None
    signed_names = auth["signed"].split(";")
    headers = {name: request.headers[name] for name in signed_names if name != "host"}
    if "host" in signed_names:
        assert request.headers.get("Host", urlsplit(request.url).netloc) == urlsplit(request.url).netloc
    payload = request.body if body is None else body
    if isinstance(payload, str):
        payload = payload.encode()
    recomputed = AWSRequest(method=request.method, url=request.url, data=payload or b"", headers=headers)
    recomputed.context["timestamp"] = request.headers["X-Amz-Date"]
    signer = SigV4Auth(Credentials(auth["key"], secret_key, token), "execute-api", auth["region"])
    string_to_sign = signer.string_to_sign(recomputed, signer.canonical_request(recomputed))
    return hmac.compare_digest(signer.signature(string_to_sign, recomputed), auth["signature"])


def client_with(session: requests.Session, clock: FakeClock) -> MedsumClient:
    """A client of the local API signing as ``AK``/``SK`` over ``session``, waiting on ``clock``."""
    return MedsumClient(
        API_URL,
        Credentials("AK", "SK"),
        "us-east-1",
        session=session,
        sleep=clock.sleep,
        clock=clock.monotonic,
    )


#: The ``run`` fixture: ``run(argv, session) -> (exit code, stdout, stderr)``.
Run = Callable[..., tuple[int, str, str]]

# --------------------------------------------------------------------------------------------------
# Batches
# --------------------------------------------------------------------------------------------------
BATCH_ID = "01JDQBATCH0000000000000001"
SECRET = IDENTITIES["clinic-a"][1]


def counts(total: int = 0, **values: int) -> dict[str, int]:
    """A batch's ``request_counts``."""
    result = {"total": total, "pending": 0, "processing": 0, "completed": 0, "failed": 0, "cancelled": 0}
    result.update(values)
    return result


def batch_view(
    status: str = "in_progress", batch_id: str = BATCH_ID, errors: list[Any] | None = None, **values: int
) -> dict[str, Any]:
    """``GET /batches/{batch_id}``'s body."""
    return {
        "batch_id": batch_id,
        "status": status,
        "request_counts": counts(**values),
        "created_at": "2026-11-26T06:00:00Z",
        "updated_at": "2026-11-26T06:00:05Z",
        "completed_at": "2026-11-26T06:01:00Z" if status in ("completed", "cancelled", "failed") else None,
        "metadata": {},
        "errors": errors or [],
        "links": {
            "self": f"{API_URL}/batches/{batch_id}",
            "results": f"{API_URL}/batches/{batch_id}/results",
        },
    }


def accepted(batch_id: str = BATCH_ID, total: int = 2) -> Reply:
    """``POST /batches``'s 202."""
    body = {
        "batch_id": batch_id,
        "status": "validating",
        "request_counts": counts(total, pending=total),
        "links": {
            "self": f"{API_URL}/batches/{batch_id}",
            "results": f"{API_URL}/batches/{batch_id}/results",
        },
    }
    return ok(body, 202, Location=f"/batches/{batch_id}", **{"Retry-After": "3"})


def item_line(custom_id: str, text: str = "Chest X-ray: normal.") -> bytes:
    """One line of a JSON Lines batch."""
    item = {
        "custom_id": custom_id,
        "patient_id": "patient-1",
        "report_text": text,
        "report_type": "radiology",
    }
    return (json.dumps(item) + "\n").encode()


def body_of(request: requests.PreparedRequest) -> bytes:
    """A recorded request's body as bytes."""
    body = request.body
    if isinstance(body, str):
        return body.encode()
    assert isinstance(body, bytes)
    return body
