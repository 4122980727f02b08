"""Hostile requests over HTTP, as raw bytes through the local gateway (signed): the answers are
documented 4xx in the error shape. The gateway passes a body that is not UTF-8 base64-encoded, as API
Gateway does for binary payloads; tests/integration/test_api_hostile.py covers the full case table at
the handler."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from medsum_local.stack import StackInfo

from tests.support.signing import session_as

REPORT = {
    "patient_id": "pt-hostile",
    "report_text": "FINDINGS: Mild cardiomegaly.",
    "report_type": "radiology",
}
ITEM = {**REPORT, "custom_id": "h-1"}
LATIN1 = '{"patient_id": "pt-hostile", "report_text": "Caf\xe9"}'.encode("latin-1")
DEEP = b"[" * 10_000 + b"]" * 10_000
HUGE = b'{"patient_id": ' + b"9" * 5_000 + b"}"


@pytest.fixture(scope="module")
def session(stack_info: StackInfo) -> Iterator[requests.Session]:
    with session_as(stack_info, "clinic-a") as signed:
        yield signed


def send(
    info: StackInfo, session: requests.Session, method: str, path: str, body: bytes, content_type: str | None
) -> requests.Response:
    headers = {"Content-Type": content_type} if content_type else {}
    return session.request(method, info.api_url + path, data=body, headers=headers, timeout=30)


def error_of(response: requests.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) <= {"code", "message", "details"}
    assert response.headers["Content-Type"] == "application/json"
    error: dict[str, Any] = body["error"]
    return error


@pytest.mark.parametrize(
    ("path", "body", "content_type", "status", "code"),
    [
        ("/summarize", LATIN1, "application/json", 400, "invalid_json"),
        ("/batches", LATIN1, "application/json", 400, "invalid_json"),
        ("/batches", LATIN1, "application/x-ndjson", 400, "invalid_json"),
        ("/webhooks", LATIN1, "application/json", 400, "invalid_json"),
        ("/summarize", b"\xff\xfe\x00\x00", "application/json", 400, "invalid_json"),
        ("/summarize", DEEP, "application/json", 400, "invalid_json"),
        ("/batches", DEEP, "application/json", 400, "invalid_json"),
        ("/batches", DEEP + b"\n", "application/x-ndjson", 400, "no_valid_items"),
        ("/webhooks", DEEP, "application/json", 400, "invalid_json"),
        ("/summarize", HUGE, "application/json", 400, "invalid_json"),
        ("/batches", HUGE, "application/json", 400, "invalid_json"),
        (
            "/summarize",
            b'{"patient_id": "p", "report_text": "\\ud800"}',
            "application/json",
            400,
            "invalid_json",
        ),
        ("/summarize", json.dumps(REPORT).encode(), "text/plain", 415, "unsupported_media_type"),
        ("/summarize", json.dumps(REPORT).encode(), None, 415, "unsupported_media_type"),
        ("/batches", json.dumps(ITEM).encode(), "text/csv", 415, "unsupported_media_type"),
        ("/summarize", b" " * 1_048_577, "application/json", 413, "payload_too_large"),
        (
            "/summarize",
            json.dumps({**REPORT, "Jane Doe": 1}).encode(),
            "application/json",
            400,
            "invalid_request",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) and value.startswith("/") else None,
)
def test_hostile_bodies_get_a_documented_4xx(
    stack_info: StackInfo,
    session: requests.Session,
    path: str,
    body: bytes,
    content_type: str | None,
    status: int,
    code: str,
) -> None:
    response = send(stack_info, session, "POST", path, body, content_type)
    assert response.status_code == status, response.text
    error = error_of(response)
    assert error["code"] == code
    assert "Jane Doe" not in response.text


@pytest.mark.parametrize(
    "content_type", ["APPLICATION/JSON", "application/json; charset=utf-8", "application/vnd.api+json"]
)
def test_json_in_any_spelling_is_accepted(
    stack_info: StackInfo, session: requests.Session, content_type: str
) -> None:
    response = send(stack_info, session, "POST", "/summarize", json.dumps(REPORT).encode(), content_type)
    assert response.status_code == 202, response.text


def test_links_are_the_stacks_own_url_whatever_the_request_says(
    stack_info: StackInfo, session: requests.Session
) -> None:
    # Given a signed request claiming another scheme through X-Forwarded-Proto
    response = session.post(
        stack_info.api_url + "/summarize",
        json=REPORT,
        headers={"X-Forwarded-Proto": "javascript", "X-Forwarded-Host": "evil.example"},
        timeout=30,
    )
    # Then Location and the self link are the stack's configured URL
    assert response.status_code == 202
    expected = f"{stack_info.api_url}/reports/{response.json()['report_id']}"
    assert response.headers["Location"] == response.json()["links"]["self"] == expected


def test_admin_itself_is_the_operators(stack_info: StackInfo, session: requests.Session) -> None:
    # A client gets the documented 403 on /admin and below, whatever the path
    for path in ("/admin", "/admin/", "/admin/nope"):
        refused = session.get(stack_info.api_url + path, timeout=30)
        assert refused.status_code == 403, path
        assert error_of(refused) == {"code": "forbidden", "message": "operators only"}
    # An operator gets 404 for a path that is no route
    with session_as(stack_info, "operator") as operator:
        missing = operator.get(stack_info.api_url + "/admin", timeout=30)
    assert missing.status_code == 404 and error_of(missing)["code"] == "route_not_found"


def test_cors_headers_on_answers_and_refusals(stack_info: StackInfo, session: requests.Session) -> None:
    origin = {"Origin": "https://app.example"}
    ok = session.get(stack_info.api_url + "/batches", headers=origin, timeout=30)
    refused = session.post(
        stack_info.api_url + "/summarize",
        data=b"x",
        headers={**origin, "Content-Type": "text/plain"},
        timeout=30,
    )
    assert ok.status_code == 200 and refused.status_code == 415
    # The template's CorsAllowOrigin ("*" by default) allows any origin
    assert ok.headers["Access-Control-Allow-Origin"] == refused.headers["Access-Control-Allow-Origin"] == "*"
