"""Fixtures for the local stack's own tests: one moto server (patched launcher) per session, and
the session's DynamoDB Local (tests/conftest.py)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from local.stack.aws import MotoServer, boto3_client, create_resources, queue_counts
from local.stack.esm import EventSourceMapping, FunctionSpec, LogSink, SourceSpec
from local.stack.template import Template

HERE = Path(__file__).resolve().parent
TOY_TEMPLATE = HERE / "template.yaml"
_counter = itertools.count()


@pytest.fixture(scope="session")
def moto_server():
    with MotoServer(patched=True) as server:
        yield server


@pytest.fixture
def sqs(moto_server):
    return boto3_client("sqs", moto_server.endpoint, "us-east-1")


class ToyStack:
    """The toy template's resources in moto plus an ESM wired from the template alone."""

    def __init__(self, endpoint: str, dynamodb_endpoint: str, **params: object) -> None:
        self.endpoint = endpoint
        self.template = Template(
            TOY_TEMPLATE, {k: str(v) for k, v in params.items()}, stack_name=f"toy{next(_counter)}"
        )
        self.resources = create_resources(self.template, endpoint, dynamodb_endpoint=dynamodb_endpoint)
        self.settings = self.template.function("DrainFunction", self.resources.physical)
        ev = self.settings.sqs_event
        self.function = FunctionSpec.from_settings(
            self.settings,
            name=f"{self.template.stack_name}-DrainFunction",
            region="us-east-1",
            account_id=self.template.account_id,
            aws_endpoint=endpoint,
            dynamodb_endpoint=dynamodb_endpoint,
        )
        self.source = SourceSpec.from_event(ev, self.resources)
        self.sqs = boto3_client("sqs", endpoint, "us-east-1")
        self.sink = LogSink()
        self.batches: list[dict] = []

    @property
    def queue_url(self) -> str:
        return self.source.queue_url

    @property
    def dlq_url(self) -> str:
        return self.resources.queue_url("PaymentsDeadLetterQueue")

    def esm(self, **kwargs) -> EventSourceMapping:
        return EventSourceMapping(
            self.function,
            self.source,
            aws_endpoint=self.endpoint,
            sink=self.sink,
            on_batch=self.batches.append,
            **kwargs,
        )

    def send(self, bodies, **extra) -> list[str]:
        ids = []
        bodies = list(bodies)
        for i in range(0, len(bodies), 10):
            entries = [{"Id": str(j), "MessageBody": b, **extra} for j, b in enumerate(bodies[i : i + 10])]
            resp = self.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            assert not resp.get("Failed"), resp
            by_id = {int(s["Id"]): s["MessageId"] for s in resp["Successful"]}
            ids += [by_id[j] for j in range(len(entries))]
        return ids

    def toy_lines(self) -> list[dict]:
        return [d for d in self.sink.json_lines() if d.get("toy")]

    def counts(self, url: str | None = None) -> dict[str, int]:
        return queue_counts(self.sqs, url or self.queue_url)


@pytest.fixture
def toy_stack(moto_server, dynamodb_endpoint):
    def make(**params) -> ToyStack:
        return ToyStack(moto_server.endpoint, dynamodb_endpoint, **params)

    return make
