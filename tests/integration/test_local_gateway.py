"""The offline stack's API gateway: SigV4 verification, routing, proxy events, gateway responses.

A tiny SAM application (``local_stack_app/``) is deployed into the embedded emulator by the real
``LocalStack``; its echo function answers with the proxy event it received, so the tests see exactly
what a handler would get on AWS.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.credentials import Credentials
from medsum_local.gateway import MAX_PAYLOAD_BYTES, AuthError, LocalApiGateway, RouteTable, verify_sigv4
from medsum_local.identities import IdentityRegistry
from medsum_local.stack import LocalStack, StackInfo
from medsum_local.testing import ApiClient, isolated_config, sign_request
from werkzeug.test import Client

APP = Path(__file__).parent / "local_stack_app"


@pytest.fixture(scope="module")
def local_stack() -> Iterator[LocalStack]:
    local = LocalStack(isolated_config(APP, environ={}, bedrock_context_tokens=16_384, default_concurrency=2))
    with local:
        yield local


@pytest.fixture(scope="module")
def api(info: StackInfo) -> ApiClient:
    return ApiClient(info, identity="clinic-a")


def _echo(response: requests.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def _api_id(local_stack: LocalStack) -> str:
    assert local_stack.deployed is not None
    return local_stack.deployed.apis[0].api_id


# ----------------------------------------------------------------------------------------------------
# SigV4
# ----------------------------------------------------------------------------------------------------


def test_botocore_signed_request_is_accepted_and_identifies_the_iam_user(
    api: ApiClient, info: StackInfo
) -> None:
    # Given a request signed by botocore with clinic-a's key
    # When it reaches an AWS_IAM route
    answer = _echo(api.get("/items/42"))

    # Then the function sees clinic-a as the caller, as API Gateway reports IAM users
    identity = answer["event"]["requestContext"]["identity"]
    clinic_a = info.identity("clinic-a")
    assert identity["userArn"] == clinic_a.arn
    assert identity["userArn"] == f"arn:aws:iam::{identity['accountId']}:user/clinic-a"
    assert identity["accessKey"] == clinic_a.access_key_id
    assert identity["caller"] == identity["user"] == clinic_a.user_id
    assert identity["cognitoIdentityId"] is None
    assert identity["sourceIp"] == "127.0.0.1"


def test_signed_post_with_query_string_and_body_is_accepted(api: ApiClient) -> None:
    # Given a signed POST with a JSON body and a repeated query parameter
    response = api.post("/echo", json={"hello": "world"}, params={"a": "1 2", "b": "x/y"})

    # Then the signature verifies over the exact bytes and query received
    answer = _echo(response)
    assert json.loads(answer["event"]["body"]) == {"hello": "world"}
    assert answer["event"]["queryStringParameters"] == {"a": "1 2", "b": "x/y"}


def test_unsigned_request_to_iam_route_is_forbidden_in_the_templates_error_shape(api: ApiClient) -> None:
    response = api.get("/items/42", identity=None)

    assert response.status_code == 403
    assert response.json() == {"error": {"code": "forbidden", "message": "Missing Authentication Token"}}
    assert response.headers["Access-Control-Allow-Origin"] == "*"  # the gateway response's parameters


def test_tampered_body_is_rejected(info: StackInfo) -> None:
    # Given a request signed over one body
    clinic_a = info.identity("clinic-a")
    url = f"{info.api_url}/echo"
    headers = sign_request(
        "POST",
        url,
        credentials=clinic_a.credentials(),
        region=info.region,
        body=b'{"amount": 1}',
        headers={"Content-Type": "application/json"},
    )

    # When another body is sent with that signature
    response = requests.post(url, data=b'{"amount": 9}', headers=headers, timeout=10)

    # Then the signature does not match
    assert response.status_code == 403
    assert response.json()["error"]["message"].startswith(
        "The request signature we calculated does not match"
    )


def test_tampered_path_and_signature_are_rejected(info: StackInfo) -> None:
    clinic_a = info.identity("clinic-a")
    headers = sign_request(
        "GET",
        f"{info.api_url}/items/1",
        credentials=clinic_a.credentials(),
        region=info.region,
    )

    other_path = requests.get(f"{info.api_url}/items/2", headers=headers, timeout=10)
    forged = dict(headers, Authorization=headers["Authorization"][:-4] + "0000")
    forged_signature = requests.get(f"{info.api_url}/items/1", headers=forged, timeout=10)

    assert other_path.status_code == 403
    assert forged_signature.status_code == 403


@pytest.mark.parametrize(
    ("access_key_id", "service", "region_override", "message"),
    [
        (
            "AKIAUNKNOWNKEY000000",
            "execute-api",
            None,
            "The security token included in the request is invalid.",
        ),
        (None, "s3", None, "Credential should be scoped to correct service: 'execute-api'."),
        (None, "execute-api", "eu-west-1", "Credential should be scoped to a valid region"),
    ],
    ids=["unknown-key", "wrong-service", "wrong-region"],
)
def test_wrong_credentials_are_rejected(
    info: StackInfo, access_key_id: str | None, service: str, region_override: str | None, message: str
) -> None:
    clinic_a = info.identity("clinic-a")
    url = f"{info.api_url}/items/1"
    headers = sign_request(
        "GET",
        url,
        credentials=Credentials(access_key_id or clinic_a.access_key_id, clinic_a.secret_access_key),
        region=region_override or info.region,
        service=service,
    )

    response = requests.get(url, headers=headers, timeout=10)

    assert response.status_code == 403
    assert response.json()["error"]["message"].startswith(message)


def test_signature_older_than_fifteen_minutes_is_rejected(info: StackInfo) -> None:
    clinic_a = info.identity("clinic-a")
    url = f"{info.api_url}/items/1"
    stale = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=16)
    headers = sign_request(
        "GET",
        url,
        credentials=clinic_a.credentials(),
        region=info.region,
        at=stale,
    )

    response = requests.get(url, headers=headers, timeout=10)

    assert response.status_code == 403
    assert response.json()["error"]["message"].startswith("Signature expired")


def test_verify_sigv4_accepts_a_signature_within_the_clock_skew(info: StackInfo) -> None:
    # Given a request signed 14 minutes before the gateway's clock
    clinic_a = info.identity("clinic-a")
    signed_at = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
    headers = sign_request(
        "GET",
        "http://127.0.0.1:3000/items/1?b=2&a=1",
        credentials=clinic_a.credentials(),
        region="us-east-1",
        at=signed_at,
    )
    registry = IdentityRegistry(info.identities)

    def verify(now: dt.datetime, region: str = "us-east-1") -> str:
        return verify_sigv4(
            method="GET",
            raw_path="/items/1",
            raw_query="b=2&a=1",
            headers=list(headers.items()),
            body=b"",
            identities=registry,
            region=region,
            now=now,
        ).name

    # Then it verifies, but not 16 minutes later, nor for another region
    assert verify(signed_at + dt.timedelta(minutes=14)) == "clinic-a"
    with pytest.raises(AuthError, match="Signature expired"):
        verify(signed_at + dt.timedelta(minutes=16))
    with pytest.raises(AuthError, match="valid region"):
        verify(signed_at, region="eu-west-1")


# ----------------------------------------------------------------------------------------------------
# Routing and events
# ----------------------------------------------------------------------------------------------------


def test_proxy_event_has_the_rest_api_shape(api: ApiClient, local_stack: LocalStack, info: StackInfo) -> None:
    # When a signed GET with repeated query parameters reaches /items/{item_id}
    before = int(time.time() * 1000)
    response = api.get("/items/42?x=1&x=2&y=3", headers={"X-Custom": "v"})
    event = _echo(response)["event"]

    # Then the function gets API Gateway's REST v1 proxy event
    assert event["resource"] == "/items/{item_id}"
    assert event["path"] == "/items/42"
    assert event["httpMethod"] == "GET"
    assert event["pathParameters"] == {"item_id": "42"}
    assert event["queryStringParameters"] == {"x": "2", "y": "3"}
    assert event["multiValueQueryStringParameters"] == {"x": ["1", "2"], "y": ["3"]}
    assert event["headers"]["X-Custom"] == "v"
    assert event["multiValueHeaders"]["X-Custom"] == ["v"]
    assert event["headers"]["Authorization"].startswith("AWS4-HMAC-SHA256 ")
    assert event["stageVariables"] == {"flavour": "test"}
    assert event["body"] is None
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["apiId"] == _api_id(local_stack)
    assert context["stage"] == "test"
    assert context["resourcePath"] == "/items/{item_id}"
    assert context["path"] == "/test/items/42"
    assert context["httpMethod"] == "GET"
    assert context["accountId"] == info.identity("clinic-a").account_id
    assert context["requestId"] == response.headers["x-amzn-RequestId"]
    assert before <= context["requestTimeEpoch"] <= int(time.time() * 1000)
    assert context["identity"]["userAgent"] == response.request.headers["User-Agent"]
    # And the function's multiValueHeaders reach the client
    assert response.headers["X-Multi"] == "a, b"


def test_literal_segments_beat_parameters_and_proxy_matches_the_rest(api: ApiClient) -> None:
    special = _echo(api.get("/items/special"))["event"]
    children = _echo(api.get("/items/7/children"))["event"]
    proxy = _echo(api.request("PUT", "/files/a/b/c.txt", data=b"text"))["event"]

    assert special["resource"] == "/items/special"
    assert special["pathParameters"] is None
    assert children["resource"] == "/items/{item_id}/children"
    assert children["pathParameters"] == {"item_id": "7"}
    assert proxy["resource"] == "/files/{proxy+}"
    assert proxy["httpMethod"] == "PUT"
    assert proxy["pathParameters"] == {"proxy": "a/b/c.txt"}


def test_stage_prefixed_paths_route_like_execute_api_urls(api: ApiClient) -> None:
    event = _echo(api.get("/test/items/9"))["event"]

    assert event["resource"] == "/items/{item_id}"
    assert event["path"] == "/items/9"


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/nowhere"), ("POST", "/items/1"), ("GET", "/files")],
    ids=["unknown-path", "undeclared-method", "proxy-needs-a-segment"],
)
def test_unknown_routes_answer_missing_authentication_token(api: ApiClient, method: str, path: str) -> None:
    response = api.request(method, path)

    assert response.status_code == 403
    assert response.json() == {"error": {"code": "forbidden", "message": "Missing Authentication Token"}}


def test_route_with_auth_none_needs_no_signature(api: ApiClient) -> None:
    event = _echo(api.get("/public", identity=None))["event"]

    assert event["requestContext"]["identity"]["userArn"] is None
    assert event["requestContext"]["identity"]["accessKey"] is None


def test_binary_bodies_are_base64_encoded_both_ways(api: ApiClient) -> None:
    payload = bytes(range(256))

    response = api.request(
        "PUT", "/files/blob.bin", data=payload, headers={"Content-Type": "application/octet-stream"}
    )

    assert response.status_code == 200
    assert response.content == payload[::-1]


def test_cors_preflight_answers_from_the_template_without_signature(api: ApiClient) -> None:
    response = api.request(
        "OPTIONS",
        "/echo",
        identity=None,
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
    )

    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Access-Control-Allow-Methods"] == "GET,POST,PUT,OPTIONS"
    assert response.headers["Access-Control-Max-Age"] == "60"


def test_payload_over_ten_megabytes_is_rejected(api: ApiClient) -> None:
    response = api.post("/echo", data=b"x" * (MAX_PAYLOAD_BYTES + 1), identity=None)

    assert response.status_code == 413


# ----------------------------------------------------------------------------------------------------
# Function runtime behind the gateway
# ----------------------------------------------------------------------------------------------------


def test_function_runs_with_its_template_environment_and_lambda_context(
    api: ApiClient, local_stack: LocalStack, info: StackInfo
) -> None:
    answer = _echo(api.get("/items/1"))
    assert local_stack.deployed is not None
    echo = local_stack.deployed.functions["EchoFunction"]

    env = answer["env"]
    assert env["GREETING"] == "hello"
    assert env["OBSERVATIONS_BUCKET"] == info.outputs["ObservationsBucket"]  # a resolved !Ref
    assert env["AWS_ENDPOINT_URL"] == info.aws_endpoint_url
    assert env["AWS_ENDPOINT_URL_BEDROCK_RUNTIME"] == info.bedrock_endpoint_url
    assert local_stack.bedrock.context_tokens == 16_384  # LocalStackConfig.bedrock_context_tokens
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == info.region
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == echo.function_name
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128"
    assert env["AWS_LAMBDA_FUNCTION_TIMEOUT"] == "5"
    assert env["POWERTOOLS_TRACE_DISABLED"] == "true"
    assert env["AWS_ACCESS_KEY_ID"] != info.identity("clinic-a").access_key_id
    context = answer["context"]
    assert context["function_name"] == echo.function_name
    assert context["invoked_function_arn"] == echo.function_arn
    assert context["memory_limit_in_mb"] == 128
    assert 0 < context["remaining_ms"] <= 5000
    assert answer["sys_path"][0] == str(APP / "echo")


def test_function_error_is_a_502_without_details(api: ApiClient) -> None:
    response = api.get("/boom")

    assert response.status_code == 502
    assert response.json() == {"error": {"code": "internal_error", "message": "Internal server error"}}
    assert "secret" not in response.text


def test_function_timeout_kills_the_sandbox_and_the_next_call_gets_a_fresh_one(api: ApiClient) -> None:
    started = time.monotonic()
    timed_out = api.get("/sleep")
    elapsed = time.monotonic() - started

    assert timed_out.status_code == 502
    assert 5 <= elapsed < 10
    assert _echo(api.get("/items/1"))["context"]["remaining_ms"] > 0


def test_invoke_returns_lambda_invoke_results(local_stack: LocalStack) -> None:
    ok = local_stack.invoke("EchoFunction", {"resource": "/x", "isBase64Encoded": False})
    failed = local_stack.invoke("EchoFunction", {"resource": "/boom"})

    assert ok["StatusCode"] == 200
    assert "FunctionError" not in ok
    assert ok["Payload"]["statusCode"] == 200
    assert failed["FunctionError"] == "Unhandled"
    assert failed["Payload"] == {"errorType": "RuntimeError", "errorMessage": "secret internal detail"}


# ----------------------------------------------------------------------------------------------------
# Stage throttling (a gateway over the same API, with a tiny bucket, driven through WSGI)
# ----------------------------------------------------------------------------------------------------


def test_stage_throttling_answers_429_beyond_the_burst(local_stack: LocalStack, info: StackInfo) -> None:
    assert local_stack.deployed is not None
    api = local_stack.deployed.apis[0]
    throttled_api = dataclasses.replace(
        api,
        stage={
            **api.stage,
            "MethodSettings": [
                {
                    "ResourcePath": "/*",
                    "HttpMethod": "*",
                    "ThrottlingBurstLimit": 2,
                    "ThrottlingRateLimit": 0.001,
                }
            ],
        },
    )

    def invoke(function: str, event: dict[str, Any]) -> dict[str, Any]:
        return {"StatusCode": 200, "Payload": {"statusCode": 204}}

    gateway = LocalApiGateway(
        throttled_api,
        invoke,
        IdentityRegistry(),
        region=info.region,
        account_id="123456789012",
        log=lambda _: None,
    )
    client = Client(gateway.wsgi_app)

    statuses = [client.get("/public").status_code for _ in range(3)]

    assert statuses == [204, 204, 429]
    assert client.get("/public").get_json()["error"]["message"] == "Too Many Requests"


def test_route_table_precedence() -> None:
    table = RouteTable.from_openapi(
        {
            "paths": {
                "/{proxy+}": {"x-amazon-apigateway-any-method": _proxy("arn:aws:lambda:r:1:function:any")},
                "/a/{id}": {"get": _proxy("arn:aws:lambda:r:1:function:param")},
                "/a/b": {"get": _proxy("arn:aws:lambda:r:1:function:literal")},
                "/": {"get": _proxy("arn:aws:lambda:r:1:function:root")},
            }
        }
    )

    def target(method: str, path: str) -> tuple[str | None, dict[str, str]] | None:
        found = table.match(path, method)
        return None if found is None else (found[0].function_arn, found[1])

    assert target("GET", "/a/b") == ("arn:aws:lambda:r:1:function:literal", {})
    assert target("GET", "/a/c") == ("arn:aws:lambda:r:1:function:param", {"id": "c"})
    # the most specific resource is chosen first; a method it lacks is not looked up elsewhere
    assert target("POST", "/a/c") is None
    assert target("GET", "/a/c/d") == ("arn:aws:lambda:r:1:function:any", {"proxy": "a/c/d"})
    assert target("GET", "/") == ("arn:aws:lambda:r:1:function:root", {})
    assert target("DELETE", "/") is None


def _proxy(arn: str) -> dict[str, Any]:
    return {
        "x-amazon-apigateway-integration": {
            "type": "aws_proxy",
            "httpMethod": "POST",
            "uri": f"arn:aws:apigateway:r:lambda:path/2015-03-31/functions/{arn}/invocations",
        },
        "security": [{"NONE": []}],
    }


def test_content_sha256_header_must_match_the_body(info: StackInfo) -> None:
    clinic_a = info.identity("clinic-a")
    url = f"{info.api_url}/echo"
    body = b'{"a": 1}'
    headers = sign_request(
        "POST",
        url,
        credentials=clinic_a.credentials(),
        region=info.region,
        body=body,
        headers={
            "X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest(),
            "Content-Type": "application/json",
        },
    )

    accepted = requests.post(url, data=body, headers=headers, timeout=10)
    rejected = requests.post(url, data=b'{"a": 2}', headers=headers, timeout=10)

    assert accepted.status_code == 200
    assert rejected.status_code == 403
    assert json.loads(accepted.json()["event"]["body"]) == {"a": 1}
