"""Chaos: the local stack with faults everywhere, and the invariant (docs/how-it-works.md) checked after the
drain. Small in CI; scale it locally, and replay a failing run by its seed:

    CHAOS_COUNT=10000 CHAOS_SEED=42 .venv/bin/python -m pytest tests/chaos -s

Faults: sandbox 429s, 5xx, latency, connection resets, stored-then-timed-out and stored-then-reset
replies; producers sending the same payment twice; containers killed with SIGKILL at random
instants, the moment a HubSpot answer that stored payments is read, and before ledger claims or
report sends; invocations that crash after HubSpot succeeded but before answering; calls that hang
after such an answer; failure-report sends that fail (tests/chaos/function/chaos_app.py).
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
from collections import Counter
from pathlib import Path

import pytest

from local.hubspot_sandbox import SandboxConfig
from local.stack import LocalStack, workload
from local.stack.aws import boto3_client

pytestmark = pytest.mark.slow

COUNT = int(os.environ.get("CHAOS_COUNT", "300"))
SEED = int(os.environ.get("CHAOS_SEED", "20261127"))
FUNCTION_DIR = Path(__file__).parent / "function"
FAST = {  # short timeouts so that redeliveries happen within the run; the rest is template.yaml's
    "BatchSize": "20",
    "BatchingWindowSeconds": "1",
    "FunctionTimeoutSeconds": "10",
    "QueueVisibilityTimeoutSeconds": "12",
    "MaxReceiveCount": "20",
    "HubSpotUnavailableHoldSeconds": "2",
    "DailyLimitHoldSeconds": "3",
}
# Faults after which HubSpot surely did not store, or said it stored (a hang stores nothing; an
# unreadable 2xx still means stored; a 2xx with errors[] names its failed inputs).
SANDBOX_FAULTS = {
    "p_429": 0.08,
    "p_500": 0.05,
    "p_503": 0.05,
    "p_reset": 0.04,
    "latency_ms": 20,
    "latency_jitter_ms": 60,
    "retry_after_s": 1,
    "p_hang": 0.02,
    "hang_max_s": 30,
    "p_stored_then_unreadable": 0.03,
    "p_2xx_with_errors": 0.05,
    "p_daily_spell": 0.01,
    "daily_spell_s": 3,
}
# Faults after which the drain cannot know whether HubSpot stored the payments.
AMBIGUOUS_FAULTS = {
    "p_stored_then_timeout": 0.08,
    "p_reset_after_store": 0.08,
    "stored_then_timeout_delay_s": 4,
    "p_trickle": 0.03,
    "trickle_interval_s": 0.5,
}


def hostile_bodies() -> list[workload.WorkItem]:
    """What producers really send now and then: an emoji cut in half (a lone surrogate escape),
    JSON nested far deeper than any parser's guard, a body near the queue's size limit whose
    report, escaped, would be twice the limit. Each must end in exactly one report."""

    def bad_amount(key: str, value: str) -> str:  # invalid for its amount, which holds the hostile text
        return json.dumps(
            {
                "paymentKey": key,
                "properties": {"hs_initial_amount": value, "hs_initiated_date": "2026-11-27T10:00:00Z"},
            }
        )

    deep = '{"paymentKey": "hostile-deep", "properties": ' + "[" * 20_000 + "]" * 20_000 + "}"
    return [
        workload.WorkItem(
            bad_amount("hostile-surrogate", "caf\ud83d"), "lone_surrogate", "hostile-surrogate"
        ),
        workload.WorkItem(deep, "deeply_nested", "hostile-deep"),
        workload.WorkItem(bad_amount("hostile-big", '"' * 520_000), "near_size_limit", "hostile-big"),
    ]


def workload_with_resends(count: int, seed: int) -> list[workload.WorkItem]:
    """The generated workload, plus 5% of its valid payments sent a second time by the producer."""
    items = workload.generate(count, invalid_share=0.05, seed=seed)
    rng = random.Random(seed)
    valid = [it for it in items if it.valid]
    items += rng.sample(valid, max(1, len(valid) // 20)) + hostile_bodies()
    rng.shuffle(items)
    return items


def run_chaos(parameters: dict, sandbox_faults: dict, chaos: dict, seed: int, tmp_path: Path) -> dict:
    injected_log = tmp_path / "injected.log"
    # Each sandbox fault once, in a seeded order, before the random draws: a fault of 1 % over a
    # few dozen requests is otherwise often never drawn (the sandbox's script, docs/sandbox.md).
    script = [name[2:] for name, p in sandbox_faults.items() if name.startswith("p_") and p > 0]
    random.Random(seed).shuffle(script)
    sandbox_faults = {**sandbox_faults, "script": script}
    # The account as `make setup-hubspot` leaves it for the stack's HubSpotUniqueProperty (none if "").
    config = SandboxConfig(seed=seed)
    with LocalStack(
        parameters={**FAST, **parameters}, sandbox_config=config, sandbox_faults=sandbox_faults
    ) as stack:
        function = stack.function
        stack.function = dataclasses.replace(
            function,
            handler="chaos_app.lambda_handler",
            code_uri=FUNCTION_DIR,
            layer_dirs=(*function.layer_dirs, function.code_uri),
            environment={
                **function.environment,
                "HUBSPOT_READ_TIMEOUT_SECONDS": "2",
                "CHAOS_SEED": str(seed),
                "DAILY_LIMIT_PROBE_SECONDS": "2",
                "CHAOS_INJECTED_LOG": str(injected_log),
                **{f"CHAOS_{k.upper()}": str(v) for k, v in chaos.items()},
            },
        )
        ledger = boto3_client("dynamodb", stack.dynamodb_endpoint, stack.region)
        items = workload_with_resends(COUNT, seed)
        enq = stack.enqueue(items)
        # A guard against a run that never drains, not a target: at 10,000 the template defaults' run
        # (every redelivery of a killed batch sent again, HubSpot refusing it) took over 740 s on a
        # shared 2-core machine, with 20 messages still held.
        result = stack.drain(timeout=240 + COUNT / 10)
        by_trace = enq.by_message_id
        created = Counter()
        for payment in stack.sandbox.control.payments():
            item = by_trace.get(payment.get("objectWriteTraceId"))
            created[item.payment_key if item else f"unknown:{payment.get('id')}"] += 1
        reports = Counter(r["messageId"] for r in stack.failure_reports())
        state = {
            "drained": result.empty,
            "elapsed_s": round(result.elapsed_s, 1),
            "items": items,
            "enq": enq,
            "created": created,
            "reports": reports,
            "queue": stack.queue_counts(),
            "dlq": stack.queue_counts(stack.dlq_url),
            "metrics": stack.sink.metrics(),
            "sandbox": stack.sandbox.control.stats(),
            "invocations": len(stack.batches),
            "failed_invocations": sum(1 for b in stack.batches if b.get("error")),
            "sigkilled": sum(
                1 for b in stack.batches if "(-9)" in str((b.get("error") or {}).get("errorMessage"))
            ),
            "injected": Counter(injected_log.read_text().split()) if injected_log.exists() else Counter(),
            "ledger_keys": [
                item["paymentKey"]["S"]
                for page in ledger.get_paginator("scan").paginate(
                    TableName=function.environment["LEDGER_TABLE_NAME"]
                )
                for item in page["Items"]
            ],
        }
    print_summary(state, seed)
    return state


def print_summary(state: dict, seed: int) -> None:
    metric = lambda name: int(state["metrics"].get(name, {}).get("sum", 0))  # noqa: E731
    print(
        json.dumps(
            {
                "seed": seed,
                "messages": len(state["items"]),
                "drained": state["drained"],
                "elapsed_s": state["elapsed_s"],
                "created_keys": len(state["created"]),
                "created_more_than_once": sum(1 for n in state["created"].values() if n > 1),
                "reported_messages": len(state["reports"]),
                "queue": state["queue"],
                "dlq": state["dlq"],
                "invocations": state["invocations"],
                "failed_invocations": state["failed_invocations"],
                "sigkilled": state["sigkilled"],
                "hubspot_requests_by_status": state["sandbox"]["requests_by_status"],
                "faults_injected": state["sandbox"]["faults_injected"],
                "function_faults_injected": dict(state["injected"]),
                "duplicates_settled": metric("PaymentsDuplicate"),
                "ambiguous": metric("AmbiguousCreates"),
            },
            indent=1,
        )
    )


def check_faults(state: dict, sandbox_faults: dict, chaos: dict) -> None:
    """Every fault the run claims acted at least once: the sandbox's (counted by the sandbox) and
    the function's (counted by chaos_app as each acts)."""
    sandbox = state["sandbox"]["faults_injected"]
    for name, p in sandbox_faults.items():
        if name.startswith("p_") and p > 0:
            assert sandbox.get(name[2:], 0) > 0, f"the sandbox never injected {name[2:]}: {sandbox}"
    names = {"p_crash": "crash", "p_kill": "kill", "p_kill_after_answer": "kill_after_answer",
             "p_kill_at_aws": "kill_at_aws", "p_stall": "stall", "p_report_fail": "report_fail"}  # fmt: skip
    for name, p in chaos.items():
        if p > 0:
            assert state["injected"][names[name]] > 0, f"{names[name]} never acted: {dict(state['injected'])}"


def check_invariant(state: dict, *, exactly_once: bool = True) -> None:
    items, enq = state["items"], state["enq"]
    valid_keys = {it.payment_key for it in items if it.valid}
    invalid_ids = {mid for mid, it in enq.by_message_id.items() if not it.valid}
    empty = {"visible": 0, "in_flight": 0, "delayed": 0}
    assert state["drained"] and state["queue"] == empty and state["dlq"] == empty
    # every valid payment exists in HubSpot (exactly once, when the configuration allows it)
    assert set(state["created"]) == valid_keys
    if exactly_once:
        assert {k: n for k, n in state["created"].items() if n > 1} == {}
    # every invalid message has exactly one report, and no valid one has any
    assert set(state["reports"]) == invalid_ids
    assert {m: n for m, n in state["reports"].items() if n > 1} == {}
    # queue + DLQ + created + reported account for every message sent
    for message_id, item in enq.by_message_id.items():
        assert (item.payment_key in state["created"]) if item.valid else (message_id in state["reports"])


def test_the_template_defaults_are_exactly_once_under_every_fault(tmp_path):
    # The template's defaults: the unique property (payments_drain_key, as setup makes it) and the
    # ledger, which then keeps only the written reports (docs/exactly-once.md).
    faults = {**SANDBOX_FAULTS, **AMBIGUOUS_FAULTS}
    chaos = {"p_crash": 0.1, "p_kill": 0.2, "p_kill_after_answer": 0.5, "p_stall": 0.05, "p_report_fail": 0.2}
    state = run_chaos({}, faults, chaos, SEED, tmp_path)
    check_invariant(state)
    check_faults(state, faults, chaos)
    faults = state["sandbox"]["faults_injected"]
    assert faults.get("stored_then_timeout", 0) + faults.get("reset_after_store", 0) > 0  # ambiguity was real
    # SIGKILLs here depend on the batches a run happens to form (some 300-payment runs saw none):
    # tests/e2e/test_kills.py kills a container in every run, and docs/exactly-once.md's 10,000 runs count them.
    assert state["metrics"]["PaymentsDuplicate"]["sum"] > 0  # and were settled as duplicates
    # ... by HubSpot: no payment was claimed or recorded (the ledger's writes cost nothing per payment)
    assert state["ledger_keys"] and all(key.startswith("report ") for key in state["ledger_keys"])


def test_the_ledger_alone_gives_exactly_once_when_no_reply_is_ambiguous(tmp_path):
    # Kills only where no HubSpot exchange is left unrecorded: a kill with a chunk in flight, or
    # between an answer and its record, is an ambiguous reply (the first run covers those).
    chaos = {"p_crash": 0.2, "p_kill_at_aws": 0.3, "p_report_fail": 0.2}
    state = run_chaos({"HubSpotUniqueProperty": ""}, SANDBOX_FAULTS, chaos, SEED + 1, tmp_path)
    check_invariant(state)
    check_faults(state, SANDBOX_FAULTS, chaos)
    assert state["sigkilled"] > 0 and state["metrics"]["PaymentsDuplicate"]["sum"] > 0


def test_without_the_unique_property_ambiguous_replies_are_counted_and_nothing_is_lost(tmp_path):
    # No stalls here: an invocation killed mid-batch never prints its metrics, so the count would
    # be short by what it saw (its payments are counted again, once, when they are reclaimed).
    faults = {**SANDBOX_FAULTS, **AMBIGUOUS_FAULTS}
    state = run_chaos({"HubSpotUniqueProperty": ""}, faults, {"p_crash": 0.1}, SEED + 2, tmp_path)
    check_invariant(state, exactly_once=False)
    check_faults(state, faults, {"p_crash": 0.1})
    extra = sum(n - 1 for n in state["created"].values())
    ambiguous = state["metrics"].get("AmbiguousCreates", {}).get("sum", 0)
    assert extra <= ambiguous  # exactly-once.md: every extra copy was counted as ambiguous
