"""Stands in for one Lambda execution environment ("container") and its runtime: a process of its own.

    python local/stack/lambda_runtime.py --control-in FD --control-out FD

Started by :class:`local.stack.esm.Container` with the function's environment (template
Environment + AWS_* runtime variables) and ``PYTHONPATH`` = layer dir(s) + CodeUri. It is run by
file path, not as a module, and removes its own directory from ``sys.path``: the handler sees the
layer and its CodeUri only, as in Lambda.

Init: imports ``$_HANDLER`` once (cold start), then answers invocations for as long as it lives.
Control channel: newline-delimited JSON on two inherited pipe fds, never stdout/stderr (which
carry the handler's own output - logs and EMF metrics - to the parent's log sink):

    parent -> {"op": "invoke", "requestId", "event", "deadlineMs", "traceId"}
    child  -> {"op": "ready", "pid", "initMs"} | {"op": "init_error", "errorType", "errorMessage", ...}
    child  -> {"op": "result", "requestId", "ok": true, "response", "durationMs", "coldStart", ...}
            | {"op": "result", "requestId", "ok": false, "errorType", "errorMessage", "stackTrace", ...}

Timeouts are the parent's business: it kills this process when an invocation overruns.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import sys
import time
import traceback


class LambdaContext:
    """The context object of the Python runtime (awslambdaric's attribute names and types)."""

    def __init__(self, request_id: str, deadline_ms: int) -> None:
        self.aws_request_id = request_id
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.invoked_function_arn = os.environ.get("LOCAL_INVOKED_FUNCTION_ARN")
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self._deadline_ms - time.time() * 1000))

    def log(self, msg: str) -> None:
        sys.stdout.write(msg)
        sys.stdout.flush()


def _error(exc: BaseException, error_type: str | None = None) -> dict:
    return {
        "errorType": error_type or type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_list(traceback.extract_tb(exc.__traceback__)),
    }


def _send(out, message: dict) -> None:
    out.write(json.dumps(message, separators=(",", ":")) + "\n")
    out.flush()


def _max_rss_mb() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--control-in", type=int, required=True)
    parser.add_argument("--control-out", type=int, required=True)
    args = parser.parse_args()
    control_in = os.fdopen(args.control_in, "r", encoding="utf-8")
    control_out = os.fdopen(args.control_out, "w", encoding="utf-8")

    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]

    init_start = time.perf_counter()
    handler_name = os.environ["_HANDLER"]
    try:
        module_name, _, func_name = handler_name.rpartition(".")
        if not module_name:
            raise ValueError(f"Bad handler '{handler_name}': not enough values to unpack")
        module = importlib.import_module(module_name.replace("/", "."))
        handler = getattr(module, func_name)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which discards us
        error_type = (
            "Runtime.ImportModuleError" if isinstance(exc, ImportError) else "Runtime.HandlerNotFound"
        )
        if not isinstance(exc, (ImportError, AttributeError)):
            error_type = "Runtime.UserCodeSyntaxError" if isinstance(exc, SyntaxError) else type(exc).__name__
        err = _error(exc, error_type)
        print(json.dumps({**err, "requestId": ""}), flush=True)
        _send(control_out, {"op": "init_error", **err})
        sys.exit(1)
    sys.stdout.flush()
    sys.stderr.flush()
    _send(
        control_out,
        {"op": "ready", "pid": os.getpid(), "initMs": round((time.perf_counter() - init_start) * 1000, 2)},
    )

    cold = True
    for line in control_in:
        request = json.loads(line)
        if request.get("op") != "invoke":
            continue
        request_id = request["requestId"]
        os.environ["_X_AMZN_TRACE_ID"] = request.get("traceId", "")
        context = LambdaContext(request_id, request["deadlineMs"])
        started = time.perf_counter()
        reply: dict = {"op": "result", "requestId": request_id, "coldStart": cold, "pid": os.getpid()}
        cold = False
        try:
            response = handler(request["event"], context)
            try:
                json.dumps(response)
            except (TypeError, ValueError) as exc:
                reply.update(ok=False, **_error(exc, "Runtime.MarshalError"))
            else:
                reply.update(ok=True, response=response)
        except Exception as exc:  # noqa: BLE001 - the function's error, as Lambda reports it
            err = _error(exc)
            print(json.dumps({**err, "requestId": request_id}), flush=True)
            reply.update(ok=False, **err)
        sys.stdout.flush()
        sys.stderr.flush()
        reply["durationMs"] = round((time.perf_counter() - started) * 1000, 2)
        reply["maxMemoryUsedMb"] = _max_rss_mb()
        _send(control_out, reply)


if __name__ == "__main__":
    main()
