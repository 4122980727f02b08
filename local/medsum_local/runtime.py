"""Local Lambda runtime: the real handlers in 'spawn' worker processes, one pool per function.

Each pool slot is a *sandbox*: a separate Python process started with the ``spawn`` method whose
``os.environ`` is exactly the function's environment (template variables resolved against the deployed
stack, plus the local endpoints), whose ``sys.path`` starts with the function's ``CodeUri`` directory and
then its layers, and which imports the handler once (the cold start) and then serves invocations one
at a time, like a Lambda execution environment. A pool has as many sandboxes as the function's
concurrency, so at most that many invocations run at once; further callers wait for a free sandbox.

An invocation that raises answers an error result (``errorType`` / ``errorMessage``, as Lambda's Invoke
API does); one that outlives the function's ``Timeout`` is killed (``Sandbox.Timedout``) and its sandbox
is replaced by a fresh one on the next invocation. A sandbox process that dies under an invocation (an
``os._exit``, an out-of-memory kill, a ``kill -9`` of its pid) fails that invocation with
``Runtime.ExitError``, as a crashed Lambda environment does, and is replaced the same way.

:meth:`FunctionRuntime.sandboxes` lists the sandboxes (function, index, pid, busy, the request id of the
invocation it runs and since when), and each ``platform.initReport`` record carries the new process's
``pid``: what a chaos test needs to kill a sandbox in the middle of its work.

This module is imported by every sandbox process at start-up, so it imports the standard library only.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

__all__ = [
    "FunctionRuntime",
    "FunctionSpec",
    "LambdaContext",
    "LineSink",
    "UnknownFunctionError",
    "is_error_result",
]

#: Lambda's own limit on a function's init phase; a sandbox that cannot import its handler in this
#: time is killed and the invocation fails.
INIT_TIMEOUT_SECONDS = 30.0
#: Extra time the parent waits beyond a function's Timeout before declaring it timed out (the sandbox
#: itself stops at the deadline only if the handler cooperates, so the parent enforces it).
_TIMEOUT_GRACE_SECONDS = 0.25


@dataclass(frozen=True)
class FunctionSpec:
    """Everything needed to run one function of the template locally.

    Attributes
    ----------
    logical_id
        Logical id in the template (``ApiFunction``).
    function_name
        Physical name of the deployed function (``medsum-ApiFunction-ABC123``).
    function_arn
        ARN of the deployed function.
    handler
        ``module.attribute`` (``app.lambda_handler``).
    code_dir
        Local directory of the function's ``CodeUri``; first on the sandbox's ``sys.path``.
    layer_dirs
        Local directories of the function's layers (``ContentUri``), next on ``sys.path``.
    timeout_seconds
        The function's ``Timeout``.
    memory_mb
        The function's ``MemorySize`` (reported through the context; not enforced).
    environment
        The complete ``os.environ`` of the sandbox.
    concurrency
        Number of sandboxes, i.e. of concurrent invocations.
    """

    logical_id: str
    function_name: str
    function_arn: str
    handler: str
    code_dir: str
    layer_dirs: tuple[str, ...]
    timeout_seconds: int
    memory_mb: int
    environment: Mapping[str, str]
    concurrency: int = 1
    log_group_name: str = field(default="")


#: Receives the lines one sandbox prints on stdout and stderr, one call per line (without the newline).
LineSink = Callable[[str], None]


class UnknownFunctionError(KeyError):
    """Raised by :meth:`FunctionRuntime.invoke` for a function that is not in the runtime."""


def is_error_result(result: Mapping[str, Any]) -> bool:
    """Tell whether an :meth:`FunctionRuntime.invoke` result is a function error."""
    return "FunctionError" in result


# ----------------------------------------------------------------------------------------------------
# Sandbox side (runs in the spawned process)
# ----------------------------------------------------------------------------------------------------


class LambdaContext:
    """The ``context`` object handed to a handler, with the attributes of AWS's Python runtime."""

    def __init__(
        self,
        *,
        function_name: str,
        function_arn: str,
        memory_mb: int,
        request_id: str,
        log_group_name: str,
        log_stream_name: str,
        deadline_monotonic: float,
    ) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function_arn
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = request_id
        self.log_group_name = log_group_name
        self.log_stream_name = log_stream_name
        self.identity: Any = None
        self.client_context: Any = None
        self.tenant_id: str | None = None
        self._deadline = deadline_monotonic

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function's Timeout."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _error_payload(exc: BaseException, error_type: str | None = None) -> dict[str, str]:
    return {"errorType": error_type or type(exc).__name__, "errorMessage": str(exc)}


def _log_runtime_error(kind: str, exc: BaseException, request_id: str | None) -> None:
    """Log an unhandled error the way Lambda's runtime does: one JSON line, with the stack trace."""
    record = {
        "level": "ERROR",
        "message": kind,
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "requestId": request_id,
        "stackTrace": traceback.format_exception(exc),
    }
    print(json.dumps(record), file=sys.stderr, flush=True)


def _sandbox_main(conn: Connection, boot: dict[str, Any], output: Connection | None = None) -> None:
    """Entry point of a sandbox process: set the environment up, import the handler, serve invokes.

    With ``output``, the process's stdout and stderr (file descriptors 1 and 2, so the handler's
    loggers and warnings too) go into that pipe, which the parent reads, as Lambda's runtime sends a
    function's output to CloudWatch; without it they are the parent's.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the stack; it stops us itself.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    if output is not None:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        for descriptor in (1, 2):
            os.dup2(output.fileno(), descriptor)
        output.close()
    os.environ.clear()
    os.environ.update(boot["environment"])
    code_dir: str = boot["code_dir"]
    # Like /var/task, /opt/python and the runtime's own libraries: the code, its layers, then the
    # interpreter's standard library and site-packages (which stand in for what `sam build` bundles).
    prefixes = tuple({sys.prefix, sys.base_prefix, sys.exec_prefix})
    inherited = [p for p in sys.path if p and os.path.abspath(p).startswith(prefixes)]
    sys.path[:] = [code_dir, *boot["layer_dirs"], *inherited]
    os.chdir(code_dir)
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(line_buffering=True)

    module_name, _, attribute = str(boot["handler"]).rpartition(".")
    try:
        handler: Callable[[Any, LambdaContext], Any] = getattr(
            importlib.import_module(module_name), attribute
        )
    except Exception as exc:
        _log_runtime_error("init failed", exc, None)
        if isinstance(exc, ImportError):
            error_type = "Runtime.ImportModuleError"
        elif isinstance(exc, AttributeError):
            error_type = "Runtime.HandlerNotFound"
        else:  # the module raised while initializing
            error_type = type(exc).__name__
        conn.send(("init_error", _error_payload(exc, error_type)))
        return
    conn.send(("ready", None))

    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "stop":
            return
        _, request_id, event_json = message
        context = LambdaContext(
            function_name=boot["function_name"],
            function_arn=boot["function_arn"],
            memory_mb=boot["memory_mb"],
            request_id=request_id,
            log_group_name=boot["log_group_name"],
            log_stream_name=boot["log_stream_name"],
            deadline_monotonic=time.monotonic() + float(boot["timeout_seconds"]),
        )
        try:
            result = handler(json.loads(event_json), context)
        except Exception as exc:
            _log_runtime_error("invocation failed", exc, request_id)
            conn.send(("error", _error_payload(exc)))
            continue
        try:
            payload = json.dumps(result)
        except (TypeError, ValueError) as exc:
            conn.send(("error", _error_payload(exc, "Runtime.MarshalError")))
            continue
        conn.send(("ok", payload))


# ----------------------------------------------------------------------------------------------------
# Parent side
# ----------------------------------------------------------------------------------------------------


def _default_log(record: Mapping[str, Any]) -> None:
    print(json.dumps(record), flush=True)


class _Sandbox:
    """Parent-side handle of one sandbox process (started lazily, replaced after a timeout or crash)."""

    def __init__(
        self,
        spec: FunctionSpec,
        index: int,
        log: Callable[[Mapping[str, Any]], None],
        output: Callable[[str], LineSink] | None = None,
    ) -> None:
        self._spec = spec
        self._index = index
        self._log = log
        self._output = output
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None
        self._pump: threading.Thread | None = None
        self._request: tuple[str, float] | None = None  # (request id, time.time() it started)

    @property
    def warm(self) -> bool:
        return self._process is not None and self._process.is_alive()

    def describe(self) -> dict[str, Any]:
        """``{function, index, pid, busy, request_id, busy_since}`` (pid None: no process yet)."""
        process, request = self._process, self._request
        return {
            "function": self._spec.logical_id,
            "index": self._index,
            "pid": process.pid if process is not None else None,
            "busy": request is not None,
            "request_id": request[0] if request is not None else None,
            "busy_since": request[1] if request is not None else None,
        }

    def _boot_payload(self) -> dict[str, Any]:
        spec = self._spec
        stream = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"
        return {
            "environment": dict(spec.environment),
            "code_dir": spec.code_dir,
            "layer_dirs": list(spec.layer_dirs),
            "handler": spec.handler,
            "function_name": spec.function_name,
            "function_arn": spec.function_arn,
            "memory_mb": spec.memory_mb,
            "timeout_seconds": spec.timeout_seconds,
            "log_group_name": spec.log_group_name or f"/aws/lambda/{spec.function_name}",
            "log_stream_name": stream,
        }

    def start(self) -> dict[str, str] | None:
        """Start the process if needed and wait for its init; return an error payload if init failed."""
        if self.warm:
            return None
        self.kill()
        ctx = multiprocessing.get_context("spawn")
        parent_conn, child_conn = ctx.Pipe(duplex=True)
        sink = self._output(self._spec.logical_id) if self._output is not None else None
        output = ctx.Pipe(duplex=False) if sink is not None else None  # (reader, writer)
        name = f"{self._spec.logical_id}-{self._index}"
        process = ctx.Process(
            target=_sandbox_main,
            args=(child_conn, self._boot_payload(), output[1] if output is not None else None),
            name=name,
            daemon=True,
        )
        # The child inherits this thread's signal mask: keep Ctrl-C away from it until it ignores SIGINT.
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        child_conn.close()
        if output is not None and sink is not None:
            output[1].close()  # the child holds the only writer: its exit ends the pump
            self._pump = _pump_output(output[0], sink, name)
        self._process, self._conn = process, parent_conn
        started = time.monotonic()
        if not parent_conn.poll(INIT_TIMEOUT_SECONDS):
            self.kill()
            return {
                "errorType": "Sandbox.Timedout",
                "errorMessage": f"Init phase did not finish within {INIT_TIMEOUT_SECONDS:.0f} seconds",
            }
        try:
            kind, payload = parent_conn.recv()
        except (EOFError, OSError):
            self.kill()
            return {"errorType": "Runtime.ExitError", "errorMessage": "Runtime exited during init"}
        if kind != "ready":
            self.kill()
            return dict(payload)
        self._log(
            {
                "type": "platform.initReport",
                "function": self._spec.logical_id,
                "sandbox": self._index,
                "pid": process.pid,
                "initDurationMs": round((time.monotonic() - started) * 1000, 1),
            }
        )
        return None

    def invoke(self, request_id: str, event_json: str) -> tuple[str, Any]:
        """Run one invocation; return ``("ok", payload_json)`` or ``("error", error_payload)``."""
        self._request = (request_id, time.time())
        try:
            return self._invoke(request_id, event_json)
        finally:
            self._request = None

    def _invoke(self, request_id: str, event_json: str) -> tuple[str, Any]:
        init_error = self.start()
        if init_error is not None:
            return "error", init_error
        assert self._conn is not None
        try:
            self._conn.send(("invoke", request_id, event_json))
            if not self._conn.poll(self._spec.timeout_seconds + _TIMEOUT_GRACE_SECONDS):
                self.kill()
                return "error", {
                    "errorType": "Sandbox.Timedout",
                    "errorMessage": f"Task timed out after {self._spec.timeout_seconds:.2f} seconds",
                }
            kind, payload = self._conn.recv()
        except (EOFError, OSError):
            exit_code = None
            if self._process is not None:
                self._process.join(timeout=1)
                exit_code = self._process.exitcode
            self.kill()
            return "error", {
                "errorType": "Runtime.ExitError",
                "errorMessage": f"Runtime exited with error: exit status {exit_code}",
            }
        return kind, payload

    def kill(self) -> None:
        """Stop the process at once (timeouts, crashes, shutdown)."""
        process, conn, pump = self._process, self._conn, self._pump
        self._process = self._conn = self._pump = None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.close()
        if process is not None:
            if process.is_alive():
                process.kill()
            process.join(timeout=5)
            with contextlib.suppress(ValueError):
                process.close()
        if pump is not None:
            pump.join(timeout=2)  # the process's last lines are printed before it counts as stopped

    def stop(self, timeout: float = 2.0) -> None:
        """Ask an idle process to exit, then make sure it has."""
        process, conn = self._process, self._conn
        if process is not None and conn is not None and process.is_alive():
            with contextlib.suppress(OSError):
                conn.send(("stop",))
            process.join(timeout=timeout)
        self.kill()


class _FunctionPool:
    """The sandboxes of one function; at most ``concurrency`` invocations run at the same time."""

    def __init__(
        self,
        spec: FunctionSpec,
        log: Callable[[Mapping[str, Any]], None],
        output: Callable[[str], LineSink] | None = None,
    ) -> None:
        self.spec = spec
        self._log = log
        self._all = [_Sandbox(spec, index, log, output) for index in range(max(1, spec.concurrency))]
        # LIFO: the most recently used (warm) sandbox serves the next invocation, as Lambda prefers.
        self._idle: queue.LifoQueue[_Sandbox] = queue.LifoQueue()
        for sandbox in reversed(self._all):
            self._idle.put(sandbox)
        self._stopping = threading.Event()

    def prewarm(self) -> None:
        """Start one sandbox (the one the next invocation gets) ahead of the first request."""
        sandbox = self._idle.get()
        try:
            if not self._stopping.is_set():
                error = sandbox.start()
                if error is not None:
                    self._log({"type": "platform.initError", "function": self.spec.logical_id, **error})
        finally:
            self._idle.put(sandbox)

    def invoke(self, event: Any) -> dict[str, Any]:
        request_id = str(uuid.uuid4())
        event_json = json.dumps(event)
        sandbox: _Sandbox | None = None
        while sandbox is None:
            if self._stopping.is_set():
                return _result(
                    request_id, "error", {"errorType": "ServiceException", "errorMessage": "stopping"}
                )
            with contextlib.suppress(queue.Empty):
                sandbox = self._idle.get(timeout=0.5)
        started = time.monotonic()
        try:
            kind, payload = sandbox.invoke(request_id, event_json)
        finally:
            self._idle.put(sandbox)
        if kind != "ok":
            self._log(
                {
                    "type": "platform.report",
                    "function": self.spec.logical_id,
                    "requestId": request_id,
                    "status": "timeout" if payload.get("errorType") == "Sandbox.Timedout" else "error",
                    "errorType": payload.get("errorType"),
                    "durationMs": round((time.monotonic() - started) * 1000, 1),
                }
            )
        return _result(request_id, kind, payload)

    def sandboxes(self) -> list[dict[str, Any]]:
        """Each sandbox of this function (see :meth:`_Sandbox.describe`)."""
        return [sandbox.describe() for sandbox in self._all]

    def stop(self) -> None:
        self._stopping.set()
        threads = [threading.Thread(target=sandbox.stop, daemon=True) for sandbox in self._all]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)


def _pump_output(reader: Connection, sink: LineSink, name: str) -> threading.Thread:
    """Read a sandbox's output pipe line by line into ``sink`` until the sandbox exits."""
    stream = os.fdopen(os.dup(reader.fileno()), "rb")
    reader.close()

    def pump() -> None:
        with stream:
            for raw in stream:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                try:
                    sink(line)
                except Exception as exc:  # keep reading: a full pipe would block the sandbox
                    print(
                        f"medsum-local: a log line of {name} was dropped ({type(exc).__name__})", flush=True
                    )

    thread = threading.Thread(target=pump, name=f"output-{name}", daemon=True)
    thread.start()
    return thread


def _result(request_id: str, kind: str, payload: Any) -> dict[str, Any]:
    """Shape an invocation outcome like Lambda's Invoke API response (payload already decoded)."""
    result: dict[str, Any] = {"StatusCode": 200, "ExecutedVersion": "$LATEST", "RequestId": request_id}
    if kind == "ok":
        result["Payload"] = json.loads(payload)
    else:
        result["FunctionError"] = "Unhandled"
        result["Payload"] = {
            "errorType": payload.get("errorType"),
            "errorMessage": payload.get("errorMessage"),
        }
    return result


class FunctionRuntime:
    """Run the template's functions locally; the single entry point is :meth:`invoke`.

    Parameters
    ----------
    specs
        One :class:`FunctionSpec` per function.
    log
        Receives platform records (init reports, errors, timeouts) as dicts; default: JSON lines on
        stdout.
    output
        Captures what the functions print: called with a function's logical id once per sandbox
        process, it returns the :data:`LineSink` that receives each line that process writes on stdout
        or stderr. None (the default): the sandboxes write straight to the inherited stdout/stderr.

    Examples
    --------
    >>> runtime = FunctionRuntime([spec]); runtime.start()
    >>> runtime.invoke("ApiFunction", {"httpMethod": "GET", ...})["Payload"]
    """

    def __init__(
        self,
        specs: Iterable[FunctionSpec],
        *,
        log: Callable[[Mapping[str, Any]], None] | None = None,
        output: Callable[[str], LineSink] | None = None,
    ) -> None:
        self._log = log or _default_log
        self._pools: dict[str, _FunctionPool] = {}
        self._aliases: dict[str, str] = {}
        for spec in specs:
            self._pools[spec.logical_id] = _FunctionPool(spec, self._log, output)
            self._aliases[spec.function_name] = spec.logical_id
            self._aliases[spec.function_arn] = spec.logical_id
        self._prewarm_threads: list[threading.Thread] = []

    @property
    def functions(self) -> dict[str, FunctionSpec]:
        """The functions of this runtime, by logical id."""
        return {logical_id: pool.spec for logical_id, pool in self._pools.items()}

    def start(self, *, prewarm: bool = True) -> None:
        """Start the pools; with ``prewarm`` one sandbox per function cold-starts in the background."""
        if not prewarm:
            return
        for pool in self._pools.values():
            thread = threading.Thread(
                target=pool.prewarm, name=f"prewarm-{pool.spec.logical_id}", daemon=True
            )
            thread.start()
            self._prewarm_threads.append(thread)

    def wait_warm(self, timeout: float = INIT_TIMEOUT_SECONDS) -> None:
        """Block until the pre-warming cold starts have finished (or ``timeout`` passed)."""
        deadline = time.monotonic() + timeout
        for thread in self._prewarm_threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def resolve(self, function: str) -> str:
        """Return the logical id of a function given its logical id, physical name or ARN."""
        if function in self._pools:
            return function
        name = function.split(":function:", 1)[1].split(":", 1)[0] if ":function:" in function else function
        try:
            return self._aliases[name]
        except KeyError:
            raise UnknownFunctionError(function) from None

    def sandboxes(self, function_logical_id: str | None = None) -> list[dict[str, Any]]:
        """The sandboxes of every function (or of one), in pool order.

        Each is ``{"function", "index", "pid", "busy", "request_id", "busy_since"}``: ``pid`` is None
        before the first cold start (or after a crash, until the next invocation starts a new process),
        ``request_id`` the ``RequestId`` of the invocation it runs (the one in the function's
        ``context.aws_request_id`` and the platform records) and ``busy_since`` its start (epoch seconds).

        Raises
        ------
        UnknownFunctionError
            If ``function_logical_id`` is not part of the template.
        """
        if function_logical_id is None:
            return [entry for pool in self._pools.values() for entry in pool.sandboxes()]
        return self._pools[self.resolve(function_logical_id)].sandboxes()

    def invoke(self, function_logical_id: str, event: Any) -> dict[str, Any]:
        """Invoke a function synchronously (``RequestResponse``), waiting for a free sandbox.

        Parameters
        ----------
        function_logical_id
            Logical id (``WorkerFunction``); the physical name or ARN also work.
        event
            The JSON-serializable event.

        Returns
        -------
        dict
            Lambda Invoke's response shape with the payload decoded: ``StatusCode``, ``ExecutedVersion``,
            ``RequestId``, ``Payload`` (the handler's return value), and on failure ``FunctionError``
            (``"Unhandled"``) with ``Payload`` = ``{"errorType", "errorMessage"}``.

        Raises
        ------
        UnknownFunctionError
            If the function is not part of the template.
        """
        return self._pools[self.resolve(function_logical_id)].invoke(event)

    def stop(self) -> None:
        """Stop every sandbox (idempotent)."""
        threads = [threading.Thread(target=pool.stop, daemon=True) for pool in self._pools.values()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=15)
