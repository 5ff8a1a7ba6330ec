"""Several stacks on one HubSpot app (docs/deploy.md): the template deployed twice on the local
stack, the second with the deploy doc's overrides, drained at once against one sandbox app."""

from __future__ import annotations

import itertools
import re
import shlex
import threading
from collections import Counter
from pathlib import Path

import boto3
import pytest

from local.stack import LocalStack, workload
from local.stack.aws import DUMMY_CREDENTIALS
from local.stack.template import parse_overrides

from .conftest import FAST

pytestmark = pytest.mark.slow
DEPLOY = (Path(__file__).parents[2] / "docs" / "deploy.md").read_text(encoding="utf-8")
# One HubSpot request per invocation (10 payments), so that each stack alone can send more than
# half the limit: two stacks with a budget each would send up to twice it.
SMALL = {"BatchSize": "10", "BatchingWindowSeconds": "0"}
PAYMENTS = 800  # per stack: 80 requests each, 160 in all, over a limit of 100 per 10 s


def second_stack_deploy() -> tuple[str, dict[str, str]]:
    """The stack name and the `--parameter-overrides` of the deploy doc's command for the second stack."""
    section = DEPLOY.split("\n## Several stacks on one HubSpot app\n", 1)[1].split("\n## ", 1)[0]
    [command] = re.findall(r"\.venv-sam/bin/sam (deploy [^\n`]+)", section)
    words = shlex.split(command)
    rest = words[words.index("--parameter-overrides") + 1 :]
    overrides = parse_overrides(list(itertools.takewhile(lambda w: not w.startswith("--"), rest)))
    return words[words.index("--stack-name") + 1], overrides


@pytest.mark.parametrize("shared", [True, False])
def test_two_stacks_on_one_app_share_one_budget_through_one_slots_table(shared):
    second_name, overrides = second_stack_deploy()
    assert set(overrides) == {"ExistingRateSlotsTableName", "HubSpotRateLimitPer10s"}
    assert overrides["ExistingRateSlotsTableName"] == "$SLOTS_TABLE"  # the first's output, below
    limit = overrides["HubSpotRateLimitPer10s"]  # both stacks the same (the doc says why)
    first = LocalStack(
        parameters={**FAST, **SMALL, "HubSpotRateLimitPer10s": limit}, stack_name="payments-drain"
    )
    second = None
    try:
        first.start()
        slots_table = first.outputs()["RateSlotsTableName"]
        if shared:
            overrides["ExistingRateSlotsTableName"] = slots_table
        else:  # the control: each stack a table, and a budget, of its own
            del overrides["ExistingRateSlotsTableName"]
        second = LocalStack(
            parameters={**FAST, **SMALL, **overrides},
            stack_name=second_name,
            hubspot_sandbox=first.sandbox,  # one HubSpot app, one token
            dynamodb_endpoint=first.dynamodb_endpoint,
        ).start()

        used = [s.function.environment["RATE_SLOTS_TABLE_NAME"] for s in (first, second)]
        if shared:
            assert second.outputs()["RateSlotsTableName"] == slots_table
            assert "RateSlotsTable" not in second.resources.physical  # no table of its own
            assert used == [slots_table, slots_table]
        else:
            assert used[0] != used[1]
        tables = boto3.client(
            "dynamodb",
            endpoint_url=first.dynamodb_endpoint,
            region_name="us-east-1",
            **{k.lower(): v for k, v in DUMMY_CREDENTIALS.items()},
        ).list_tables()["TableNames"]
        assert sorted(t for t in tables if "RateSlotsTable" in t) == sorted(set(used))

        items = {
            s: workload.generate(PAYMENTS, invalid_share=0.0, seed=n) for n, s in enumerate((first, second))
        }
        sent = {}  # message id -> what was sent, for both stacks
        for stack, work in items.items():
            sent.update(stack.enqueue(work).by_message_id)
        results: dict = {}
        threads = [
            threading.Thread(target=lambda s=s: results.__setitem__(s, s.drain(timeout=120)))
            for s in (first, second)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert all(result.empty for result in results.values()), [r.stats for r in results.values()]

        control = first.sandbox.control
        created = Counter(sent[p["objectWriteTraceId"]].payment_key for p in control.payments())
        assert created == Counter(it.payment_key for work in items.values() for it in work)
        stats = control.stats()
        throttled = stats["rate_limited"].get("TEN_SECONDLY_ROLLING", 0)
        # The two stacks together pressed on the app's limit ...
        assert stats["max_requests_in_window"] >= 0.8 * int(limit)
        if shared:
            # ... and one timeline kept them under it,
            assert throttled == 0
            assert stats["max_admitted_in_window"] <= int(limit)
        else:
            # ... which two budgets do not.
            assert throttled > 0
    finally:
        if second is not None:
            second.stop()
        first.stop()


def test_a_stack_given_another_s_sandbox_takes_none_of_its_own_settings():
    with pytest.raises(ValueError, match="keeps its own configuration"):
        LocalStack(hubspot_sandbox=object(), rate_limit=100)
