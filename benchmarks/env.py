"""What every benchmark shares: paths, events, the Lambda context, and the local stack
(moto server, DynamoDB Local, HubSpot sandbox, template.yaml's resources and function environment)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LAYER = ROOT / "layers" / "shared"
FUNCTION = ROOT / "functions" / "drain"
TEMPLATE = ROOT / "template.yaml"
TOKEN = "pat-na1-bench-0000"
WRITE_SCOPE = "crm.objects.commercepayments.write"

POWERTOOLS_ENV = {
    "POWERTOOLS_SERVICE_NAME": "payments-drain",
    "POWERTOOLS_METRICS_NAMESPACE": "PaymentsDrain",
    # No X-Ray daemon on loopback; in Lambda (Tracing: Active) the tracer adds one subsegment
    # per HubSpot call and per ledger call, i.e. per 100 payments, not per payment.
    "POWERTOOLS_TRACE_DISABLED": "true",
}


def python_path() -> str:
    return os.pathsep.join([str(ROOT), str(LAYER), str(FUNCTION)])


def built_python_path(into: Path) -> str:
    """The drain's own modules as `make build` ships them (figure d): a copy of the layer's package
    and the function compiled to bytecode checked by source hash, so a cold start reads them as
    Lambda does and compiles nothing, like the third-party modules of the floor (pip compiled
    those in the virtual environment; `make build` compiles them in the layer)."""
    import compileall
    import py_compile
    import shutil

    layer, function = into / "layer", into / "function"
    shutil.copytree(
        LAYER / "payments_drain", layer / "payments_drain", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copytree(FUNCTION, function, ignore=shutil.ignore_patterns("__pycache__"))
    for tree in (layer, function):
        ok = compileall.compile_dir(
            tree, quiet=1, invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH
        )
        if not ok:
            raise RuntimeError(f"cannot compile {tree}")
    return os.pathsep.join([str(ROOT), str(layer), str(function)])


# ----------------------------------------------------------------------------- events
@dataclass
class LambdaContext:
    function_name: str = "payments-drain"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:payments-drain"
    aws_request_id: str = "bench"
    remaining_ms: int = 900_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def payment_body(key: str, comment_chars: int | None = None) -> dict[str, Any]:
    """A typical payment: six properties (four of them checked: amount, date, option, currency)
    and one association. With ``comment_chars`` a lean one instead, the three usual properties
    plus a comment of that length (to size a batch to a given number of bytes)."""
    if comment_chars is not None:
        properties = {
            "hs_initial_amount": "49.90",
            "hs_initiated_date": "2026-11-27T10:00:00Z",
            "hs_currency_code": "EUR",
            "hs_internal_comment": ("imported by the drain benchmark " * (comment_chars // 32 + 1))[
                :comment_chars
            ],
        }
        return {"paymentKey": key, "properties": properties}
    properties = {
        "hs_initial_amount": "49.90",
        "hs_initiated_date": "2026-11-27T10:00:00Z",
        "hs_currency_code": "EUR",
        "hs_latest_status": "succeeded",
        "hs_payment_method_type": "card",
        "hs_reference_number": f"INV-{key}",
    }
    return {
        "paymentKey": key,
        "properties": properties,
        "associations": [
            {
                "to": {"id": "1234"},
                "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 387}],
            }
        ],
    }


def sqs_record(
    body: dict[str, Any],
    message_id: str,
    queue_arn: str = "arn:aws:sqs:us-east-1:123456789012:payments",
    sent_ms: int | None = None,
) -> dict[str, Any]:
    """A record in exactly Lambda's shape (as tests/twins.py builds it), sent ``sent_ms`` (default:
    now). Not a fixed date: a message older than the queue's retention is one the drain reports
    instead of sending back (the queue would drop it), so a figure's retries would end as reports."""
    text = json.dumps(body)
    sent_ms = int(time.time() * 1000) if sent_ms is None else sent_ms
    return {
        "messageId": message_id,
        "receiptHandle": f"rh-{message_id}",
        "body": text,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": str(sent_ms),
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": str(sent_ms + 100),
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(text.encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": "us-east-1",
    }


def event(prefix: str, start: int, count: int, comment_chars: int | None = None) -> dict[str, Any]:
    """``count`` valid payments with keys ``{prefix}-{start}`` ...; message ids are UUIDs, as in SQS."""
    sent_ms = int(time.time() * 1000)
    return {
        "Records": [
            sqs_record(
                payment_body(f"{prefix}-{i}", comment_chars),
                str(uuid.uuid5(uuid.NAMESPACE_OID, f"{prefix}-{i}")),
                sent_ms=sent_ms,
            )
            for i in range(start, start + count)
        ]
    }


def event_of_size(prefix: str, count: int, total_bytes: int) -> dict[str, Any]:
    """``count`` lean payments whose JSON event is about ``total_bytes`` long."""
    one = len(json.dumps(event(prefix, 10**6, 1, comment_chars=0)["Records"][0])) + 2  # ", " between records
    return event(prefix, 0, count, comment_chars=max(0, total_bytes // count - one))


# ----------------------------------------------------------------------------- the stack
@dataclass
class Stack:
    """One moto server and one DynamoDB Local for the whole run; sandboxes and resources per figure."""

    moto_endpoint: str
    dynamodb_endpoint: str
    exits: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def sandbox(self, **config: Any):
        from local.hubspot_sandbox import SandboxConfig, run_sandbox

        tokens = {TOKEN: {"scopes": [WRITE_SCOPE]}}
        return self.exits.enter_context(run_sandbox(SandboxConfig(tokens=tokens, **config)))

    def dynamo_stub(self, delay_ms: float) -> str:
        """Start benchmarks.dynamo_stub (a separate process, so its CPU is not the handler's)."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.dynamo_stub", "--delay-ms", str(delay_ms)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONPATH": python_path()},
        )

        def stop() -> None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stdout.close()

        self.exits.callback(stop)
        url = proc.stdout.readline().strip()
        if not url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"the DynamoDB stub did not start: {url!r}")
        return url

    def function_env(self, base_url: str, **parameters: str) -> dict[str, str]:
        """template.yaml's environment for DrainFunction, resources created in moto and DynamoDB
        Local, plus what boto3 needs to talk to them. ``parameters`` are template parameter overrides."""
        from local.stack.aws import aws_client_env, create_resources
        from local.stack.template import Template

        # Without the unique property unless a figure sets it (the figures were measured so; the
        # template's default, payments_drain_key, needs the sandbox to have that property).
        template = Template(
            TEMPLATE,
            {"HubSpotBaseUrl": base_url, "HubSpotUniqueProperty": "", **parameters},
            stack_name=f"b{uuid.uuid4().hex[:8]}",
        )
        resources = create_resources(
            template, self.moto_endpoint, dynamodb_endpoint=self.dynamodb_endpoint, hubspot_token=TOKEN
        )
        env = dict(template.function("DrainFunction", resources.physical).environment)
        env.update(aws_client_env(self.moto_endpoint, template.region, self.dynamodb_endpoint))
        env.update(POWERTOOLS_ENV)
        return env


@contextlib.contextmanager
def stack() -> Iterator[Stack]:
    from local.stack.aws import MotoServer
    from local.stack.dynamodb_local import DynamoDBLocal

    with MotoServer() as moto, DynamoDBLocal() as dynamodb, contextlib.ExitStack() as exits:
        yield Stack(moto.endpoint, dynamodb.endpoint, exits)


def template_settings(**parameters: str):
    """(function settings, the SQS event source) as template.yaml resolves them."""
    from local.stack.template import Template, _LogicalEcho

    template = Template(TEMPLATE, {"HubSpotBaseUrl": "http://127.0.0.1:1", **parameters})
    function = template.function("DrainFunction", _LogicalEcho(template))  # resources by logical id
    return template, function


# ----------------------------------------------------------------------------- workers
class WorkerError(RuntimeError):
    pass


def run_worker(
    task: str,
    args: dict[str, Any],
    env: dict[str, str] | None = None,
    timeout: float = 600,
    path: str | None = None,
) -> dict[str, Any]:
    """``python -m benchmarks.worker TASK`` in a fresh process (a fresh "container"); stdout,
    where Powertools writes its log and EMF lines, goes to /dev/null. Returns its JSON result.
    ``path``: its PYTHONPATH (the sources by default)."""
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        result_path = Path(tmp) / "result.json"
        full_env = {
            k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_", "HUBSPOT_"))
        }
        full_env.update(env or {})
        full_env["PYTHONPATH"] = path or python_path()
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks.worker", task, json.dumps(args), str(result_path)],
            cwd=ROOT,
            env=full_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0 or not result_path.exists():
            raise WorkerError(f"worker {task} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
        return json.loads(result_path.read_text())
