"""Toy handlers for the event-source-mapping emulator's tests (one per rule under test).

Each prints one JSON line {"toy": ...} to stdout, which the tests read from the log sink.
Bodies steer behaviour: a body containing "fail" is reported in batchItemFailures.
"""

import json
import os
import time

import toy_shared  # from the layer directory

_INVOCATIONS = 0
PID_AT_IMPORT = os.getpid()


def _report(_event, context, **extra):
    global _INVOCATIONS
    _INVOCATIONS += 1
    print(
        json.dumps(
            {
                "toy": True,
                "pid": os.getpid(),
                "invocation": _INVOCATIONS,
                "layer": toy_shared.LAYER_MARKER,
                "size": len(_event["Records"]),
                "ids": [r["messageId"] for r in _event["Records"]],
                "bodies": [r["body"] for r in _event["Records"]],
                "remainingMs": context.get_remaining_time_in_millis(),
                "requestId": context.aws_request_id,
                "functionName": context.function_name,
                "memory": context.memory_limit_in_mb,
                "arn": context.invoked_function_arn,
                "env": {
                    k: os.environ.get(k)
                    for k in (
                        "FAILURE_QUEUE_URL",
                        "AWS_ENDPOINT_URL",
                        "AWS_REGION",
                        "HUBSPOT_MAX_PARALLEL_CALLS",
                        "TOY_START",
                    )
                },
                **extra,
            }
        ),
        flush=True,
    )


def ok(event, context):
    _report(event, context)
    return {"batchItemFailures": []}


def record_event(event, context):
    _report(event, context, event=event)
    return None


def fail_some(event, context):
    _report(event, context)
    return {
        "batchItemFailures": [
            {"itemIdentifier": r["messageId"]} for r in event["Records"] if "fail" in r["body"]
        ]
    }


def always_fail_all(event, context):
    _report(event, context)
    return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"]]}


def raise_error(event, context):
    _report(event, context)
    raise RuntimeError("toy failure")


def unknown_id(event, context):
    _report(event, context)
    return {"batchItemFailures": [{"itemIdentifier": "not-a-message-id"}]}


def empty_id(event, context):
    _report(event, context)
    return {"batchItemFailures": [{"itemIdentifier": ""}]}


def malformed(event, context):
    _report(event, context)
    return "all good"


def slow(event, context):
    """Sleeps past the timeout when a body says "sleep"."""
    _report(event, context)
    if any("sleep" in r["body"] for r in event["Records"]):
        time.sleep(60)
    return {"batchItemFailures": []}


def busy(event, context):
    _report(event, context)
    time.sleep(0.3)
    return {"batchItemFailures": []}
