"""Stands in for the deployed stack: moto, DynamoDB Local, the HubSpot sandbox, the ESM emulator, the handler.

    with LocalStack(parameters={"QueueVisibilityTimeoutSeconds": "5"}) as stack:
        stack.enqueue(workload.generate(300))
        result = stack.drain(timeout=60)
        stack.sandbox.control.payments(); stack.failure_reports(); stack.dead_letters()

Every setting comes from template.yaml (with ``parameters`` as ``--parameter-overrides``); the
stack itself only points the template's ``HubSpotBaseUrl`` at the sandbox it started, and picks
the sandbox's rate limit from ``HubSpotRateLimitPer10s`` unless told otherwise.

Two deployments on one HubSpot app: the second is given the first's sandbox (``hubspot_sandbox``,
the same app and token) and DynamoDB Local (``dynamodb_endpoint``), and a ``stack_name`` of its own;
``stack.outputs()`` are the first's outputs, as ``describe-stacks`` shows them.
"""

from __future__ import annotations

import contextlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from local.hubspot_sandbox.runner import start_sandbox, stop_process

from .aws import MotoServer, Resources, boto3_client, create_resources, queue_counts
from .dynamodb_local import DynamoDBLocal
from .esm import DrainResult, EventSourceMapping, FunctionSpec, LogSink, SourceSpec
from .template import DEFAULT_STACK_NAME, DEFAULT_TEMPLATE, Template
from .workload import WorkItem


@dataclass
class Enqueued:
    message_ids: list[str] = field(default_factory=list)
    by_message_id: dict[str, WorkItem] = field(default_factory=dict)
    elapsed_s: float = 0.0


class LocalStack:
    def __init__(
        self,
        template_path: str | Path = DEFAULT_TEMPLATE,
        parameters: dict[str, Any] | None = None,
        *,
        sandbox_config: Any = None,  # SandboxConfig, a dict of its fields, or None
        sandbox_faults: dict[str, Any] | None = None,
        rate_limit: int | None = None,
        token: str | None = None,
        secret_format: str = "json",
        patched_moto: bool = True,
        function_id: str = "DrainFunction",
        stack_name: str = DEFAULT_STACK_NAME,
        region: str = "us-east-1",
        log_echo: Any = None,
        default_concurrency: int | None = None,
        dynamodb_endpoint: str | None = None,
        hubspot_sandbox: Any = None,  # a RunningSandbox to use (another stack's): the same HubSpot app
    ) -> None:
        if hubspot_sandbox is not None and (sandbox_config or sandbox_faults or rate_limit is not None):
            raise ValueError("a sandbox given to the stack keeps its own configuration, faults and limit")
        self.template_path = Path(template_path)
        self.parameters = {k: str(v) for k, v in (parameters or {}).items()}
        self.sandbox_config = sandbox_config
        self.sandbox_faults = sandbox_faults
        self.rate_limit = rate_limit
        self.token = token
        self.secret_format = secret_format
        self.patched_moto = patched_moto
        self.function_id = function_id
        self.stack_name = stack_name
        self.region = region
        self.sink = LogSink(echo=log_echo)
        self.default_concurrency = default_concurrency
        self._stack = contextlib.ExitStack()
        self.moto: MotoServer | None = None
        self.dynamodb: DynamoDBLocal | None = None
        self.dynamodb_endpoint = dynamodb_endpoint  # a running DynamoDB Local to use, else one is started
        self.sandbox: Any = hubspot_sandbox
        self.own_sandbox = hubspot_sandbox is None
        self.template: Template | None = None
        self.resources: Resources | None = None
        self.function: FunctionSpec | None = None
        self.source: SourceSpec | None = None
        self.esm_instance: EventSourceMapping | None = None
        self.batches: list[dict] = []

    # ------------------------------------------------------------ lifecycle
    def start(self) -> "LocalStack":
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        from local.hubspot_sandbox import SandboxConfig

        # The template first (without physical resources) for the sandbox's rate limit.
        probe = Template(
            self.template_path,
            self._overrides("http://127.0.0.1:1"),
            region=self.region,
            stack_name=self.stack_name,
        )
        cfg = self.sandbox_config
        if cfg is None:
            cfg = SandboxConfig()
        elif isinstance(cfg, dict):
            cfg = SandboxConfig.from_dict(cfg)
        if cfg.unique_property is None:  # the account as `make setup-hubspot` leaves it (docs/deploy.md)
            cfg.unique_property = probe.parameters.get("HubSpotUniqueProperty") or None
        limit = self.rate_limit
        if limit is None and "HubSpotRateLimitPer10s" in probe.parameters:
            limit = int(float(probe.parameters["HubSpotRateLimitPer10s"]))
        if limit is not None:
            cfg.rate_limit_per_10s = int(limit)
        if self.sandbox_faults:
            from local.hubspot_sandbox.config import normalise_faults

            cfg.faults = {**cfg.faults, **normalise_faults(self.sandbox_faults, base={})}
        if self.own_sandbox:
            self.token = self.token or next(iter(cfg.tokens), "sandbox-token")
        else:
            self.token = self.token or self.sandbox.token
        token = self.token

        self.moto = self._stack.enter_context(MotoServer(patched=self.patched_moto))
        if self.dynamodb_endpoint is None:
            self.dynamodb = self._stack.enter_context(DynamoDBLocal())
            self.dynamodb_endpoint = self.dynamodb.endpoint
        if self.own_sandbox:
            # its own session: Ctrl-C reaches the run, which stops the sandbox with the stack
            self.sandbox = start_sandbox(cfg, new_session=True)
            self._stack.callback(stop_process, self.sandbox.process)

        self.template = Template(
            self.template_path,
            self._overrides(self.sandbox.base_url),
            region=self.region,
            stack_name=self.stack_name,
        )
        self.resources = create_resources(
            self.template,
            self.moto.endpoint,
            dynamodb_endpoint=self.dynamodb_endpoint,
            hubspot_token=token,
            secret_format=self.secret_format,
        )
        settings = self.template.function(self.function_id, self.resources.physical)
        ev = settings.sqs_event
        if ev is None:
            raise ValueError(f"{self.function_id} has no SQS event in {self.template_path}")
        self.function = FunctionSpec.from_settings(
            settings,
            name=self.resources.physical[self.function_id].ref,
            region=self.region,
            account_id=self.template.account_id,
            aws_endpoint=self.moto.endpoint,
            dynamodb_endpoint=self.dynamodb_endpoint,
        )
        self.source = SourceSpec.from_event(ev, self.resources, self.region)
        self.queue_settings = self.template.queue(ev.queue_logical_id)
        self._sqs = boto3_client("sqs", self.moto.endpoint, self.region, max_pool_connections=16)

    def _overrides(self, base_url: str) -> dict[str, str]:
        params = dict(self.parameters)
        params.setdefault("HubSpotBaseUrl", base_url)
        return params

    def outputs(self) -> dict[str, str]:
        """The template's outputs for the resources this stack created (``describe-stacks``)."""
        assert self.template and self.resources
        return self.template.outputs(self.resources.physical)

    def stop(self) -> None:
        if self.esm_instance is not None:
            self.esm_instance.stop()
            self.esm_instance = None
        self._stack.close()

    def __enter__(self) -> "LocalStack":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ queues
    @property
    def endpoint(self) -> str:
        assert self.moto and self.moto.endpoint
        return self.moto.endpoint

    @property
    def queue_url(self) -> str:
        assert self.source
        return self.source.queue_url

    def _url_of(self, logical_id: str) -> str:
        assert self.resources
        return self.resources.queue_url(logical_id)

    @property
    def dlq_url(self) -> str:
        assert self.queue_settings.dead_letter_logical_id
        return self._url_of(self.queue_settings.dead_letter_logical_id)

    @property
    def failure_queue_url(self) -> str:
        assert self.function
        return self.function.environment["FAILURE_QUEUE_URL"]

    def enqueue(self, items: Iterable[WorkItem | str], parallel: int = 8) -> Enqueued:
        """SendMessageBatch (10 per call, ``parallel`` calls at once); remembers what was sent."""
        items = [it if isinstance(it, WorkItem) else WorkItem(it, "raw", None) for it in items]
        chunks = [items[i : i + 10] for i in range(0, len(items), 10)]
        out = Enqueued()
        started = time.monotonic()

        def send(chunk: list[WorkItem]) -> list[tuple[str, WorkItem]]:
            entries = [{"Id": str(j), "MessageBody": it.body} for j, it in enumerate(chunk)]
            for attempt in range(5):
                resp = self._sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
                if not resp.get("Failed"):
                    break
                time.sleep(0.1 * (attempt + 1))
            else:
                raise RuntimeError(f"SendMessageBatch kept failing: {resp.get('Failed')}")
            by_entry = {int(s["Id"]): s["MessageId"] for s in resp["Successful"]}
            return [(by_entry[j], it) for j, it in enumerate(chunk)]

        with ThreadPoolExecutor(max(1, parallel)) as pool:
            for pairs in pool.map(send, chunks):
                for mid, it in pairs:
                    out.message_ids.append(mid)
                    out.by_message_id[mid] = it
        out.elapsed_s = time.monotonic() - started
        return out

    def queue_counts(self, url: str | None = None) -> dict[str, int]:
        return queue_counts(self._sqs, url or self.queue_url)

    def read_all(self, url: str, *, delete: bool = False) -> list[dict]:
        """Every visible message of a queue (hidden while scanning, then visible again unless deleted)."""
        seen: dict[str, dict] = {}
        handles: list[str] = []
        while True:
            msgs = self._sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                VisibilityTimeout=60,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not msgs:
                break
            for m in msgs:
                seen.setdefault(m["MessageId"], m)
                handles.append(m["ReceiptHandle"])
        for i in range(0, len(handles), 10):
            entries = [{"Id": str(j), "ReceiptHandle": h} for j, h in enumerate(handles[i : i + 10])]
            if delete:
                self._sqs.delete_message_batch(QueueUrl=url, Entries=entries)
            else:
                self._sqs.change_message_visibility_batch(
                    QueueUrl=url, Entries=[{**e, "VisibilityTimeout": 0} for e in entries]
                )
        return list(seen.values())

    def failure_reports(self, *, delete: bool = False) -> list[dict]:
        out = []
        for m in self.read_all(self.failure_queue_url, delete=delete):
            try:
                out.append(json.loads(m["Body"]))
            except ValueError:
                out.append({"unparseable": m["Body"]})
        return out

    def dead_letters(self, *, delete: bool = False) -> list[dict]:
        return self.read_all(self.dlq_url, delete=delete)

    # ------------------------------------------------------------ the function
    def esm(self, **kwargs: Any) -> EventSourceMapping:
        assert self.function and self.source
        on_batch = kwargs.pop("on_batch", None)

        def record(batch: dict) -> None:
            self.batches.append(batch)
            if on_batch:
                on_batch(batch)

        self.esm_instance = EventSourceMapping(
            self.function,
            self.source,
            aws_endpoint=self.endpoint,
            sink=self.sink,
            on_batch=record,
            default_concurrency=self.default_concurrency,
            **kwargs,
        )
        return self.esm_instance

    def drain(
        self, timeout: float = 120.0, progress: Callable[[dict, dict], None] | None = None
    ) -> DrainResult:
        esm = self.esm_instance or self.esm()
        try:
            return esm.drain_until_empty(timeout=timeout, progress=progress)
        finally:
            self.esm_instance = None

    def endpoints(self) -> dict[str, Any]:
        assert self.moto and self.sandbox and self.resources
        return {
            "aws_endpoint": self.endpoint,
            "moto_pid": self.moto.pid,
            "dynamodb_endpoint": self.dynamodb_endpoint,
            "dynamodb_local_pid": self.dynamodb.pid if self.dynamodb else None,
            "hubspot_sandbox": self.sandbox.base_url,
            "sandbox_pid": self.sandbox.pid,
            "queues": {
                lid: p.ref
                for lid, p in self.resources.physical.items()
                if self.resources.types.get(lid) == "AWS::SQS::Queue"
            },
            "token_secret": self.function.environment.get("HUBSPOT_TOKEN_SECRET_ID")
            if self.function
            else None,
        }
