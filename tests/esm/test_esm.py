"""The event-source-mapping emulator's own rules, with toy handlers (tests/esm/toy/app.py)."""

from __future__ import annotations

import json
import time

import pytest
from aws_lambda_powertools.utilities.parser.models import SqsModel

from local.stack.esm import MAX_PAYLOAD_BYTES, InvokeResult, interpret_response


def test_event_has_every_attribute_and_parses_as_sqs_model(toy_stack):
    stack = toy_stack(ToyHandler="app.record_event")
    stack.sqs.send_message(
        QueueUrl=stack.queue_url,
        MessageBody='{"paymentKey": "p1"}',
        MessageAttributes={
            "source": {"DataType": "String", "StringValue": "upstream"},
            "n": {"DataType": "Number", "StringValue": "42"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
    )
    result = stack.esm().drain_until_empty(timeout=30)
    assert result.empty
    [line] = stack.toy_lines()
    event = line["event"]
    SqsModel.model_validate(event)  # Powertools' own model of Lambda's SQS event
    [record] = event["Records"]
    assert set(record) == {
        "messageId",
        "receiptHandle",
        "body",
        "attributes",
        "messageAttributes",
        "md5OfBody",
        "md5OfMessageAttributes",
        "eventSource",
        "eventSourceARN",
        "awsRegion",
    }
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == stack.source.queue_arn
    assert record["awsRegion"] == "us-east-1"
    assert record["body"] == '{"paymentKey": "p1"}'
    assert set(record["attributes"]) >= {
        "ApproximateReceiveCount",
        "SentTimestamp",
        "SenderId",
        "ApproximateFirstReceiveTimestamp",
    }
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["messageAttributes"]["source"] == {
        "stringValue": "upstream",
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "String",
    }
    assert record["messageAttributes"]["n"]["dataType"] == "Number"
    assert record["messageAttributes"]["blob"]["binaryValue"] == "AAE="
    import hashlib

    assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()  # noqa: S324


def test_fifo_records_carry_sequence_group_and_dedup_ids(toy_stack, sqs):
    from local.stack.esm import build_record

    url = sqs.create_queue(QueueName="esm-fifo.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="x", MessageGroupId="g1", MessageDeduplicationId="d1")
    [msg] = sqs.receive_message(
        QueueUrl=url, MessageSystemAttributeNames=["All"], MessageAttributeNames=["All"]
    )["Messages"]
    record = build_record(msg, "arn:aws:sqs:us-east-1:123456789012:esm-fifo.fifo", "us-east-1")
    assert record["attributes"]["MessageGroupId"] == "g1"
    assert record["attributes"]["MessageDeduplicationId"] == "d1"
    assert record["attributes"]["SequenceNumber"]
    assert "md5OfMessageAttributes" not in record and record["messageAttributes"] == {}
    SqsModel.model_validate({"Records": [record]})


def test_context_environment_and_layer_come_from_the_template(toy_stack):
    stack = toy_stack(FunctionTimeoutSeconds=7)
    stack.send(["a"])
    assert stack.esm().drain_until_empty(timeout=30).empty
    [line] = stack.toy_lines()
    assert line["layer"] == "toy-layer"
    assert line["functionName"] == stack.function.name
    assert line["memory"] == "256"  # Globals.Function.MemorySize
    assert line["arn"].endswith(f":function:{stack.function.name}")
    assert 5000 < line["remainingMs"] <= 7000
    assert line["env"]["FAILURE_QUEUE_URL"] == stack.resources.queue_url("FailureReportQueue")
    assert line["env"]["AWS_ENDPOINT_URL"] == stack.endpoint
    assert line["env"]["HUBSPOT_MAX_PARALLEL_CALLS"] == "4"
    assert line["env"]["TOY_START"] is None  # nothing leaks from the caller's environment


def test_batch_size_is_honoured(toy_stack):
    stack = toy_stack(BatchSize=25, BatchingWindowSeconds=1, HubSpotRateLimitPer10s="100")
    stack.send([f"m{i}" for i in range(60)])
    assert stack.esm().drain_until_empty(timeout=60).empty
    sizes = [line["size"] for line in stack.toy_lines()]
    assert sum(sizes) == 60
    assert max(sizes) == 25 and all(s <= 25 for s in sizes)


def test_window_holds_a_partial_batch_open(toy_stack):
    stack = toy_stack(BatchSize=100, BatchingWindowSeconds=3)
    esm = stack.esm()
    invoked_at = {}
    esm.on_batch = lambda b: invoked_at.update({i: time.monotonic() - b["elapsedS"] for i in b["messageIds"]})
    esm.start()
    try:
        sent_at = time.monotonic()
        [first] = stack.send(["first"])
        time.sleep(1.0)
        stack.send(["second", "third"])
        deadline = time.monotonic() + 15
        while len(invoked_at) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        esm.stop()
    lines = stack.toy_lines()
    assert sorted(b for line in lines for b in line["bodies"]) == ["first", "second", "third"]
    # 3 records < BatchSize 100: the poller holding "first" waited for the 3 s window to end
    assert 2.5 <= invoked_at[first] - sent_at < 6
    # and records arriving inside a poller's window join its batch (pollers: one per concurrency slot)
    assert len(lines) <= 2


def test_window_zero_invokes_without_waiting(toy_stack):
    stack = toy_stack(BatchSize=10, BatchingWindowSeconds=0)
    esm = stack.esm()
    esm.start()
    try:
        t0 = time.monotonic()
        stack.send(["only"])
        while not stack.toy_lines() and time.monotonic() - t0 < 10:
            time.sleep(0.05)
        assert stack.toy_lines() and time.monotonic() - t0 < 3
    finally:
        esm.stop()


def test_payload_limit_of_6_mb_splits_batches(toy_stack):
    stack = toy_stack(BatchSize=100, BatchingWindowSeconds=2)
    body = "x" * 250_000  # 30 of these are 7.5 MB: more than one invocation's payload
    for _ in range(30):
        stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=body)
    assert stack.esm().drain_until_empty(timeout=90).empty
    sizes = [b["size"] for b in stack.batches]
    assert sum(sizes) == 30 and len(sizes) >= 2
    assert all(s * 250_000 < MAX_PAYLOAD_BYTES for s in sizes)


def test_deletes_exactly_the_records_not_reported_as_failed(toy_stack):
    stack = toy_stack(ToyHandler="app.fail_some", QueueVisibilityTimeoutSeconds=30)
    ids = stack.send(["ok-1", "fail-1", "ok-2", "fail-2", "ok-3"])
    esm = stack.esm()
    esm.start()
    try:
        deadline = time.monotonic() + 15
        while not stack.batches and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        esm.stop()
    stack_after = stack.counts()
    assert stack_after == {
        "visible": 0,
        "in_flight": 2,
        "delayed": 0,
    }  # the two failures wait out their visibility
    failed = [i for i, b in zip(ids, ["ok-1", "fail-1", "ok-2", "fail-2", "ok-3"]) if b.startswith("fail")]
    assert stack.batches[0]["retried"] == 2 and sorted(
        stack.batches[0]["response"]["batchItemFailures"], key=str
    ) == sorted([{"itemIdentifier": i} for i in failed], key=str)


@pytest.mark.parametrize("handler", ["app.raise_error", "app.unknown_id", "app.empty_id", "app.malformed"])
def test_whole_batch_is_retried_on_error_or_bad_response(toy_stack, handler):
    stack = toy_stack(ToyHandler=handler, QueueVisibilityTimeoutSeconds=2, MaxReceiveCount=10)
    stack.send(["a", "b", "c"])
    esm = stack.esm()
    esm.start()
    try:
        deadline = time.monotonic() + 20
        while sum(1 for b in stack.batches) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        esm.stop()
    first, second = stack.batches[:2]
    assert first["wholeBatchFailed"] and first["deleted"] == 0 and first["retried"] == 3
    assert sorted(second["messageIds"]) == sorted(first["messageIds"])  # all three came back
    assert stack.counts()["visible"] + stack.counts()["in_flight"] == 3


def test_failed_records_reappear_only_after_the_visibility_timeout(toy_stack):
    stack = toy_stack(ToyHandler="app.always_fail_all", QueueVisibilityTimeoutSeconds=3, MaxReceiveCount=10)
    stack.send(["a"])
    esm = stack.esm()
    times = []
    esm.on_batch = lambda b: times.append(time.monotonic())
    esm.start()
    try:
        deadline = time.monotonic() + 20
        while len(times) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        esm.stop()
    assert len(times) >= 2
    assert times[1] - times[0] >= 2.5  # not made visible early by the emulator


@pytest.mark.parametrize(
    "response,expect_failed_all,expect_delete",
    [
        (None, False, ["a", "b"]),
        ({}, False, ["a", "b"]),
        ({"batchItemFailures": []}, False, ["a", "b"]),
        ({"batchItemFailures": None}, False, ["a", "b"]),
        ({"batchItemFailures": [{"itemIdentifier": "b"}]}, False, ["a"]),
        ({"batchItemFailures": [{"itemIdentifier": None}]}, True, []),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, True, []),
        ({"batchItemFailures": [{"id": "a"}]}, True, []),
        ({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, True, []),
        ({"batchItemFailures": "a"}, True, []),
        ("ok", True, []),
        ([], True, []),
    ],
)
def test_response_rules(response, expect_failed_all, expect_delete):
    outcome = interpret_response(InvokeResult(ok=True, response=response), ["a", "b"], True)
    assert outcome.whole_batch_failed is expect_failed_all
    assert outcome.delete == expect_delete


def test_without_report_batch_item_failures_success_deletes_all():
    outcome = interpret_response(
        InvokeResult(ok=True, response={"batchItemFailures": [{"itemIdentifier": "a"}]}), ["a", "b"], False
    )
    assert outcome.delete == ["a", "b"]


def test_timeout_kills_the_container_and_fails_the_batch(toy_stack):
    stack = toy_stack(
        ToyHandler="app.slow", FunctionTimeoutSeconds=2, QueueVisibilityTimeoutSeconds=30, BatchSize=1
    )
    stack.send(["sleep"])
    esm = stack.esm()
    esm.start()
    try:
        deadline = time.monotonic() + 20
        while not stack.batches and time.monotonic() < deadline:
            time.sleep(0.05)
        stack.send(["quick"])
        while len(stack.batches) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        esm.stop()
    timed_out, after = stack.batches[:2]
    assert timed_out["timedOut"] and timed_out["wholeBatchFailed"] and timed_out["deleted"] == 0
    assert 1.9 <= timed_out["elapsedS"] < 5
    assert after["coldStart"] and after["pid"] != timed_out["pid"]  # a fresh container
    import os

    with pytest.raises(ProcessLookupError):
        os.kill(timed_out["pid"], 0)
    assert any("Task timed out after 2.00 seconds" in t for t in stack.sink.text_lines("platform"))
    assert stack.counts() == {"visible": 0, "in_flight": 1, "delayed": 0}


def test_containers_are_reused_and_cold_start_once(toy_stack):
    stack = toy_stack(HubSpotRateLimitPer10s="100", BatchSize=1)  # MaximumConcurrency 2
    esm = stack.esm()
    esm.start()
    try:
        for i in range(6):
            stack.send([f"m{i}"])
            deadline = time.monotonic() + 10
            while len(stack.batches) < i + 1 and time.monotonic() < deadline:
                time.sleep(0.02)
    finally:
        esm.stop()
    pids = {b["pid"] for b in stack.batches}
    assert len(stack.batches) == 6
    assert len(pids) <= 2  # at most MaximumConcurrency environments
    assert sum(b["coldStart"] for b in stack.batches) == len(pids)
    per_pid = {}
    for line in stack.toy_lines():
        per_pid.setdefault(line["pid"], []).append(line["invocation"])
    for invocations in per_pid.values():
        assert invocations == list(
            range(1, len(invocations) + 1)
        )  # module state survives between invocations


def test_concurrency_never_exceeds_maximum_concurrency(toy_stack):
    stack = toy_stack(
        ToyHandler="app.busy", HubSpotRateLimitPer10s="190", BatchSize=2
    )  # MaximumConcurrency 3
    assert stack.source.maximum_concurrency == 3
    stack.send([f"m{i}" for i in range(40)])
    esm = stack.esm()
    assert esm.drain_until_empty(timeout=60).empty
    assert esm.stats.max_concurrent == 3
    assert esm.stats.records_deleted == 40


def test_dead_letter_queue_after_max_receive_count(toy_stack):
    stack = toy_stack(ToyHandler="app.fail_some", QueueVisibilityTimeoutSeconds=1, MaxReceiveCount=2)
    stack.send(["ok", "fail-me"])
    esm = stack.esm()
    result = esm.drain_until_empty(timeout=30)
    assert result.empty
    [dead] = stack.sqs.receive_message(QueueUrl=stack.dlq_url, MessageSystemAttributeNames=["All"])[
        "Messages"
    ]
    assert dead["Body"] == "fail-me"
    assert dead["Attributes"]["ApproximateReceiveCount"] in ("2", "3")
    attempts = sum(line["bodies"].count("fail-me") for line in stack.toy_lines())
    assert attempts == 2  # invoked exactly maxReceiveCount times, then moved by SQS's redrive
    assert stack.counts() == {"visible": 0, "in_flight": 0, "delayed": 0}


def test_stdout_goes_to_the_sink_and_emf_is_aggregated(toy_stack):
    stack = toy_stack()
    stack.send(["a"])
    assert stack.esm().drain_until_empty(timeout=30).empty
    from local.stack.esm import LogSink

    sink = LogSink()
    doc = {
        "_aws": {
            "Timestamp": 0,
            "CloudWatchMetrics": [
                {
                    "Namespace": "PaymentsDrain",
                    "Dimensions": [["service"]],
                    "Metrics": [{"Name": "PaymentsCreated", "Unit": "Count"}],
                }
            ],
        },
        "service": "x",
        "PaymentsCreated": [3, 4],
    }
    sink.write("c0", "r", "stdout", json.dumps(doc))
    sink.write("c0", "r", "stdout", json.dumps({**doc, "PaymentsCreated": 5}))
    assert sink.metrics()["PaymentsCreated"] == {"count": 3, "sum": 12.0, "min": 3.0, "max": 5.0, "avg": 4.0}
    assert stack.toy_lines() and any(
        t.startswith("REPORT RequestId:") for t in stack.sink.text_lines("platform")
    )
