"""Local API Gateway (REST, Lambda proxy integration) serving the routes of the template's REST API.

Everything comes from the deployed template (:class:`~medsum_local.deploy.DeployedApi`): the OpenAPI
body SAM generates from the functions' ``Api`` events (paths with ``{params}`` and ``{proxy+}``,
methods including ``x-amazon-apigateway-any-method``, per-method ``security`` = ``AWS_IAM`` or none,
the ``aws_proxy`` integration URI naming the function, the ``mock`` CORS preflight integrations), the
gateway responses, the binary media types, the stage's throttling and variables, and the access log
format.

Requests to ``AWS_IAM`` methods must carry a SigV4 signature for service ``execute-api`` in the stack's
region; it is recomputed with botocore's own signer (:class:`botocore.auth.SigV4Auth`) over what was
received and compared in constant time. The caller's IAM user becomes ``requestContext.identity``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from medsum_local.deploy import DeployedApi
from medsum_local.identities import Identity, IdentityRegistry
from medsum_local.logs import ApiRequest, mask_path
from medsum_local.ratelimit import TokenBucket

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "AuthError",
    "LocalApiGateway",
    "Route",
    "RouteTable",
    "verify_sigv4",
]

#: API Gateway's request payload limit.
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
#: How far X-Amz-Date may be from the gateway's clock.
MAX_CLOCK_SKEW = dt.timedelta(minutes=15)
_SIGV4_ALGORITHM = "AWS4-HMAC-SHA256"
_SIGV4_TIMESTAMP = "%Y%m%dT%H%M%SZ"
_UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"

#: Default status of each gateway response type (API Gateway's documented defaults).
_DEFAULT_STATUS: dict[str, int] = {
    "ACCESS_DENIED": 403,
    "API_CONFIGURATION_ERROR": 500,
    "BAD_REQUEST_BODY": 400,
    "BAD_REQUEST_PARAMETERS": 400,
    "EXPIRED_TOKEN": 403,
    "INTEGRATION_FAILURE": 504,
    "INTEGRATION_TIMEOUT": 504,
    "INVALID_SIGNATURE": 403,
    "MISSING_AUTHENTICATION_TOKEN": 403,
    "REQUEST_TOO_LARGE": 413,
    "RESOURCE_NOT_FOUND": 404,
    "THROTTLED": 429,
    "UNAUTHORIZED": 401,
    "UNSUPPORTED_MEDIA_TYPE": 415,
}
_HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch")
_ANY_METHOD_KEY = "x-amazon-apigateway-any-method"
_FUNCTION_ARN_IN_URI = re.compile(r"/functions/(?P<arn>arn:[^/]+)/invocations")
_CONTEXT_VARIABLE = re.compile(
    r"\$(?:\{context\.(?P<braced>[A-Za-z0-9_.]+)\}|context\.(?P<plain>[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*))"
)


# ----------------------------------------------------------------------------------------------------
# Routes
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """One method of one resource of the REST API.

    Attributes
    ----------
    resource_path
        The resource as declared (``/reports/{report_id}``).
    method
        Upper-case HTTP method, or ``ANY``.
    authorization
        ``AWS_IAM`` or ``NONE``.
    function_arn
        The ``aws_proxy`` integration's function, or None for a ``mock`` integration.
    mock_status, mock_headers
        Status and headers of a ``mock`` integration (the CORS preflight answer).
    """

    resource_path: str
    method: str
    authorization: str
    function_arn: str | None = None
    mock_status: int = 200
    mock_headers: tuple[tuple[str, str], ...] = ()


@dataclass
class _Node:
    literal: dict[str, _Node] = field(default_factory=dict)
    param: tuple[str, _Node] | None = None
    greedy: tuple[str, _Node] | None = None
    resource_path: str | None = None
    methods: dict[str, Route] = field(default_factory=dict)


def _literal_header_value(value: Any) -> str | None:
    """``"'*'"`` -> ``"*"``; mapping expressions (``method.request...``) are not literals."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1]
    return None


def _authorization(operation: Mapping[str, Any], body: Mapping[str, Any]) -> str:
    security = operation.get("security", body.get("security")) or []
    definitions: Mapping[str, Any] = body.get("securityDefinitions") or (body.get("components") or {}).get(
        "securitySchemes", {}
    )
    for requirement in security:
        for name in requirement:
            scheme = definitions.get(name, {})
            if name == "AWS_IAM" or scheme.get("x-amazon-apigateway-authtype") == "awsSigv4":
                return "AWS_IAM"
            if name != "NONE":
                raise ValueError(f"authorizer {name!r} is not supported by the local gateway")
    return "NONE"


class RouteTable:
    """The REST API's resources as a tree, matched the way API Gateway does.

    A literal path segment beats a ``{param}`` segment, which beats a greedy ``{proxy+}``; a greedy
    variable matches one or more segments. Within a resource an explicit method beats ``ANY``.
    """

    def __init__(self, routes: Iterable[Route]) -> None:
        self._root = _Node()
        self.routes = list(routes)
        for route in self.routes:
            node = self._root
            for segment in [s for s in route.resource_path.split("/") if s]:
                if segment.startswith("{") and segment.endswith("+}"):
                    name = segment[1:-2]
                    if node.greedy is None:
                        node.greedy = (name, _Node())
                    node = node.greedy[1]
                elif segment.startswith("{") and segment.endswith("}"):
                    name = segment[1:-1]
                    if node.param is None:
                        node.param = (name, _Node())
                    elif node.param[0] != name:
                        raise ValueError(f"conflicting path parameters {node.param[0]!r} and {name!r}")
                    node = node.param[1]
                else:
                    node = node.literal.setdefault(segment, _Node())
            node.resource_path = route.resource_path
            node.methods[route.method] = route

    @classmethod
    def from_openapi(cls, body: Mapping[str, Any]) -> RouteTable:
        """Build the table from an OpenAPI 2/3 body with API Gateway extensions."""
        routes: list[Route] = []
        for path, item in (body.get("paths") or {}).items():
            for key, operation in (item or {}).items():
                method = "ANY" if key == _ANY_METHOD_KEY else key.upper() if key in _HTTP_METHODS else None
                if method is None or not isinstance(operation, dict):
                    continue
                integration = operation.get("x-amazon-apigateway-integration") or {}
                kind = str(integration.get("type", "")).lower()
                authorization = _authorization(operation, body)
                if kind == "aws_proxy":
                    match = _FUNCTION_ARN_IN_URI.search(str(integration.get("uri", "")))
                    if match is None:
                        raise ValueError(
                            f"{method} {path}: cannot find the function in {integration.get('uri')}"
                        )
                    routes.append(Route(path, method, authorization, function_arn=match["arn"]))
                elif kind == "mock":
                    default = (integration.get("responses") or {}).get("default") or {}
                    headers = tuple(
                        (name.removeprefix("method.response.header."), literal)
                        for name, value in (default.get("responseParameters") or {}).items()
                        if (literal := _literal_header_value(value)) is not None
                    )
                    routes.append(
                        Route(
                            path,
                            method,
                            authorization,
                            mock_status=int(default.get("statusCode", 200)),
                            mock_headers=headers,
                        )
                    )
                else:
                    raise ValueError(f"{method} {path}: integration type {kind!r} is not supported locally")
        return cls(routes)

    def match(self, path: str, method: str) -> tuple[Route, dict[str, str]] | None:
        """Return the route for ``method path`` and its path parameters, or None (API Gateway's 403)."""
        segments = [s for s in path.split("/") if s]
        found = self._match(self._root, segments, 0)
        if found is None:
            return None
        node, params = found
        route = node.methods.get(method.upper()) or node.methods.get("ANY")
        return (route, params) if route is not None else None

    def _match(self, node: _Node, segments: list[str], index: int) -> tuple[_Node, dict[str, str]] | None:
        if index == len(segments):
            return (node, {}) if node.resource_path is not None else None
        segment = segments[index]
        child = node.literal.get(segment)
        if child is not None and (found := self._match(child, segments, index + 1)) is not None:
            return found
        if node.param is not None and (found := self._match(node.param[1], segments, index + 1)) is not None:
            found[1][node.param[0]] = segment
            return found
        if node.greedy is not None and node.greedy[1].resource_path is not None:
            return node.greedy[1], {node.greedy[0]: "/".join(segments[index:])}
        return None


# ----------------------------------------------------------------------------------------------------
# SigV4
# ----------------------------------------------------------------------------------------------------


class AuthError(Exception):
    """A request failed IAM authorization; ``response_type`` is the gateway response to answer."""

    def __init__(self, response_type: str, message: str) -> None:
        super().__init__(message)
        self.response_type = response_type
        self.message = message


class _ReceivedRequestSigner(SigV4Auth):  # type: ignore[misc]
    """botocore's SigV4 signer, made to sign exactly the headers the client says it signed."""

    def __init__(self, credentials: Credentials, service: str, region: str, signed: HTTPHeaders) -> None:
        super().__init__(credentials, service, region)
        self._signed = signed

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        return self._signed


def _parse_authorization(value: str) -> dict[str, str]:
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != _SIGV4_ALGORITHM:
        raise AuthError(
            "INCOMPLETE_SIGNATURE",
            f"Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
            f"Authorization={value.split(' ', 1)[0]}",
        )
    parts: dict[str, str] = {}
    for item in rest.split(","):
        key, sep, val = item.strip().partition("=")
        if sep:
            parts[key] = val
    missing = [name for name in ("Credential", "SignedHeaders", "Signature") if not parts.get(name)]
    if missing:
        raise AuthError(
            "INCOMPLETE_SIGNATURE",
            " ".join(f"Authorization header requires '{name}' parameter." for name in missing),
        )
    return parts


def verify_sigv4(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    identities: IdentityRegistry,
    region: str,
    service: str = "execute-api",
    now: dt.datetime | None = None,
) -> Identity:
    """Verify a SigV4-signed request the way API Gateway's ``AWS_IAM`` authorization does.

    Parameters
    ----------
    method, raw_path, raw_query
        The request line as received (path and query still percent-encoded).
    headers
        Every received header, as (name, value) pairs.
    body
        The received body.
    identities
        Known access keys.
    region, service
        The credential scope the signature must have.
    now
        The gateway's clock (UTC); default: now.

    Returns
    -------
    Identity
        The IAM user whose key signed the request.

    Raises
    ------
    AuthError
        Missing, malformed, expired, mis-scoped, unknown-key or mismatching signatures.
    """
    received: dict[str, list[str]] = {}
    for name, value in headers:
        received.setdefault(name.lower(), []).append(value)
    authorization = (received.get("authorization") or [""])[0]
    if not authorization:
        raise AuthError("MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token")
    parts = _parse_authorization(authorization)

    scope = parts["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise AuthError(
            "INCOMPLETE_SIGNATURE", f"Credential should be scoped correctly: {parts['Credential']!r}."
        )
    access_key_id, scope_date, scope_region, scope_service, _ = scope
    if scope_service != service:
        raise AuthError("INVALID_SIGNATURE", f"Credential should be scoped to correct service: '{service}'.")
    if scope_region != region:
        raise AuthError(
            "INVALID_SIGNATURE", f"Credential should be scoped to a valid region, not '{scope_region}'."
        )

    signed_names = [name.strip().lower() for name in parts["SignedHeaders"].split(";") if name.strip()]
    if "host" not in signed_names:
        raise AuthError("INVALID_SIGNATURE", "'Host' must be a 'SignedHeader' in the AWS Authorization.")
    amz_date = (received.get("x-amz-date") or [""])[0]
    if not amz_date or "x-amz-date" not in signed_names:
        raise AuthError(
            "INCOMPLETE_SIGNATURE", "Authorization header requires existence of a signed 'X-Amz-Date' header."
        )
    try:
        timestamp = dt.datetime.strptime(amz_date, _SIGV4_TIMESTAMP).replace(tzinfo=dt.UTC)
    except ValueError:
        raise AuthError("INVALID_SIGNATURE", f"Invalid X-Amz-Date {amz_date!r}.") from None
    clock = now or dt.datetime.now(dt.UTC)
    if abs(clock - timestamp) > MAX_CLOCK_SKEW:
        raise AuthError(
            "INVALID_SIGNATURE",
            f"Signature expired: {amz_date} is now earlier than "
            f"{(clock - MAX_CLOCK_SKEW).strftime(_SIGV4_TIMESTAMP)} "
            f"({clock.strftime(_SIGV4_TIMESTAMP)} - 15 min.)",
        )
    if scope_date != amz_date[:8]:
        raise AuthError("INVALID_SIGNATURE", "Credential date does not match X-Amz-Date.")

    identity = identities.get(access_key_id)
    if identity is None or "x-amz-security-token" in received:
        raise AuthError("ACCESS_DENIED", "The security token included in the request is invalid.")

    signed = HTTPHeaders()
    for name in signed_names:
        if name not in received:
            raise AuthError("INVALID_SIGNATURE", f"Signed header {name!r} is missing from the request.")
        for value in received[name]:
            signed[name] = value
    content_sha256 = received["x-amz-content-sha256"][0] if "x-amz-content-sha256" in received else None
    if content_sha256 is not None and content_sha256 != hashlib.sha256(body).hexdigest():
        # Either a tampered body or UNSIGNED-PAYLOAD, which execute-api does not accept.
        raise AuthError("INVALID_SIGNATURE", _mismatch_message())

    request = AWSRequest(method=method, url=f"http://{signed['host']}{raw_path}", data=body)
    if raw_query:
        request.url += f"?{raw_query}"
    if content_sha256 is not None:
        request.headers["X-Amz-Content-SHA256"] = content_sha256
    request.context["timestamp"] = amz_date
    signer = _ReceivedRequestSigner(
        Credentials(identity.access_key_id, identity.secret_access_key), service, region, signed
    )
    canonical_request = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical_request), request)
    if not hmac.compare_digest(expected.encode(), parts["Signature"].encode()):
        raise AuthError("INVALID_SIGNATURE", _mismatch_message())
    return identity


def _mismatch_message() -> str:
    return (
        "The request signature we calculated does not match the signature you provided. Check your AWS "
        "Secret Access Key and signing method. Consult the service documentation for details."
    )


# ----------------------------------------------------------------------------------------------------
# Throttling
# ----------------------------------------------------------------------------------------------------


def _escaped_resource_path(resource_path: str) -> str:
    return "/" + resource_path.replace("/", "~1")


# ----------------------------------------------------------------------------------------------------
# The gateway
# ----------------------------------------------------------------------------------------------------

Invoker = Callable[[str, dict[str, Any]], dict[str, Any]]


@dataclass
class _Outcome:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    response_type: str = ""
    integration_latency_ms: int | str = "-"


@dataclass
class _Notes:
    """What the readable request line needs beyond the access log's context."""

    path: str = "-"
    caller: str = ""


_CLAIMED_KEY = re.compile(r"Credential=([A-Za-z0-9]+)/")


def _claimed_access_key(request: Request) -> str:
    """The access key id a request claims (SigV4 header or presigned query), verified or not."""
    found = _CLAIMED_KEY.search(request.headers.get("Authorization", ""))
    if found is not None:
        return found.group(1)
    return request.args.get("X-Amz-Credential", "").split("/", 1)[0]


class LocalApiGateway:
    """Serve one REST API of the template on ``http://host:port`` (``port=0`` picks a free port).

    Parameters
    ----------
    api
        The deployed API (routes, stage, gateway responses).
    invoke
        ``invoke(function_arn, event) -> Lambda Invoke result`` (:meth:`FunctionRuntime.invoke`).
    identities
        The access keys the SigV4 verification knows.
    region, account_id
        The stack's region and account (credential scope, ``requestContext``).
    log
        Receives each access log line (the stage's ``AccessLogSetting.Format`` rendered); default: print.
    request_log
        Receives an :class:`~medsum_local.logs.ApiRequest` per answered request (the readable log),
        whether or not the stage has an access log.
    """

    def __init__(
        self,
        api: DeployedApi,
        invoke: Invoker,
        identities: IdentityRegistry,
        *,
        region: str,
        account_id: str,
        host: str = "127.0.0.1",
        port: int = 3000,
        log: Callable[[str], None] | None = None,
        request_log: Callable[[ApiRequest], None] | None = None,
    ) -> None:
        self.api = api
        self.routes = RouteTable.from_openapi(api.body)
        self._invoke = invoke
        self._identities = identities
        self._region = region
        self._account_id = account_id
        self._host = host
        self._port = port
        self._log = log or (lambda line: print(line, flush=True))
        self._request_log = request_log
        self._binary_types = [str(t) for t in api.body.get("x-amazon-apigateway-binary-media-types") or []]
        self._buckets = self._throttling_buckets(api.stage.get("MethodSettings") or [])
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None

    # -- lifecycle -------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL of the API (no stage prefix, like ``sam local start-api``)."""
        if self._url is None:
            raise RuntimeError("gateway not started")
        return self._url

    def bind(self) -> str:
        """Open the listening socket (so the port is known before serving); return the URL."""
        if self._server is None:
            self._server = make_server(self._host, self._port, self.wsgi_app, threaded=True)
            self._url = f"http://{self._host}:{self._server.server_port}"
        return self.url

    def start(self) -> None:
        """Bind (if needed) and serve in a background thread."""
        self.bind()
        assert self._server is not None
        self._thread = threading.Thread(target=self._server.serve_forever, name="api-gateway", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving (idempotent)."""
        if self._server is not None:
            if self._thread is not None:
                self._server.shutdown()
                self._thread.join(timeout=5)
            self._server.server_close()
            self._server = None
            self._thread = None

    # -- request handling ------------------------------------------------------------------------------

    def wsgi_app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """The WSGI application (usable with any WSGI server or werkzeug's test client)."""
        request = Request(environ)
        request.max_content_length = MAX_PAYLOAD_BYTES
        started = time.monotonic()
        request_id = str(uuid.uuid4())
        context: dict[str, Any] = {
            "requestId": request_id,
            "extendedRequestId": secrets.token_urlsafe(12)[:16],
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "requestTimeEpoch": int(time.time() * 1000),
            "httpMethod": request.method,
            "protocol": environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
            "identity": {
                "sourceIp": request.remote_addr or "127.0.0.1",
                "userAgent": request.user_agent.string,
            },
        }
        notes = _Notes()
        outcome = self._handle(request, context, notes)
        response = Response(outcome.body, status=outcome.status)
        response.headers.clear()
        for name, value in outcome.headers:
            response.headers.add(name, value)
        response.headers["x-amzn-RequestId"] = request_id
        response.headers["x-amz-apigw-id"] = context["extendedRequestId"]
        context.update(
            status=outcome.status,
            responseLength=len(outcome.body),
            responseLatency=int((time.monotonic() - started) * 1000),
            integrationLatency=outcome.integration_latency_ms,
            error={"responseType": outcome.response_type or "-"},
        )
        self._access_log(context)
        if self._request_log is not None:
            self._request_log(
                ApiRequest(
                    caller=notes.caller or _claimed_access_key(request) or "-",
                    method=request.method,
                    path=notes.path,
                    status=outcome.status,
                    latency_ms=context["responseLatency"],
                    error_type=outcome.response_type,
                )
            )
        return response(environ, start_response)

    def _handle(self, request: Request, context: dict[str, Any], notes: _Notes) -> _Outcome:
        length = request.content_length
        if length is not None and length > MAX_PAYLOAD_BYTES:
            return self._gateway_response("REQUEST_TOO_LARGE", "Request Too Long", context)
        path = request.path.rstrip("/") or "/"
        # Served at the root like `sam local start-api`, and also under /{stage} like execute-api URLs
        # (links the application builds from the request's stage then resolve locally too).
        stage_prefix = f"/{self.api.stage_name}"
        if path == stage_prefix or path.startswith(stage_prefix + "/"):
            path = path[len(stage_prefix) :] or "/"
        found = self.routes.match(path, request.method)
        if found is None:
            return self._gateway_response(
                "MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token", context
            )
        route, path_parameters = found
        context["resourcePath"] = route.resource_path
        notes.path = mask_path(path)
        bucket = self._buckets.get((route.resource_path, request.method)) or self._buckets.get(("*", "*"))
        if bucket is not None and not bucket.take():
            return self._gateway_response("THROTTLED", "Too Many Requests", context)
        try:
            body = request.get_data(cache=True)
        except RequestEntityTooLarge:
            return self._gateway_response("REQUEST_TOO_LARGE", "Request Too Long", context)

        identity: Identity | None = None
        if route.authorization == "AWS_IAM":
            raw_uri = str(
                request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.path
            )
            raw_path, _, raw_query = raw_uri.encode("latin-1").decode("utf-8", "replace").partition("?")
            try:
                identity = verify_sigv4(
                    method=request.method,
                    raw_path=raw_path,
                    raw_query=raw_query,
                    headers=list(request.headers.items()),
                    body=body,
                    identities=self._identities,
                    region=self._region,
                )
            except AuthError as exc:
                return self._gateway_response(exc.response_type, exc.message, context)
            context["identity"].update(
                accessKey=identity.access_key_id,
                accountId=identity.account_id,
                caller=identity.user_id,
                user=identity.user_id,
                userArn=identity.arn,
            )
            notes.caller = identity.name

        if route.function_arn is None:
            return _Outcome(route.mock_status, list(route.mock_headers), b"{}")
        event = self._proxy_event(request, route, path, path_parameters, body, context)
        invoked = time.monotonic()
        result = self._invoke(route.function_arn, event)
        integration_ms = int((time.monotonic() - invoked) * 1000)
        outcome = self._proxy_response(result, context)
        outcome.integration_latency_ms = integration_ms
        return outcome

    def _is_binary(self, content_type: str) -> bool:
        mime = content_type.split(";", 1)[0].strip().lower()
        for pattern in self._binary_types:
            pattern = pattern.replace("~1", "/").lower()
            if pattern in ("*/*", mime) or (pattern.endswith("/*") and mime.startswith(pattern[:-1])):
                return True
        return False

    def _proxy_event(
        self,
        request: Request,
        route: Route,
        path: str,
        path_parameters: dict[str, str],
        body: bytes,
        context: dict[str, Any],
    ) -> dict[str, Any]:
        """Build API Gateway's REST (v1) Lambda proxy event."""
        multi_headers: dict[str, list[str]] = {}
        for name, value in request.headers.items():
            multi_headers.setdefault(name, []).append(value)
        client_ip = context["identity"]["sourceIp"]
        for name, value in (
            ("X-Forwarded-For", client_ip),
            ("X-Forwarded-Proto", "http"),
            ("X-Forwarded-Port", str(request.environ.get("SERVER_PORT", ""))),
            ("X-Amzn-Trace-Id", f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)}"),
        ):
            multi_headers.setdefault(name, [value])
        query: dict[str, list[str]] = {}
        raw_query = request.query_string.decode("latin-1")
        for key, value in parse_qsl(raw_query, keep_blank_values=True):
            query.setdefault(key, []).append(value)

        is_binary = bool(body) and (self._is_binary(request.content_type or ""))
        text: str | None
        if not body:
            text = None
        elif is_binary:
            text = base64.b64encode(body).decode()
        else:
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                is_binary, text = True, base64.b64encode(body).decode()

        identity = context["identity"]
        stage = self.api.stage_name
        return {
            "resource": route.resource_path,
            "path": path,
            "httpMethod": request.method,
            "headers": {name: values[-1] for name, values in multi_headers.items()},
            "multiValueHeaders": multi_headers,
            "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
            "multiValueQueryStringParameters": query or None,
            "pathParameters": dict(path_parameters) or None,
            "stageVariables": dict(self.api.stage.get("Variables") or {}) or None,
            "requestContext": {
                "resourceId": hashlib.sha1(route.resource_path.encode(), usedforsecurity=False).hexdigest()[
                    :6
                ],
                "resourcePath": route.resource_path,
                "httpMethod": request.method,
                "extendedRequestId": context["extendedRequestId"],
                "requestTime": context["requestTime"],
                "path": f"/{stage}{path}",
                "accountId": self._account_id,
                "protocol": context["protocol"],
                "stage": stage,
                "domainPrefix": self.api.api_id,
                "requestTimeEpoch": context["requestTimeEpoch"],
                "requestId": context["requestId"],
                "identity": {
                    "cognitoIdentityPoolId": None,
                    "accountId": identity.get("accountId"),
                    "cognitoIdentityId": None,
                    "caller": identity.get("caller"),
                    "sourceIp": identity["sourceIp"],
                    "principalOrgId": None,
                    "accessKey": identity.get("accessKey"),
                    "cognitoAuthenticationType": None,
                    "cognitoAuthenticationProvider": None,
                    "userArn": identity.get("userArn"),
                    "userAgent": identity.get("userAgent"),
                    "user": identity.get("user"),
                    "apiKey": None,
                    "apiKeyId": None,
                    "clientCert": None,
                },
                "domainName": request.host,
                "apiId": self.api.api_id,
            },
            "body": text,
            "isBase64Encoded": is_binary,
        }

    def _proxy_response(self, result: Mapping[str, Any], context: dict[str, Any]) -> _Outcome:
        """Map the function's proxy response (or its error) to the HTTP response."""
        if "FunctionError" in result:
            # The function failed (error, timeout, crash): API Gateway answers 502 and hides the details.
            return self._gateway_response("DEFAULT_5XX", "Internal server error", context, status=502)
        payload = result.get("Payload")
        try:
            if not isinstance(payload, dict):
                raise TypeError("not an object")
            status = int(payload.get("statusCode", 200))
            headers: list[tuple[str, str]] = []
            seen: set[str] = set()
            for name, values in (payload.get("multiValueHeaders") or {}).items():
                seen.add(name.lower())
                headers.extend((str(name), str(value)) for value in values)
            for name, value in (payload.get("headers") or {}).items():
                if name.lower() not in seen:
                    headers.append((str(name), str(value)))
            raw = payload.get("body")
            if raw is None:
                body = b""
            elif payload.get("isBase64Encoded"):
                body = base64.b64decode(str(raw), validate=True)
            else:
                body = str(raw).encode()
        except (TypeError, ValueError, AttributeError, binascii.Error):
            # "Malformed Lambda proxy response"
            return self._gateway_response("DEFAULT_5XX", "Internal server error", context, status=502)
        if not any(name.lower() == "content-type" for name, _ in headers):
            headers.append(("Content-Type", "application/json"))
        return _Outcome(status, headers, body)

    def _gateway_response(
        self, response_type: str, message: str, context: dict[str, Any], *, status: int | None = None
    ) -> _Outcome:
        """Render a gateway response the way the API's ``GatewayResponses`` define it."""
        default_status = status or _DEFAULT_STATUS.get(response_type, 403)
        responses = self.api.gateway_responses
        fallback = "DEFAULT_5XX" if default_status >= 500 else "DEFAULT_4XX"
        definition = responses.get(response_type) or responses.get(fallback) or {}
        configured_status = definition.get("statusCode") if response_type in responses else None
        final_status = int(configured_status or default_status)
        context["error"] = {
            "message": message,
            "messageString": json.dumps(message),
            "responseType": response_type,
        }
        headers = [
            (name.removeprefix("gatewayresponse.header."), literal)
            for name, value in (definition.get("responseParameters") or {}).items()
            if name.startswith("gatewayresponse.header.")
            and (literal := _literal_header_value(value)) is not None
        ]
        templates = definition.get("responseTemplates") or {}
        template = templates.get("application/json")
        body = _render(template, context) if template is not None else json.dumps({"message": message})
        headers.append(("Content-Type", "application/json"))
        headers.append(("x-amzn-ErrorType", _error_type_header(response_type)))
        return _Outcome(final_status, headers, body.encode(), response_type=response_type)

    # -- throttling and logs ---------------------------------------------------------------------------

    def _throttling_buckets(
        self, settings: Iterable[Mapping[str, Any]]
    ) -> dict[tuple[str, str], TokenBucket]:
        buckets: dict[tuple[str, str], TokenBucket] = {}
        escaped = {
            _escaped_resource_path(route.resource_path): route.resource_path for route in self.routes.routes
        }
        for setting in settings:
            burst, rate = setting.get("ThrottlingBurstLimit"), setting.get("ThrottlingRateLimit")
            if burst is None and rate is None:
                continue
            bucket = TokenBucket(
                float(rate if rate is not None else 10_000), int(burst if burst is not None else 5_000)
            )
            resource, method = str(setting.get("ResourcePath", "/*")), str(setting.get("HttpMethod", "*"))
            if resource == "/*" and method == "*":
                buckets["*", "*"] = bucket
            elif resource in escaped:
                buckets[escaped[resource], method.upper()] = bucket
        return buckets

    def _access_log(self, context: Mapping[str, Any]) -> None:
        setting = self.api.stage.get("AccessLogSetting") or {}
        template = setting.get("Format")
        if not template:
            return
        self._log(_render(str(template), context))


def _error_type_header(response_type: str) -> str:
    return {
        "MISSING_AUTHENTICATION_TOKEN": "MissingAuthenticationTokenException",
        "INVALID_SIGNATURE": "InvalidSignatureException",
        "INCOMPLETE_SIGNATURE": "IncompleteSignatureException",
        "ACCESS_DENIED": "UnrecognizedClientException",
        "THROTTLED": "TooManyRequestsException",
        "REQUEST_TOO_LARGE": "RequestTooLargeException",
    }.get(response_type, "InternalServerErrorException" if response_type == "DEFAULT_5XX" else "")


def _render(template: str, context: Mapping[str, Any]) -> str:
    """Substitute ``$context.x.y`` / ``${context.x.y}`` variables (missing ones render as ``-``)."""

    def lookup(match: re.Match[str]) -> str:
        name = match["braced"] or match["plain"]
        value: Any = context
        for part in name.split("."):
            if not isinstance(value, Mapping) or part not in value:
                return "-"
            value = value[part]
        return "-" if value is None else str(value)

    return _CONTEXT_VARIABLE.sub(lookup, template)
