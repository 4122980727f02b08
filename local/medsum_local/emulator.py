"""The embedded AWS emulator: moto's threaded server, plus boto3 clients pointed at it.

Everything AWS-shaped in the offline stack (DynamoDB, SQS, SNS, S3, IAM, KMS, Lambda metadata,
CloudFormation, Step Functions, ...) lives in this one in-process moto server. Functions reach it
through ``AWS_ENDPOINT_URL``; the stack's own machinery uses :meth:`Emulator.client`.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import socket
import threading
import time
import urllib.request
from collections.abc import Iterable
from typing import Any

import boto3
from botocore.config import Config

__all__ = [
    "DUMMY_ACCESS_KEY_ID",
    "DUMMY_SECRET_ACCESS_KEY",
    "MOTO_ACCOUNT_ID",
    "Emulator",
    "speed_up_dynamodb_transactions",
    "speed_up_sqs",
]

#: Credentials the stack's own clients and the function sandboxes use against moto. moto accepts any
#: credentials; these are deliberately not the identities' keys, which only the API gateway checks.
DUMMY_ACCESS_KEY_ID = "AKIAMEDSUMLOCAL00000"
DUMMY_SECRET_ACCESS_KEY = "medsum-local-dummy-secret"  # noqa: S105 - a placeholder moto ignores

#: The account moto creates every resource in (its default).
MOTO_ACCOUNT_ID = "123456789012"

_CLIENT_CONFIG = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=60)


class _AtomicDynamoDB:
    """WSGI middleware: one DynamoDB request at a time.

    DynamoDB evaluates a ``ConditionExpression`` and applies the write atomically; moto checks and then
    writes without a lock, so two concurrent conditional updates of one item can both succeed (seen
    under load). The application's exactly-once state machine relies on that atomicity, so the emulator
    serializes DynamoDB calls (they are short; nothing else waits on them).
    """

    def __init__(self, app: Any) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB_"):
            with self._lock:
                return list(self._app(environ, start_response))
        result: Iterable[bytes] = self._app(environ, start_response)
        return result


def speed_up_sqs() -> None:
    """Make moto's SQS messages answer "visible?"/"delayed?" from ``time.time()``.

    moto evaluates both for every message of a queue on every send and receive (queue attributes and
    the visible-message list), each through several ``datetime`` conversions; with a thousand messages
    queued, a batch of 1,000 reports spent minutes there. ``time.time()`` gives the same milliseconds
    (freezegun patches both). Idempotent.
    """
    from moto.sqs.models import Message

    if getattr(Message, "_medsum_fast_clock", False):
        return

    def visible(self: Any) -> bool:
        return bool(time.time() * 1000.0 > self.visible_at)

    def delayed(self: Any) -> bool:
        return bool(time.time() * 1000.0 < self.delayed_until)

    Message.visible = property(visible)  # type: ignore[assignment,method-assign]
    Message.delayed = property(delayed)  # type: ignore[assignment,method-assign]
    Message._medsum_fast_clock = True  # type: ignore[attr-defined]


def speed_up_dynamodb_transactions() -> None:
    """Make moto's ``TransactWriteItems`` undo with the items it touches, not copies of whole tables.

    moto deep-copies every table a transaction names before applying it, to restore them if the
    transaction is cancelled. Every report transition here is a transaction on ``PatientReports`` and
    ``Batches``, so with a few thousand reports stored most of the emulator's time went into those
    copies (most of its samples while a 1,000-item batch ran). This keeps the same all-or-nothing
    outcome: the touched items are saved before the transaction and put back (or deleted again) if it
    fails. Idempotent.
    """
    from moto.dynamodb import models as dynamodb_models
    from moto.dynamodb.models.table import Table

    backend_class = dynamodb_models.DynamoDBBackend
    if getattr(backend_class, "_medsum_item_undo", False):
        return
    original = backend_class.transact_write_items
    table_class = Table

    class _TablesAreNotCopied:
        """``copy`` as moto's DynamoDB module sees it: tables are returned as they are."""

        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            return value if isinstance(value, table_class) else copy.deepcopy(value, memo)

        def __getattr__(self, name: str) -> Any:
            return getattr(copy, name)

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        undo: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
        for entry in transact_items:
            with contextlib.suppress(Exception):  # invalid entries are moto's to reject
                op_type, op = next(iter(entry.items()))
                table = self.get_table(op["TableName"])
                if op_type == "Put":
                    names = [n for n in (table.hash_key_attr, table.range_key_attr) if n]
                    key = {n: op["Item"][n] for n in names}
                else:
                    key = op["Key"]
                current = self.get_item(op["TableName"], key)
                undo.append((op["TableName"], key, current.to_json()["Attributes"] if current else None))
        try:
            original(self, transact_items)
        except Exception:
            for table_name, key, attributes in reversed(undo):
                if attributes is None:
                    with contextlib.suppress(Exception):
                        self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, attributes)
            raise

    setattr(dynamodb_models, "copy", _TablesAreNotCopied())  # noqa: B010 - the module's own name
    backend_class.transact_write_items = transact_write_items  # type: ignore[method-assign]
    backend_class._medsum_item_undo = True  # type: ignore[attr-defined]


def _server_class() -> type[Any]:
    # Imported lazily: moto is heavy and only the stack process needs it.
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from moto.server import ThreadedMotoServer
    from werkzeug.serving import make_server

    class EmulatorServer(ThreadedMotoServer):
        """moto's ThreadedMotoServer, with DynamoDB requests serialized (see :class:`_AtomicDynamoDB`)."""

        def _server_entry(self) -> None:
            app = _AtomicDynamoDB(DomainDispatcherApplication(create_backend_app))
            self._server = make_server(
                self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
            )
            self._server_ready_event.set()
            self._server.serve_forever()

    return EmulatorServer


class Emulator:
    """moto's ``ThreadedMotoServer`` on ``host:port`` (``port=0`` picks a free port).

    Parameters
    ----------
    host
        Interface to listen on.
    port
        TCP port; 0 lets the OS choose (read it back from :attr:`url`).
    region
        Default region of the clients made by :meth:`client`.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 4566, region: str = "us-east-1") -> None:
        self._host = host
        self._port = port
        self.region = region
        self._server: Any = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """The endpoint URL (``http://host:port``); only valid after :meth:`start`."""
        if self._url is None:
            raise RuntimeError("emulator not started")
        return self._url

    @property
    def account_id(self) -> str:
        """The AWS account id moto uses for every resource."""
        return MOTO_ACCOUNT_ID

    #: moto keeps its state in module globals, so one process hosts one emulator at a time.
    _running = False

    def start(self) -> None:
        """Start the server thread and wait until it accepts connections.

        Raises
        ------
        RuntimeError
            If another emulator is running in this process (they would share moto's state).
        OSError
            If the port is taken.
        """
        if Emulator._running:
            raise RuntimeError(
                "an emulator is already running in this process (moto's state is process-wide)"
            )
        # moto's werkzeug server logs every request at INFO; the stack's stdout is for function logs.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        if self._port:
            # ThreadedMotoServer binds inside its thread and would wait forever if the port is taken.
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind((self._host, self._port))
                except OSError as exc:
                    address = f"{self._host}:{self._port}"
                    raise OSError(exc.errno, f"emulator port {address} is not free: {exc}") from exc
        speed_up_sqs()
        speed_up_dynamodb_transactions()
        server = _server_class()(ip_address=self._host, port=self._port, verbose=False)
        server.start()
        Emulator._running = True
        host, port = server.get_host_and_port()
        self._server = server
        self._url = f"http://{host}:{port}"
        # moto's backends are process-wide: start from an empty account, like a fresh AWS account.
        self.reset()

    def reset(self) -> None:
        """Delete every resource of the emulator (moto's ``/moto-api/reset``)."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")  # noqa: S310 - http://host
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the local emulator
            response.read()

    def stop(self) -> None:
        """Stop the server (idempotent)."""
        if self._server is not None:
            with contextlib.suppress(OSError):
                self.reset()  # free what the stack created; the next emulator in this process starts empty
            self._server.stop()
            self._server = None
            Emulator._running = False

    def client(self, service: str, region: str | None = None) -> Any:
        """Return a boto3 client for ``service`` pointed at the emulator."""
        return boto3.session.Session().client(
            service,
            endpoint_url=self.url,
            region_name=region or self.region,
            aws_access_key_id=DUMMY_ACCESS_KEY_ID,
            aws_secret_access_key=DUMMY_SECRET_ACCESS_KEY,
            config=_CLIENT_CONFIG,
        )
