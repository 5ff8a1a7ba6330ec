"""The real drain handler with faults around it, run by the event-source-mapping emulator in the
chaos suite. Which faults hit an invocation is decided by a seeded generator keyed by the batch
(its first body and receive count), so a seed replays the same decisions (the instant of a
random kill depends on timing, so what it interrupts may differ).

- CHAOS_P_CRASH: the process dies after the handler returned (HubSpot, ledger and reports done)
  but before the response reaches Lambda: every message of the batch is delivered again.
- CHAOS_P_KILL: SIGKILL at a random instant of the invocation (within CHAOS_KILL_WITHIN_S):
  claims half made, chunks in flight, answers not yet recorded, reports half written.
- CHAOS_P_KILL_AFTER_ANSWER: SIGKILL the moment a HubSpot answer that stored payments is read:
  they exist, and nothing else (the ledger where it records them, the queue, the metrics) knows.
- CHAOS_P_KILL_AT_AWS: SIGKILL just before a ledger claim or a failure-report send, where no
  HubSpot exchange is left unrecorded (the windows the ledger alone can make exactly-once).
- CHAOS_P_STALL: the call whose answer stored payments hangs there, until the invocation has to
  answer without it (or the emulator kills it at the function's timeout): the payments exist,
  the drain does not know.
- CHAOS_P_REPORT_FAIL: every failure-report send of the invocation fails.
"""

import hashlib
import os
import random
import signal
import threading
import time

import boto3
from botocore.exceptions import EndpointConnectionError

SEED = os.environ.get("CHAOS_SEED", "0")
P_CRASH = float(os.environ.get("CHAOS_P_CRASH", "0"))
P_STALL = float(os.environ.get("CHAOS_P_STALL", "0"))
P_REPORT_FAIL = float(os.environ.get("CHAOS_P_REPORT_FAIL", "0"))
P_KILL = float(os.environ.get("CHAOS_P_KILL", "0"))
P_KILL_AFTER_ANSWER = float(os.environ.get("CHAOS_P_KILL_AFTER_ANSWER", "0"))
P_KILL_AT_AWS = float(os.environ.get("CHAOS_P_KILL_AT_AWS", "0"))
KILL_WITHIN_S = float(os.environ.get("CHAOS_KILL_WITHIN_S", "1.5"))  # most invocations last 1-3 s
plan = {"stall": False, "report_fail": False, "kill_after_answer": False, "kill_at_aws": False, "kill": False}
# Where each fault actually injected is written, one line per injection, before it acts: a fault
# is drawn per batch but acts only when its moment comes (a kill timer after the invocation ended,
# a kill after an answer in a batch that records no new payment, a report failure in a batch with
# no report), and with a few dozen batches a rare fault is often never drawn: runs showed no
# fault at all. So a fault that has not acted yet in the run (this log) is armed in every
# invocation until it does, a drawn fault stays armed in the container until it acts, and the
# suite counts what acted.
INJECTED = os.environ.get("CHAOS_INJECTED_LOG")


acted: set[str] = set()  # faults that acted in this invocation: drawn afresh at the next
seen: set[str] = set()  # faults that acted in the run before this invocation (INJECTED)


def _injected(kind: str) -> None:
    if kind in acted:
        return
    acted.add(kind)
    if INJECTED:
        with open(INJECTED, "a", encoding="utf-8") as log:
            log.write(kind + "\n")
            log.flush()
            os.fsync(log.fileno())


def _kill(kind: str = "kill") -> None:
    _injected(kind)
    os.kill(os.getpid(), signal.SIGKILL)


# The one window a random kill skips: from sending failure reports (SQS may accept them before
# its answer arrives) until the ledger records them, a kill makes the redelivery write those
# reports again (docs/exactly-once.md: reports are at least once there; a
# consumer dedupes by messageId).
report_window = threading.Event()


def _random_kill() -> None:
    while report_window.is_set():
        time.sleep(0.001)
    _kill("kill")


def _reports_sent(**_):
    report_window.set()


def _recording_reports(params, context, **_):
    items = [
        r["PutRequest"]["Item"]
        for rs in params.get("RequestItems", {}).values()
        for r in rs
        if "PutRequest" in r
    ]
    context["chaos_reports"] = any(i["paymentKey"]["S"].startswith("report ") for i in items)


def _reports_recorded(context, **_):
    if context.get("chaos_reports"):
        report_window.clear()


def _kill_at_aws(params, **_):
    """Before a claim (INSERT) or a report send, at one of them chosen at random."""
    statements = params.get("Statements") or [{}]
    if (
        plan["kill_at_aws"]
        and not statements[0].get("Statement", "").startswith("DELETE")
        and random.random() < 0.5
    ):
        _kill("kill_at_aws")


def _stored(answer) -> bool:
    """A 2xx whose results list payments: HubSpot stored them (not one refusing copies only)."""
    body = answer.body
    return (
        answer.status is not None
        and 200 <= answer.status < 300
        and isinstance(body, dict)
        and bool(body.get("results"))
    )


def _after_answer(write_batch):
    """HubSpot's client, its answer in hand: a kill or a stall after an answer that stored
    payments, before the drain settles it (where the ledger claims payments, before it records
    them, as the ledger-write hooks did). Before settling, so before any report of its refused
    inputs is sent: a kill there would write a report twice, a window docs/exactly-once.md owns up to. An
    answer refusing copies only (a redelivery, with the unique property) stored nothing: no fault
    there, as none was when the ledger settled redeliveries without a request. The chaos here is
    the process's; the call and its answer are the real ones."""

    def call(*args, **kwargs):
        answer = write_batch(*args, **kwargs)
        if not _stored(answer):
            return answer
        # Both armed: the one that has not acted in the run yet goes first. Kill first always
        # left the stall to answers that drew no kill (half of them), and with the unique
        # property few late answers store anything: a fresh-clone CI run ended with 9 kills
        # after an answer and no stall at all.
        for kind in sorted(("kill_after_answer", "stall"), key=lambda kind: kind in seen):
            if plan[kind] and kind == "kill_after_answer":
                _kill("kill_after_answer")
            if plan[kind] and kind == "stall":
                _injected("stall")
                time.sleep(3600)  # the invocation answers without this call, or is killed at its timeout
        return answer

    return call


def _fail_report_send(**_):
    if plan["report_fail"]:
        _injected("report_fail")
        raise EndpointConnectionError(endpoint_url="chaos://failure-report-queue")


# The drain creates its boto3 clients from the default session when app is imported: hook it first.
# Hooks that read the call's parameters listen on before-parameter-build, whose params are the
# API's (RequestItems, Statements): before-call's are the serialized request (a body of bytes).
boto3.setup_default_session()
events = boto3.DEFAULT_SESSION.events
events.register("before-send.sqs.SendMessageBatch", _fail_report_send)
events.register("before-parameter-build.dynamodb.BatchExecuteStatement", _kill_at_aws)
events.register("before-parameter-build.sqs.SendMessageBatch", _kill_at_aws)
events.register("before-call.sqs.SendMessageBatch", _reports_sent)
events.register("before-parameter-build.dynamodb.BatchWriteItem", _recording_reports)
events.register("after-call.dynamodb.BatchWriteItem", _reports_recorded)

import app  # noqa: E402  (the real handler, unchanged)

app.DRAIN.sender.hubspot.write_batch = _after_answer(app.DRAIN.sender.hubspot.write_batch)
drain_handler = app.lambda_handler


def lambda_handler(event, context):
    records = event.get("Records") or [{}]
    first = records[0]
    # The body, not the messageId (SQS makes those up anew each run), so that a seed replays.
    key = f"{SEED}:{first.get('body')}:{first.get('attributes', {}).get('ApproximateReceiveCount')}"
    rng = random.Random(hashlib.sha256(key.encode()).digest())
    # A fault drawn and not yet acted stays armed (see INJECTED); a kill or a stall ends the
    # process, and with it what it had armed.
    seen.clear()
    if INJECTED and os.path.exists(INJECTED):
        seen.update(open(INJECTED, encoding="utf-8").read().split())
    crash = rng.random() < P_CRASH or (P_CRASH > 0 and "crash" not in seen)
    for kind in acted:
        plan[kind] = False
    acted.clear()
    for kind, p in (
        ("stall", P_STALL),
        ("report_fail", P_REPORT_FAIL),
        ("kill_after_answer", P_KILL_AFTER_ANSWER),
        ("kill_at_aws", P_KILL_AT_AWS),
        ("kill", P_KILL),
    ):
        plan[kind] = rng.random() < p or plan[kind] or (p > 0 and kind not in seen)
    killer = threading.Timer(rng.uniform(0, KILL_WITHIN_S), _random_kill) if plan["kill"] else None
    report_window.clear()
    if killer:
        killer.start()
    try:
        response = drain_handler(event, context)
    finally:
        if killer:
            killer.cancel()
    if crash:
        _injected("crash")
        os._exit(17)
    return response
