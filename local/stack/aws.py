"""Stands in for CloudFormation creating the template's resources, in moto and DynamoDB Local.

- :class:`MotoServer` starts ``python -m local.stack.moto_launcher`` (moto's own server, with the
  version-pinned speed-up of :mod:`local.stack.moto_patch`) on a free 127.0.0.1 port, waits for
  it to accept requests, and stops it by pid.
- :func:`create_resources` creates, in dependency order, the template's queues (with their
  redrive policies), secrets, and DynamoDB tables (with TTL), and returns the physical mapping
  (logical id -> :class:`~local.stack.template.PhysicalResource`) with CloudFormation's Ref and
  GetAtt semantics, so the function's environment resolves as it would after a deploy.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from .template import REPO_ROOT, PhysicalResource, Template, TemplateError, Unresolved

DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


def aws_client_env(endpoint: str, region: str, dynamodb_endpoint: str | None = None) -> dict[str, str]:
    """The environment a process needs so that boto3 talks to the local servers only: moto for
    every service, DynamoDB Local for DynamoDB (boto3's service-specific endpoint variable wins)."""
    env = {
        **DUMMY_CREDENTIALS,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
    }
    if dynamodb_endpoint:
        env["AWS_ENDPOINT_URL_DYNAMODB"] = dynamodb_endpoint
    return env


def boto3_client(service: str, endpoint: str, region: str, **config: Any):
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=DUMMY_CREDENTIALS["AWS_SESSION_TOKEN"],
        config=Config(
            retries={"max_attempts": 3, "mode": "standard"},
            max_pool_connections=config.pop("max_pool_connections", 32),
            **config,
        ),
    )


def queue_counts(sqs: Any, url: str) -> dict[str, int]:
    """A queue's visible, in-flight and delayed message counts (SQS's approximate attributes)."""
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return {
        "visible": int(attrs["ApproximateNumberOfMessages"]),
        "in_flight": int(attrs["ApproximateNumberOfMessagesNotVisible"]),
        "delayed": int(attrs["ApproximateNumberOfMessagesDelayed"]),
    }


class MotoServer:
    """moto in server mode, as a child process on 127.0.0.1.

    Use as a context manager, or call :meth:`start` / :meth:`stop`.
    """

    def __init__(
        self,
        *,
        patched: bool = True,
        port: int = 0,
        startup_timeout: float = 30.0,
    ) -> None:
        self.patched = patched
        self.port = port
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen | None = None
        self.endpoint: str | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> "MotoServer":
        cmd = [
            sys.executable,
            "-m",
            "local.stack.moto_launcher",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        if not self.patched:
            cmd.append("--no-patch")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        for key in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE"):
            env.pop(key, None)
        self.proc = subprocess.Popen(  # noqa: S603
            cmd,
            cwd=str(REPO_ROOT),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C in the terminal is handled by us, not by moto
        )
        try:
            self.endpoint = self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> str:
        assert self.proc and self.proc.stdout
        deadline = time.monotonic() + self.startup_timeout
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        line = b""
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("moto server did not start in time")
            if not sel.select(timeout=remaining):
                continue
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                raise RuntimeError(f"moto server exited with {self.proc.wait()} before it was ready")
            line += chunk
        sel.close()
        first = line.decode().splitlines()[0].split()
        if first[:1] != ["READY"]:
            raise RuntimeError(f"unexpected moto launcher output: {line!r}")
        endpoint = first[1]
        # One real request: the server answers, not only listens.
        while True:
            try:
                # loopback http to the moto server we started
                with urllib.request.urlopen(endpoint + "/moto-api/data.json", timeout=5) as resp:  # nosec B310
                    resp.read()
                return endpoint
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None:
            return
        pid = self.proc.pid
        if self.proc.poll() is None:
            try:
                os.kill(pid, signal.SIGTERM)
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
        if self.proc.stdout:
            self.proc.stdout.close()
        self.proc = None

    def __enter__(self) -> "MotoServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------- resources
SUPPORTED_TYPES = {
    "AWS::SQS::Queue",
    "AWS::SecretsManager::Secret",
    "AWS::DynamoDB::Table",  # SAM's SimpleTable too: the translator makes it one
}


@dataclass
class Resources:
    """What :func:`create_resources` made: the physical mapping plus handy look-ups."""

    physical: dict[str, PhysicalResource]
    created: list[str] = field(default_factory=list)  # logical ids, in creation order
    types: dict[str, str] = field(default_factory=dict)

    def queue_url(self, logical_id: str) -> str:
        return self.physical[logical_id].ref

    def queue_arn(self, logical_id: str) -> str:
        return self.physical[logical_id].attributes["Arn"]


def _physical_name(template: Template, logical_id: str, suffix: str = "") -> str:
    # CloudFormation's generated names look like stack-LogicalId-RANDOM; deterministic here.
    base = f"{template.stack_name}-{logical_id}"
    return (base[: 80 - len(suffix)] + suffix) if suffix else base[:80]


def _sqs_attributes(props: dict) -> dict[str, str]:
    attrs: dict[str, str] = {}
    for key in (
        "DelaySeconds",
        "MaximumMessageSize",
        "MessageRetentionPeriod",
        "ReceiveMessageWaitTimeSeconds",
        "VisibilityTimeout",
        "KmsMasterKeyId",
        "KmsDataKeyReusePeriodSeconds",
        "SqsManagedSseEnabled",
        "FifoQueue",
        "ContentBasedDeduplication",
        "DeduplicationScope",
        "FifoThroughputLimit",
    ):
        if key in props and props[key] is not None:
            value = props[key]
            attrs[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    for key in ("RedrivePolicy", "RedriveAllowPolicy"):
        if props.get(key):
            value = props[key]
            if isinstance(value, dict) and "maxReceiveCount" in value:
                value = {**value, "maxReceiveCount": int(value["maxReceiveCount"])}
            attrs[key] = value if isinstance(value, str) else json.dumps(value)
    return attrs


def create_resources(
    template: Template,
    endpoint: str,
    *,
    dynamodb_endpoint: str,
    hubspot_token: str = "sandbox-token",
    secret_format: str = "json",
    secret_values: dict[str, str] | None = None,
) -> Resources:
    """Create the template's enabled SQS queues and secrets in the moto at ``endpoint``, and its
    tables in the DynamoDB Local at ``dynamodb_endpoint``.

    Secrets hold the HubSpot token: ``secret_format="json"`` stores ``{"token": TOKEN}``,
    ``"bare"`` stores the token itself. ``secret_values`` may set a specific secret's string by
    logical id. Resources of other types get a placeholder physical id so Refs still resolve.
    """
    region = template.region
    sqs = boto3_client("sqs", endpoint, region)
    secrets = boto3_client("secretsmanager", endpoint, region)
    ddb = boto3_client("dynamodb", dynamodb_endpoint, region)
    physical: dict[str, PhysicalResource] = {}
    result = Resources(physical=physical)

    # Everything else (the function itself, alarms, dashboards, layers...) is not emulated: give
    # it CloudFormation-like identifiers so Refs to it still resolve.
    for logical_id, res in template.resources.items():
        if res["Type"] in SUPPORTED_TYPES or not template.resource_enabled(logical_id):
            continue
        rtype = result.types[logical_id] = res["Type"]
        name = _physical_name(template, logical_id)
        service = rtype.split("::")[1].lower() if rtype.count("::") >= 2 else "local"
        kind = "function:" if rtype == "AWS::Lambda::Function" else ""
        arn = f"arn:aws:{service}:{template.region}:{template.account_id}:{kind}{name}"
        physical[logical_id] = PhysicalResource(ref=name, attributes={"Arn": arn})

    # A resource is created once every resource it refers to has been (CloudFormation's order).
    pending = [
        lid
        for lid, res in template.resources.items()
        if res["Type"] in SUPPORTED_TYPES and template.resource_enabled(lid)
    ]
    while pending:
        waiting: list[Unresolved] = []
        for logical_id in pending:
            try:
                props = template.properties(logical_id, physical)
                break
            except Unresolved as error:
                waiting.append(error)
        else:
            raise waiting[0]  # what it waits for is never created
        pending.remove(logical_id)
        rtype = result.types[logical_id] = template.resources[logical_id]["Type"]
        if rtype == "AWS::SQS::Queue":
            fifo = str(props.get("FifoQueue", "")).lower() == "true"
            name = props.get("QueueName") or _physical_name(template, logical_id, ".fifo" if fifo else "")
            url = sqs.create_queue(QueueName=name, Attributes=_sqs_attributes(props))["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            physical[logical_id] = PhysicalResource(
                ref=url, attributes={"Arn": arn, "QueueName": name, "QueueUrl": url}
            )
        elif rtype == "AWS::SecretsManager::Secret":
            name = props.get("Name") or _physical_name(template, logical_id)
            if secret_values and logical_id in secret_values:
                value = secret_values[logical_id]
            elif secret_format == "bare":
                value = hubspot_token
            elif secret_format == "json":
                value = json.dumps({"token": hubspot_token})
            else:
                raise ValueError(f"secret_format must be 'json' or 'bare', not {secret_format!r}")
            arn = secrets.create_secret(Name=name, SecretString=value)["ARN"]
            physical[logical_id] = PhysicalResource(ref=arn, attributes={"Id": arn, "Name": name})
        else:  # DynamoDB, in DynamoDB Local
            name = props.get("TableName") or _physical_name(template, logical_id)
            key_schema, attr_defs = props["KeySchema"], props["AttributeDefinitions"]
            extra: dict[str, Any] = {
                k: props[k] for k in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes") if props.get(k)
            }
            billing = props.get(
                "BillingMode", "PROVISIONED" if props.get("ProvisionedThroughput") else "PAY_PER_REQUEST"
            )
            if billing == "PROVISIONED":
                pt = props.get("ProvisionedThroughput") or {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
                extra["ProvisionedThroughput"] = {k: int(v) for k, v in pt.items()}
            desc = ddb.create_table(
                TableName=name,
                KeySchema=key_schema,
                AttributeDefinitions=attr_defs,
                BillingMode=billing,
                **extra,
            )["TableDescription"]
            ttl = props.get("TimeToLiveSpecification")
            if ttl and str(ttl.get("Enabled", "false")).lower() == "true":
                ddb.update_time_to_live(
                    TableName=name,
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
                )
            physical[logical_id] = PhysicalResource(
                ref=name, attributes={"Arn": desc["TableArn"], "StreamArn": desc.get("LatestStreamArn", "")}
            )
        result.created.append(logical_id)

    return result


__all__ = ["MotoServer", "Resources", "create_resources", "aws_client_env", "boto3_client", "TemplateError"]
