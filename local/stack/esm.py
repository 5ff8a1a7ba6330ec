"""Stands in for Lambda's SQS event source mapping: the poller that batches messages and invokes the function.

What it does, as Lambda does it:

- long-polls the queue (ReceiveMessage of up to 10, all system and message attributes, the
  queue's own visibility timeout) and gathers a batch of up to ``BatchSize`` records within
  ``MaximumBatchingWindowInSeconds`` and the 6 MB invocation payload limit (a record that would
  overflow the payload waits for the next batch);
- builds the exact SQS event (``Records`` with messageId, receiptHandle, body, attributes,
  messageAttributes in Lambda's camelCase shape, md5OfBody, md5OfMessageAttributes when there are
  attributes, eventSource, eventSourceARN, awsRegion);
- invokes the function in a *container*: a subprocess (:mod:`local.stack.lambda_runtime`) that
  imported the handler once and is reused, with the function's timeout enforced by killing it
  (the next invocation cold-starts a new one);
- deletes exactly the records not listed in ``batchItemFailures`` (with
  ``ReportBatchItemFailures``); an error, a timeout, an unknown/empty/missing itemIdentifier or
  a malformed response fails the whole batch; failed records are left alone (no visibility
  change): they come back after the visibility timeout, and moto's redrive policy moves them to
  the DLQ after maxReceiveCount receives;
- runs at most ``MaximumConcurrency`` invocations at once (one poller per concurrency slot).

Containers' stdout/stderr (the handler's JSON logs and EMF metrics) go, line by line, to a
:class:`LogSink`; the control channel is a pair of pipes of its own.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from .aws import aws_client_env, boto3_client

RUNTIME_SCRIPT = Path(__file__).resolve().parent / "lambda_runtime.py"
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # synchronous invocation payload limit
INIT_TIMEOUT_S = 10.0  # Lambda's init phase limit (on top of the invoke timeout)
SQS_RECEIVE_MAX = 10


# --------------------------------------------------------------------------- logs
@dataclass
class LogLine:
    time: float
    container: str
    request_id: str | None
    stream: str  # "stdout" | "stderr" | "platform"
    text: str


class LogSink:
    """Everything the containers print, line by line, plus platform lines (START/END/REPORT).

    Thread-safe. ``echo`` (a text file) additionally receives every line as it arrives.
    """

    def __init__(self, echo: Any = None, keep: bool = True) -> None:
        self._lock = threading.Lock()
        self.lines: list[LogLine] = []
        self.echo = echo
        self.keep = keep
        self._emf: list[dict] = []

    def write(self, container: str, request_id: str | None, stream: str, text: str) -> None:
        line = LogLine(time.time(), container, request_id, stream, text.rstrip("\n"))
        emf = None
        if stream == "stdout" and line.text.startswith("{") and '"_aws"' in line.text:
            try:
                parsed = json.loads(line.text)
                if isinstance(parsed, dict) and "CloudWatchMetrics" in parsed.get("_aws", {}):
                    emf = parsed
            except ValueError:
                pass
        with self._lock:
            if self.keep:
                self.lines.append(line)
            if emf is not None:
                self._emf.append(emf)
            if self.echo is not None:
                self.echo.write(f"[{container}] {line.text}\n")

    def text_lines(self, stream: str | None = "stdout") -> list[str]:
        with self._lock:
            return [ln.text for ln in self.lines if stream is None or ln.stream == stream]

    def json_lines(self) -> list[dict]:
        out = []
        for text in self.text_lines("stdout"):
            if text.startswith("{"):
                try:
                    value = json.loads(text)
                except ValueError:
                    continue
                if isinstance(value, dict):
                    out.append(value)
        return out

    def emf_documents(self) -> list[dict]:
        with self._lock:
            return list(self._emf)

    def metrics(self) -> dict[str, dict[str, float]]:
        """EMF metrics aggregated over every document: count/sum/min/max/avg per metric name."""
        agg: dict[str, list[float]] = defaultdict(list)
        for doc in self.emf_documents():
            for directive in doc["_aws"].get("CloudWatchMetrics", []):
                for metric in directive.get("Metrics", []):
                    name = metric.get("Name")
                    value = doc.get(name)
                    values = value if isinstance(value, list) else [value]
                    for v in values:
                        if isinstance(v, (int, float)):
                            agg[name].append(float(v))
        return {
            name: {"count": len(v), "sum": sum(v), "min": min(v), "max": max(v), "avg": sum(v) / len(v)}
            for name, v in agg.items()
            if v
        }


# --------------------------------------------------------------------------- the function
@dataclass
class FunctionSpec:
    """What a container needs: everything comes from the template (see LocalStack)."""

    name: str
    handler: str
    code_uri: Path
    layer_dirs: tuple[Path, ...] = ()
    timeout: int = 3
    memory_size: int = 128
    environment: dict[str, str] = field(default_factory=dict)
    region: str = "us-east-1"
    account_id: str = "123456789012"
    runtime: str = "python3.13"
    aws_endpoint: str | None = None
    dynamodb_endpoint: str | None = None

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.name}"

    @classmethod
    def from_settings(
        cls,
        settings: Any,
        *,
        name: str,
        region: str,
        account_id: str,
        aws_endpoint: str | None,
        dynamodb_endpoint: str | None = None,
    ) -> "FunctionSpec":
        return cls(
            name=name,
            handler=settings.handler,
            code_uri=Path(settings.code_uri),
            layer_dirs=tuple(Path(p) for p in settings.layer_dirs),
            timeout=settings.timeout,
            memory_size=settings.memory_size,
            environment=dict(settings.environment),
            region=region,
            account_id=account_id,
            runtime=settings.runtime or "python3.13",
            aws_endpoint=aws_endpoint,
            dynamodb_endpoint=dynamodb_endpoint,
        )

    def process_environment(self, log_stream: str) -> dict[str, str]:
        env = {
            # What a real Lambda environment has (and nothing of the caller's environment).
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "PYTHONPATH": os.pathsep.join(str(p) for p in (*self.layer_dirs, self.code_uri)),
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "LAMBDA_TASK_ROOT": str(self.code_uri),
            "LAMBDA_RUNTIME_DIR": str(RUNTIME_SCRIPT.parent),
            "_HANDLER": self.handler,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{self.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory_size),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
            "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
            "LOCAL_INVOKED_FUNCTION_ARN": self.arn,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
        }
        if self.aws_endpoint:
            env.update(aws_client_env(self.aws_endpoint, self.region, self.dynamodb_endpoint))
        env.update(self.environment)  # the template's Environment.Variables win, as in Lambda
        return env


# --------------------------------------------------------------------------- containers
class InvokeResult:
    def __init__(
        self,
        *,
        ok: bool,
        response: Any = None,
        error: dict | None = None,
        timed_out: bool = False,
        cold_start: bool = False,
        duration_ms: float = 0.0,
        init_ms: float | None = None,
        container: str = "",
        pid: int | None = None,
    ) -> None:
        self.ok = ok
        self.response = response
        self.error = error
        self.timed_out = timed_out
        self.cold_start = cold_start
        self.duration_ms = duration_ms
        self.init_ms = init_ms
        self.container = container
        self.pid = pid

    def __repr__(self) -> str:
        return f"InvokeResult(ok={self.ok}, timed_out={self.timed_out}, error={self.error and self.error.get('errorType')})"


class ContainerDead(RuntimeError):
    pass


class Container:
    """One execution environment: a process that imported the handler once."""

    _seq = 0
    _seq_lock = threading.Lock()

    def __init__(self, spec: FunctionSpec, sink: LogSink) -> None:
        with Container._seq_lock:
            Container._seq += 1
            self.id = f"c{Container._seq}"
        self.spec = spec
        self.sink = sink
        self.current_request: str | None = None
        self.proc: subprocess.Popen | None = None
        self.init_ms: float | None = None
        self.invocations = 0
        self._buf = b""
        self._readers: list[threading.Thread] = []

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self, init_deadline: float) -> None:
        """Start the process and wait for its init (cold start) to finish."""
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        log_stream = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"
        try:
            self.proc = subprocess.Popen(  # noqa: S603
                [
                    sys.executable,
                    str(RUNTIME_SCRIPT),
                    "--control-in",
                    str(to_child_r),
                    "--control-out",
                    str(from_child_w),
                ],
                cwd=str(self.spec.code_uri),
                env=self.spec.process_environment(log_stream),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(to_child_r, from_child_w),
                start_new_session=True,
            )
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        self._to_child = os.fdopen(to_child_w, "w", encoding="utf-8")
        self._from_child = from_child_r
        for stream_name, stream in (("stdout", self.proc.stdout), ("stderr", self.proc.stderr)):
            t = threading.Thread(
                target=self._pump, args=(stream_name, stream), daemon=True, name=f"{self.id}-{stream_name}"
            )
            t.start()
            self._readers.append(t)
        msg = self._read_message(init_deadline)
        if msg is None:
            self.kill()
            raise ContainerDead("init timed out")
        if msg.get("op") != "ready":
            self.kill()
            raise ContainerDead(json.dumps(msg))
        self.init_ms = msg.get("initMs")

    def _pump(self, stream_name: str, stream: Any) -> None:
        for raw in iter(stream.readline, b""):
            self.sink.write(self.id, self.current_request, stream_name, raw.decode("utf-8", "replace"))
        stream.close()

    def _read_message(self, deadline: float) -> dict | None:
        """Next control message, or None if ``deadline`` (monotonic) passes first."""
        import select

        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([self._from_child], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                raise ContainerDead(f"container {self.id} exited ({self.proc.wait() if self.proc else '?'})")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)

    def invoke(self, event: dict, request_id: str, timeout_s: float) -> InvokeResult:
        started = time.monotonic()
        deadline_ms = int(time.time() * 1000 + timeout_s * 1000)
        trace_id = f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled=0;Lineage=1:{secrets.token_hex(4)}:0"
        self.current_request = request_id
        self.invocations += 1
        try:
            self._to_child.write(
                json.dumps(
                    {
                        "op": "invoke",
                        "requestId": request_id,
                        "event": event,
                        "deadlineMs": deadline_ms,
                        "traceId": trace_id,
                    }
                )
                + "\n"
            )
            self._to_child.flush()
            msg = self._read_message(started + timeout_s)
        except (BrokenPipeError, ContainerDead) as exc:
            self.kill()
            return InvokeResult(
                ok=False,
                error={"errorType": "Runtime.ExitError", "errorMessage": str(exc)},
                container=self.id,
                pid=self.pid,
            )
        if msg is None:
            self.kill()
            return InvokeResult(
                ok=False,
                timed_out=True,
                container=self.id,
                pid=self.pid,
                duration_ms=(time.monotonic() - started) * 1000,
                error={
                    "errorType": "Sandbox.Timedout",
                    "errorMessage": f"Task timed out after {timeout_s:.2f} seconds",
                },
            )
        error = (
            None if msg.get("ok") else {k: msg.get(k) for k in ("errorType", "errorMessage", "stackTrace")}
        )
        return InvokeResult(
            ok=bool(msg.get("ok")),
            response=msg.get("response"),
            error=error,
            cold_start=bool(msg.get("coldStart")),
            duration_ms=msg.get("durationMs", 0.0),
            container=self.id,
            pid=msg.get("pid"),
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        self._close()

    def stop(self, timeout: float = 3.0) -> None:
        if self.proc is None:
            return
        try:
            self._to_child.close()  # EOF on the control channel: the runtime loop ends
        except OSError:
            pass
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return
        self._close()

    def _close(self) -> None:
        for closer in (lambda: self._to_child.close(), lambda: os.close(self._from_child)):
            try:
                closer()
            except (OSError, AttributeError, ValueError):
                pass
        self._from_child = -1
        for t in self._readers:
            t.join(timeout=2)


class ContainerPool:
    """Idle containers are reused (warm starts); broken or timed-out ones are discarded."""

    def __init__(self, spec: FunctionSpec, sink: LogSink) -> None:
        self.spec = spec
        self.sink = sink
        self._idle: list[Container] = []
        self._all: list[Container] = []
        self._lock = threading.Lock()
        self.cold_starts = 0
        self.killed = 0

    def acquire(self) -> Container:
        with self._lock:
            while self._idle:
                c = self._idle.pop()
                if c.alive():
                    return c
        c = Container(self.spec, self.sink)
        with self._lock:
            self._all.append(c)
            self.cold_starts += 1
        c.start(time.monotonic() + INIT_TIMEOUT_S + self.spec.timeout)
        return c

    def release(self, c: Container) -> None:
        with self._lock:
            if c.alive():
                self._idle.append(c)
            else:
                self.killed += 1

    def pids(self) -> list[int]:
        with self._lock:
            return [c.pid for c in self._all if c.alive() and c.pid]

    def close(self) -> None:
        with self._lock:
            containers, self._idle, self._all = list(self._all), [], []
        for c in containers:
            c.stop()


# --------------------------------------------------------------------------- events and responses
_SYSTEM_ATTRIBUTE_ORDER = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
    "AWSTraceHeader",
    "DeadLetterQueueSourceArn",
)


def _message_attribute(value: dict) -> dict:
    out: dict[str, Any] = {}
    if "StringValue" in value:
        out["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        raw = value["BinaryValue"]
        out["binaryValue"] = base64.b64encode(raw).decode() if isinstance(raw, (bytes, bytearray)) else raw
    out["stringListValues"] = list(value.get("StringListValues", []))
    out["binaryListValues"] = [
        base64.b64encode(b).decode() if isinstance(b, (bytes, bytearray)) else b
        for b in value.get("BinaryListValues", [])
    ]
    out["dataType"] = value["DataType"]
    return out


def build_record(message: dict, queue_arn: str, region: str) -> dict:
    """One SQS ReceiveMessage message (boto3 shape) -> one Lambda event record."""
    attrs = message.get("Attributes", {})
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {k: attrs[k] for k in _SYSTEM_ATTRIBUTE_ORDER if k in attrs},
        "messageAttributes": {
            k: _message_attribute(v) for k, v in (message.get("MessageAttributes") or {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    record.update({"eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": region})
    return record


def event_size(records: list[dict]) -> int:
    return len(json.dumps({"Records": records}, separators=(",", ":")).encode())


@dataclass
class BatchOutcome:
    delete: list[str]  # messageIds to delete
    retry: list[str]  # messageIds left for redelivery
    whole_batch_failed: bool
    reason: str | None = None


def interpret_response(
    result: InvokeResult, message_ids: list[str], report_batch_item_failures: bool
) -> BatchOutcome:
    """Lambda's rules for what an SQS invocation result means for each record."""
    if not result.ok:
        reason = "timeout" if result.timed_out else f"function error: {(result.error or {}).get('errorType')}"
        return BatchOutcome([], list(message_ids), True, reason)
    if not report_batch_item_failures:
        return BatchOutcome(list(message_ids), [], False)
    response = result.response
    if response is None:
        return BatchOutcome(list(message_ids), [], False)
    if not isinstance(response, dict):
        return BatchOutcome([], list(message_ids), True, "malformed response (not an object)")
    failures = response.get("batchItemFailures")
    if failures is None:
        return BatchOutcome(list(message_ids), [], False)
    if not isinstance(failures, list):
        return BatchOutcome(
            [], list(message_ids), True, "malformed response (batchItemFailures is not a list)"
        )
    known = set(message_ids)
    failed: set[str] = set()
    for item in failures:
        if not isinstance(item, dict) or "itemIdentifier" not in item:
            return BatchOutcome(
                [], list(message_ids), True, "malformed response (item without itemIdentifier)"
            )
        ident = item["itemIdentifier"]
        if not isinstance(ident, str) or not ident:
            return BatchOutcome([], list(message_ids), True, "empty or null itemIdentifier")
        if ident not in known:
            return BatchOutcome([], list(message_ids), True, f"unknown itemIdentifier {ident!r}")
        failed.add(ident)
    return BatchOutcome(
        [m for m in message_ids if m not in failed], [m for m in message_ids if m in failed], False
    )


# --------------------------------------------------------------------------- the mapping
@dataclass
class SourceSpec:
    queue_url: str
    queue_arn: str
    batch_size: int = 10
    batching_window_s: float = 0.0
    maximum_concurrency: int | None = None
    report_batch_item_failures: bool = True
    region: str = "us-east-1"

    @classmethod
    def from_event(cls, event: Any, resources: Any, region: str = "us-east-1") -> "SourceSpec":
        """The template's SQS event (``Template.function(...).sqs_event``) on the created queue."""
        return cls(
            queue_url=resources.queue_url(event.queue_logical_id),
            queue_arn=resources.queue_arn(event.queue_logical_id),
            batch_size=event.batch_size,
            batching_window_s=event.maximum_batching_window_seconds,
            maximum_concurrency=event.maximum_concurrency,
            report_batch_item_failures="ReportBatchItemFailures" in event.function_response_types,
            region=region,
        )


@dataclass
class EsmStats:
    invocations: int = 0
    records_invoked: int = 0
    records_deleted: int = 0
    records_retried: int = 0  # left for redelivery (failed)
    whole_batch_failures: int = 0
    timeouts: int = 0
    function_errors: int = 0
    cold_starts: int = 0
    max_concurrent: int = 0
    batch_sizes: Counter = field(default_factory=Counter)
    failure_reasons: Counter = field(default_factory=Counter)
    delete_errors: int = 0

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        d["batch_sizes"] = dict(self.batch_sizes)
        d["failure_reasons"] = dict(self.failure_reasons)
        return d


@dataclass
class DrainResult:
    empty: bool
    elapsed_s: float
    stats: dict


class EventSourceMapping:
    """Polls ``source`` and invokes ``function``; use :meth:`drain_until_empty` or start/stop."""

    def __init__(
        self,
        function: FunctionSpec,
        source: SourceSpec,
        *,
        aws_endpoint: str,
        sink: LogSink | None = None,
        default_concurrency: int | None = None,
        poll_wait_s: int = 1,
        on_batch: Callable[[dict], None] | None = None,
    ) -> None:
        if source.batch_size < 1 or source.batch_size > 10000:
            raise ValueError("BatchSize must be 1..10000")
        self.function = function
        self.source = source
        self.sink = sink or LogSink()
        self.pool = ContainerPool(function, self.sink)
        self.concurrency = source.maximum_concurrency or default_concurrency or max(2, (os.cpu_count() or 2))
        self.poll_wait_s = poll_wait_s
        self.on_batch = on_batch
        self.stats = EsmStats()
        self._lock = threading.Lock()
        self._active = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._holding: set[str] = set()  # pollers holding received records (gathering or invoking)
        self._sqs = boto3_client(
            "sqs", aws_endpoint, source.region, max_pool_connections=max(10, 2 * self.concurrency)
        )
        self.errors: list[str] = []

    # ------------------------------------------------------------ lifecycle
    def start(self) -> "EventSourceMapping":
        if self._threads:
            return self
        self._stop.clear()
        for i in range(self.concurrency):
            t = threading.Thread(target=self._poller, name=f"esm-poller-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop polling; in-flight invocations finish (or time out); containers are stopped."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout=timeout if timeout is not None else self.function.timeout + 30)
        self._threads = []
        self.pool.close()

    def __enter__(self) -> "EventSourceMapping":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ draining
    def queue_counts(self) -> dict[str, int]:
        attrs = self._sqs.get_queue_attributes(
            QueueUrl=self.source.queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return {
            "visible": int(attrs.get("ApproximateNumberOfMessages", 0)),
            "in_flight": int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
            "delayed": int(attrs.get("ApproximateNumberOfMessagesDelayed", 0)),
        }

    def drain_until_empty(
        self,
        timeout: float = 300.0,
        *,
        check_every: float = 0.25,
        progress: Callable[[dict, dict], None] | None = None,
        stop_after: bool = True,
    ) -> DrainResult:
        """Run until the queue has nothing visible, in flight or delayed (or ``timeout`` passes)."""
        started = time.monotonic()
        self.start()
        empty = False
        quiet = 0
        try:
            while time.monotonic() - started < timeout:
                time.sleep(check_every)
                counts = self.queue_counts()
                with self._lock:
                    busy = len(self._holding)
                if progress:
                    progress(counts, self.stats.as_dict())
                if busy == 0 and not any(counts.values()):
                    quiet += 1
                    if quiet >= 2:  # two consecutive observations: nothing between receive and count
                        empty = True
                        break
                else:
                    quiet = 0
        finally:
            if stop_after:
                self.stop()
        return DrainResult(empty=empty, elapsed_s=time.monotonic() - started, stats=self.stats.as_dict())

    # ------------------------------------------------------------ pollers
    def _receive(self, max_n: int, wait_s: int) -> list[dict]:
        return self._sqs.receive_message(
            QueueUrl=self.source.queue_url,
            MaxNumberOfMessages=max_n,
            WaitTimeSeconds=wait_s,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])

    def _gather(self, carry: list[dict]) -> list[dict]:
        """One batch of records: BatchSize, window and 6 MB limits. Overflow goes to ``carry``."""
        src = self.source
        batch: list[dict] = []
        size = event_size([])
        window_end: float | None = None
        pending = list(carry)
        carry.clear()
        if pending:
            window_end = time.monotonic() + src.batching_window_s
        while not self._stop.is_set():
            for rec in pending:
                rec_size = len(json.dumps(rec, separators=(",", ":")).encode()) + (1 if batch else 0)
                if len(batch) >= src.batch_size or (batch and size + rec_size > MAX_PAYLOAD_BYTES):
                    carry.append(rec)
                    continue
                batch.append(rec)
                size += rec_size
            pending = []
            if carry or len(batch) >= src.batch_size:
                break
            now = time.monotonic()
            if batch and src.batching_window_s <= 0:
                break
            if batch and window_end is not None and now >= window_end:
                break
            if not batch:
                wait = self.poll_wait_s
            else:
                wait = int(max(0.0, min(20.0, window_end - now)))  # type: ignore[operator]
            want = min(SQS_RECEIVE_MAX, src.batch_size - len(batch))
            try:
                messages = self._receive(want, wait)
            except Exception as exc:  # noqa: BLE001 - the poller keeps polling, as Lambda does
                self.errors.append(f"receive: {exc}")
                time.sleep(0.5)
                continue
            if messages:
                self._set_holding(True)
                if window_end is None:
                    window_end = time.monotonic() + src.batching_window_s
                pending = [build_record(m, src.queue_arn, src.region) for m in messages]
            elif batch and wait == 0:
                time.sleep(min(0.05, max(0.0, window_end - time.monotonic())))  # type: ignore[operator]
            elif not batch:
                return []
        return batch

    def _set_holding(self, holding: bool) -> None:
        name = threading.current_thread().name
        with self._lock:
            if holding:
                self._holding.add(name)
            else:
                self._holding.discard(name)

    def _poller(self) -> None:
        carry: list[dict] = []
        while not self._stop.is_set():
            batch = self._gather(carry)
            if batch:
                try:
                    self._invoke_batch(batch)
                except Exception as exc:  # noqa: BLE001 - keep polling; SQS redelivers the batch
                    self.errors.append(f"invoke: {exc!r}")
            self._set_holding(bool(carry))
        # Stopping: records still held come back by themselves after their visibility timeout.
        self._set_holding(False)

    def _invoke_batch(self, batch: list[dict]) -> None:
        request_id = str(uuid.uuid4())
        event = {"Records": batch}
        ids = [r["messageId"] for r in batch]
        with self._lock:
            self._active += 1
            self.stats.max_concurrent = max(self.stats.max_concurrent, self._active)
        started = time.monotonic()
        container: Container | None = None
        try:
            try:
                container = self.pool.acquire()
            except ContainerDead as exc:
                result = InvokeResult(
                    ok=False, error={"errorType": "Runtime.InitError", "errorMessage": str(exc)}
                )
            else:
                self.sink.write(
                    container.id, request_id, "platform", f"START RequestId: {request_id} Version: $LATEST"
                )
                result = container.invoke(event, request_id, float(self.function.timeout))
                if result.timed_out:
                    self.sink.write(
                        container.id,
                        request_id,
                        "platform",
                        f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {request_id} Task timed out after {self.function.timeout:.2f} seconds",
                    )
                self.sink.write(container.id, request_id, "platform", f"END RequestId: {request_id}")
                init = (
                    f"\tInit Duration: {container.init_ms:.2f} ms"
                    if result.cold_start and container.init_ms
                    else ""
                )
                self.sink.write(
                    container.id,
                    request_id,
                    "platform",
                    f"REPORT RequestId: {request_id}\tDuration: {result.duration_ms:.2f} ms\t"
                    f"Memory Size: {self.function.memory_size} MB{init}",
                )
                result.init_ms = container.init_ms
        finally:
            with self._lock:
                self._active -= 1
            if container is not None:
                self.pool.release(container)

        outcome = interpret_response(result, ids, self.source.report_batch_item_failures)
        delete_errors = self._delete([r for r in batch if r["messageId"] in set(outcome.delete)])
        with self._lock:
            s = self.stats
            s.invocations += 1
            s.records_invoked += len(batch)
            s.records_deleted += len(outcome.delete) - delete_errors
            s.delete_errors += delete_errors
            s.records_retried += len(outcome.retry)
            s.batch_sizes[len(batch)] += 1
            s.cold_starts += 1 if result.cold_start else 0
            if outcome.whole_batch_failed:
                s.whole_batch_failures += 1
                s.failure_reasons[outcome.reason or "?"] += 1
            if result.timed_out:
                s.timeouts += 1
            elif not result.ok:
                s.function_errors += 1
        if self.on_batch:
            self.on_batch(
                {
                    "requestId": request_id,
                    "size": len(batch),
                    "deleted": len(outcome.delete),
                    "retried": len(outcome.retry),
                    "wholeBatchFailed": outcome.whole_batch_failed,
                    "reason": outcome.reason,
                    "coldStart": result.cold_start,
                    "timedOut": result.timed_out,
                    "pid": result.pid,
                    "durationMs": result.duration_ms,
                    "elapsedS": time.monotonic() - started,
                    "response": result.response,
                    "error": result.error,
                    "messageIds": ids,
                    "receiveCounts": [int(r["attributes"].get("ApproximateReceiveCount", 1)) for r in batch],
                }
            )

    def _delete(self, records: Iterable[dict]) -> int:
        records = list(records)
        errors = 0
        for i in range(0, len(records), 10):
            chunk = records[i : i + 10]
            try:
                resp = self._sqs.delete_message_batch(
                    QueueUrl=self.source.queue_url,
                    Entries=[
                        {"Id": str(j), "ReceiptHandle": r["receiptHandle"]} for j, r in enumerate(chunk)
                    ],
                )
                errors += len(resp.get("Failed", []))
            except Exception as exc:  # noqa: BLE001 - undeleted records simply come back
                self.errors.append(f"delete: {exc}")
                errors += len(chunk)
        return errors
