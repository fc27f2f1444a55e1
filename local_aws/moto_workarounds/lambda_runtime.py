"""Lambda: a Python function's deployed code runs as the Lambda runtime runs it.

Without Docker, moto 5.2.5 answers every invoke with its own payload. Here an invoke of a function
whose runtime is Python runs the handler its configuration names (``Handler``, e.g.
``launcher.app.handler``) from the code it was deployed with (the zip), in a process of its own:

- one process per invocation, forked from a server process that imported the runtime's libraries
  once (multiprocessing's ``forkserver``, preloaded by ``lambda_preload`` with boto3, Powertools
  and pydantic, as the Powertools layer provides them on AWS, and botocore's data files), so an
  invocation starts in tens of milliseconds;
- its environment is exactly the function's configured variables plus the ones Lambda sets
  (``AWS_REGION``, ``AWS_LAMBDA_FUNCTION_NAME``, ...): nothing is set or popped in the emulator's
  own ``os.environ``, which its threads read concurrently, and nothing (a cached client, a logger
  key) survives from one invocation to the next;
- a fake LambdaContext with the function's name, ARN, memory, timeout and request id;
- an exception becomes a function error whose ``errorType`` is the exception's class name, so Step
  Functions' Retry and Catch see that name, as on AWS; an unimportable handler is
  ``Runtime.ImportModuleError``, a result that is not JSON ``Runtime.MarshalError``, a process
  that dies ``Runtime.ExitError``, and one past the function's timeout is killed and reported as
  ``Sandbox.Timedout``;
- what the function prints (Powertools' JSON log and metric lines) goes to its log group,
  ``/aws/lambda/<name>``, in the emulator's CloudWatch Logs, one stream per invocation, as Lambda
  ships it.

Functions of other runtimes keep moto's echo.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib
import io
import json
import multiprocessing
import os
import sys
import tempfile
import threading
import time
import traceback
import uuid
import zipfile
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Final

from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.logs.models import logs_backends

# What a warm Lambda host has loaded (the runtime's and the Powertools layer's libraries):
# imported once, in the fork server, so each invocation's process starts with them.
RUNTIME_PRELOAD: Final = ("local_aws.moto_workarounds.lambda_preload",)
# The environment Lambda's Python runtime gives every function besides its own variables.
_RUNTIME_ENVIRONMENT: Final = ("PATH", "LANG", "TZ", "LD_LIBRARY_PATH")
_KILL_WAIT_SECONDS: Final = 5.0

_context_lock = threading.Lock()
_context: multiprocessing.context.ForkServerContext | None = None
_code_lock = threading.Lock()
_code_root = Path(tempfile.mkdtemp(prefix="local-lambda-code-"))


@dataclasses.dataclass(frozen=True)
class FakeLambdaContext:
    """The attributes of the Lambda runtime's context object that handlers and Powertools read."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    timeout_seconds: int
    started_at: float = dataclasses.field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self.started_at
        return max(0, int((self.timeout_seconds - elapsed) * 1000))


@dataclasses.dataclass(frozen=True)
class Invocation:
    """One invocation, as the child process receives it (picklable)."""

    handler: str
    code_dir: str
    environment: dict[str, str]
    event: Any
    context: FakeLambdaContext
    output_path: str


def error_payload(error_type: str, message: str, request_id: str, stack: list[str]) -> bytes:
    """The Python runtime's payload for a failed invocation."""
    return json.dumps(
        {
            "errorMessage": message,
            "errorType": error_type,
            "requestId": request_id,
            "stackTrace": stack,
        }
    ).encode("utf-8")


# -- the invocation's process ----------------------------------------------------------------


def _load_handler(handler: str, code_dir: str) -> Callable[[Any, Any], Any]:
    module_name, _, function_name = handler.rpartition(".")
    if not module_name or not function_name:
        raise ImportError(f"Bad handler '{handler}': not a module.function path")
    sys.path.insert(0, code_dir)
    module = importlib.import_module(module_name)
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ImportError(f"Handler '{function_name}' missing on module '{module_name}'")  # noqa: TRY004 - the runtime's own name for it
    return function  # type: ignore[no-any-return]


def _run_invocation(invocation: Invocation, results: Connection) -> None:
    """The child: the function's environment, its output to a file, one handler call."""
    os.environ.clear()
    os.environ.update(invocation.environment)
    output = os.open(invocation.output_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(output, 1)
    os.dup2(output, 2)
    request_id = invocation.context.aws_request_id
    try:
        handler = _load_handler(invocation.handler, invocation.code_dir)
    except Exception as error:  # the runtime's own error name for it
        results.send(
            (
                error_payload(
                    "Runtime.ImportModuleError",
                    f"Unable to import module '{invocation.handler}': {error}",
                    request_id,
                    [],
                ),
                True,
            )
        )
        return
    try:
        result = handler(invocation.event, invocation.context)
    except Exception as error:  # becomes the function error, as on AWS
        traceback.print_exc()
        stack = traceback.format_tb(error.__traceback__)
        results.send((error_payload(type(error).__name__, str(error), request_id, stack), True))
        return
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    try:
        results.send((json.dumps(result).encode("utf-8"), False))
    except (TypeError, ValueError) as error:
        message = f"Unable to marshal response: {error}"
        results.send((error_payload("Runtime.MarshalError", message, request_id, []), True))


# -- the emulator's side ---------------------------------------------------------------------


def _fork_server() -> multiprocessing.context.ForkServerContext:
    global _context  # noqa: PLW0603 - one fork server per process, started on first use
    with _context_lock:
        if _context is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(list(RUNTIME_PRELOAD))
            _context = context
        return _context


def start_in_background() -> None:
    """Start the fork server now, in a thread, so the first invocation does not wait for it."""

    def start() -> None:
        _fork_server()  # sets the preload, which the fork server reads when it starts
        from multiprocessing import forkserver

        forkserver.ensure_running()

    threading.Thread(target=start, name="lambda-fork-server", daemon=True).start()


def _code_directory(code: bytes) -> Path:
    """The deployment package unpacked once per code hash (as Lambda's /var/task)."""
    digest = hashlib.sha256(code).hexdigest()
    target = _code_root / digest
    with _code_lock:
        if not target.is_dir():
            partial = _code_root / f".{digest}.partial"
            with zipfile.ZipFile(io.BytesIO(code)) as archive:
                archive.extractall(partial)
            partial.rename(target)
    return target


def _environment(function: Any, context: FakeLambdaContext, region: str) -> dict[str, str]:
    environment = {name: os.environ[name] for name in _RUNTIME_ENVIRONMENT if name in os.environ}
    environment.update(
        {
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_LAMBDA_FUNCTION_NAME": context.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": context.function_version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(context.memory_limit_in_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": context.log_group_name,
            "AWS_LAMBDA_LOG_STREAM_NAME": context.log_stream_name,
        }
    )
    environment.update({k: str(v) for k, v in (function.environment_vars or {}).items()})
    return environment


def _ship_output(backend: Any, context: FakeLambdaContext, output: Path) -> None:
    """The invocation's output lines to /aws/lambda/<name>, one stream per invocation."""
    try:
        text = output.read_text(encoding="utf-8", errors="replace")
    finally:
        with contextlib.suppress(OSError):
            output.unlink()
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return
    logs = logs_backends[backend.account_id][backend.region_name]
    group = context.log_group_name
    if group not in logs.groups:
        logs.create_log_group(group, {})
    logs.create_log_stream(group, context.log_stream_name)
    now = int(time.time() * 1000)
    logs.put_log_events(
        group, context.log_stream_name, [{"timestamp": now, "message": line} for line in lines]
    )


def invoke(backend: Any, function: Any, event: Any) -> tuple[bytes, bool]:
    """(payload, errored) of one invocation of a Python function, as Lambda returns them."""
    request_id = str(uuid.uuid4())
    context = FakeLambdaContext(
        function_name=function.function_name,
        function_version=str(function.version),
        invoked_function_arn=function.function_arn,
        memory_limit_in_mb=int(function.memory_size),
        aws_request_id=request_id,
        log_group_name=f"/aws/lambda/{function.function_name}",
        log_stream_name=f"{time.strftime('%Y/%m/%d')}/[{function.version}]{uuid.uuid4().hex}",
        timeout_seconds=int(function.timeout),
    )
    code_dir = _code_directory(bytes(function.code_bytes))
    output = Path(tempfile.mkstemp(prefix="lambda-output-")[1])
    invocation = Invocation(
        handler=str(function.handler),
        code_dir=str(code_dir),
        environment=_environment(function, context, backend.region_name),
        event=event,
        context=context,
        output_path=str(output),
    )
    context_ = _fork_server()
    receiver, sender = context_.Pipe(duplex=False)
    process = context_.Process(
        target=_run_invocation, args=(invocation, sender), name=f"lambda-{request_id}"
    )
    process.start()
    sender.close()
    try:
        if receiver.poll(context.timeout_seconds):
            try:
                payload, errored = receiver.recv()
            except EOFError:
                payload, errored = _exited(process, request_id), True
        else:
            process.kill()
            message = f"Task timed out after {context.timeout_seconds:.2f} seconds"
            payload, errored = error_payload("Sandbox.Timedout", message, request_id, []), True
        process.join(_KILL_WAIT_SECONDS)
        if process.is_alive():
            process.kill()
            process.join(_KILL_WAIT_SECONDS)
    finally:
        receiver.close()
        _ship_output(backend, context, output)
    return bytes(payload), bool(errored)


def _exited(process: multiprocessing.process.BaseProcess, request_id: str) -> bytes:
    process.join(_KILL_WAIT_SECONDS)
    message = f"RequestId: {request_id} Error: Runtime exited with exit code {process.exitcode}"
    return error_payload("Runtime.ExitError", message, request_id, [])


def _is_python(function: Any) -> bool:
    return str(getattr(function, "run_time", "") or "").startswith("python")


_original_invoke: Final = LambdaSimpleBackend.invoke


def _lambda_invoke(  # noqa: PLR0917 - moto's LambdaBackend.invoke signature
    self: Any,
    function_name: str,
    qualifier: str | None,
    body: Any,
    headers: Any,
    response_headers: Any,
) -> Any:
    function = self.get_function(function_name, qualifier)
    if not _is_python(function):
        return _original_invoke(self, function_name, qualifier, body, headers, response_headers)
    event = json.loads(body) if body else {}
    if (headers or {}).get("X-Amz-Invocation-Type") == "Event":
        # Asynchronous: AWS answers 202 at once and runs the function afterwards.
        threading.Thread(target=invoke, args=(self, function, event), daemon=True).start()
        return b""
    payload, errored = invoke(self, function, event)
    if errored:
        response_headers["x-amz-function-error"] = "Unhandled"
    return payload


PATCHES: Final[list[tuple[type, str, Callable[..., Any]]]] = [
    (LambdaSimpleBackend, "invoke", _lambda_invoke),
]
