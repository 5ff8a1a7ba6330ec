"""The real drain handler with faults around it, run by the event-source-mapping emulator in the
chaos suite. Which faults hit an invocation is decided by a seeded generator keyed by the batch
(its first body and receive count), so a seed replays the same decisions.

- CHAOS_P_CRASH: the process dies after the handler returned (HubSpot, ledger and reports done)
  but before the response reaches Lambda: every message of the batch is delivered again.
- CHAOS_P_STALL: the invocation hangs between HubSpot's answer and the ledger write, until the
  emulator kills it at the function's timeout: the payments exist, the ledger does not know.
- CHAOS_P_REPORT_FAIL: every failure-report send of the invocation fails.
"""

import hashlib
import os
import random
import time

import boto3
from botocore.exceptions import EndpointConnectionError

SEED = os.environ.get("CHAOS_SEED", "0")
P_CRASH = float(os.environ.get("CHAOS_P_CRASH", "0"))
P_STALL = float(os.environ.get("CHAOS_P_STALL", "0"))
P_REPORT_FAIL = float(os.environ.get("CHAOS_P_REPORT_FAIL", "0"))
plan = {"stall": False, "report_fail": False}


def _stall_before_ledger_write(params, **_):
    """Hang before the ledger records created payments (not before it records written reports:
    dying there writes a report twice on redelivery, a window the README owns up to)."""
    items = [r["PutRequest"]["Item"] for rs in params.get("RequestItems", {}).values() for r in rs if "PutRequest" in r]
    if plan["stall"] and any(not i["paymentKey"]["S"].startswith("report ") for i in items):
        time.sleep(3600)  # the emulator kills the container at the function's timeout


def _fail_report_send(**_):
    if plan["report_fail"]:
        raise EndpointConnectionError(endpoint_url="chaos://failure-report-queue")


# The drain creates its boto3 clients from the default session when app is imported: hook it first.
boto3.setup_default_session()
boto3.DEFAULT_SESSION.events.register("before-call.dynamodb.BatchWriteItem", _stall_before_ledger_write)
boto3.DEFAULT_SESSION.events.register("before-send.sqs.SendMessageBatch", _fail_report_send)

from app import lambda_handler as drain_handler  # noqa: E402  (the real handler, unchanged)


def lambda_handler(event, context):
    records = event.get("Records") or [{}]
    first = records[0]
    # The body, not the messageId (SQS makes those up anew each run), so that a seed replays.
    key = f"{SEED}:{first.get('body')}:{first.get('attributes', {}).get('ApproximateReceiveCount')}"
    rng = random.Random(hashlib.sha256(key.encode()).digest())
    crash, plan["stall"], plan["report_fail"] = (rng.random() < P_CRASH, rng.random() < P_STALL,
                                                 rng.random() < P_REPORT_FAIL)
    response = drain_handler(event, context)
    if crash:
        os._exit(17)
    return response
