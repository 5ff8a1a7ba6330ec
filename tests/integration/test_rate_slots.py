"""The rate limit's shared slots against DynamoDB Local, and SlotGates against the sandbox's window."""

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import boto3
import pytest
import urllib3
from payments_drain.adapters.rate_slots import DynamoRateSlots, RateSlotsUnavailable, _decode
from payments_drain.core.slot_log import ROUND_MS
from payments_drain.orchestration.pacing import SlotGate

from local.hubspot_sandbox.config import DEFAULT_TOKEN

ROOT = Path(__file__).parents[2]


def now_ms() -> int:
    return int(time.time() * 1000)


@pytest.fixture
def slots_table(aws_env):
    table = f"slots-{uuid.uuid4().hex[:8]}"
    boto3.client("dynamodb").create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "name", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "name", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return table


def test_containers_claiming_at_once_never_get_the_same_slot(slots_table):
    """Six containers claim 25 slots each of a limit of 20: however the races go, no 20 + 1
    slots lie within a window and its margin of each other (what HubSpot's window could count)."""
    starts: list[int] = []
    begin = threading.Barrier(6)
    t0 = -(-now_ms() // 50) * 50  # on the slots' grid

    def container():
        slots = DynamoRateSlots(slots_table, 20, parallel=4)
        begin.wait()
        mine: list[int] = []
        while len(mine) < 25:  # a claim that lost every race says busy: the gate tries again later
            mine += slots.claim(5, t0, t0 + 100_000).starts_ms
        starts.extend(mine)

    threads = [threading.Thread(target=container) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ordered, gap = sorted(starts), DynamoRateSlots(slots_table, 20).gap_ms
    assert len(ordered) == 150 and all(b - a >= gap for a, b in zip(ordered, ordered[20:]))
    assert ordered[19] - ordered[0] < 2_000  # and the first window went at once, as a burst


def test_a_stale_view_costs_a_retry_never_a_slot_and_a_right_one_saves_the_read(slots_table):
    a, b = DynamoRateSlots(slots_table, 20), DynamoRateSlots(slots_table, 20)
    t0 = -(-now_ms() // 50) * 50  # on the slots' grid
    assert a.claim(4, t0, t0 + 60_000).starts_ms == [t0 + i * ROUND_MS for i in range(4)]  # one caller
    assert b.claim(2, t0, t0 + 60_000).starts_ms == [t0, t0 + ROUND_MS]  # beside a's: 6 of 20
    calls: list[str] = []
    for slots in (a, b):
        slots.item.client.meta.events.register(
            "before-parameter-build.dynamodb", lambda model, **_: calls.append(model.name)
        )
    assert b.claim(1, t0, t0 + 60_000).starts_ms == [t0]  # its view was right
    assert calls == ["UpdateItem"]  # no read, one write
    assert a.claim(1, t0, t0 + 60_000).starts_ms == [t0]  # a's view was stale
    assert calls == ["UpdateItem"] * 3  # refused once, then told the item


def test_a_claim_that_cannot_fit_takes_a_ticket_in_line(slots_table):
    slots = DynamoRateSlots(slots_table, 20, parallel=20)
    t0 = -(-now_ms() // 50) * 50  # on the slots' grid
    assert len(slots.claim(100, t0, t0 + 5_000).starts_ms) == 20  # a window, then the next is too late
    late = [DynamoRateSlots(slots_table, 20).claim(10, t0, t0 + 5_000) for _ in range(2)]
    assert [c.starts_ms for c in late] == [[], []]
    # in line from the next window (a gap after the first), back 5 s before; the second 10 slots
    # later at the sustained rate
    first = t0 + slots.gap_ms - 5_000
    assert [c.retry_at_ms for c in late] == [first, first + 10 * slots.spacing_ms]


def test_a_killed_container_holds_nothing_once_its_slots_have_passed(slots_table):
    """A real process claims slots, then dies by SIGKILL: the next claim follows them at once."""
    t0 = -(-now_ms() // 50) * 50  # on the slots' grid
    script = (
        "import sys\n"
        "from payments_drain.adapters.rate_slots import DynamoRateSlots\n"
        f"claim = DynamoRateSlots({slots_table!r}, 20, parallel=4).claim(4, {t0}, {t0 + 60_000})\n"
        "print(len(claim.starts_ms), flush=True)\n"
        "sys.stdin.readline()\n"  # holds them until killed
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "layers" / "shared")}
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
    )
    try:
        assert proc.stdout.readline().strip() == b"4"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    later = -(-now_ms() // 50) * 50
    assert DynamoRateSlots(slots_table, 20).claim(1, later, later + 60_000).starts_ms == [later]


def test_an_unreachable_table_makes_the_slots_unavailable_without_more(aws_env):
    with pytest.raises(RateSlotsUnavailable, match=r"get_item failed \(ResourceNotFoundException\)$"):
        DynamoRateSlots("no-such-table", 4).claim(1, now_ms(), now_ms() + 60_000)


def test_the_slots_use_exactly_the_actions_the_template_grants(slots_table):
    from local.stack.template import load_yaml

    slots = DynamoRateSlots(slots_table, 2)
    called: set[str] = set()
    slots.item.client.meta.events.register(
        "before-parameter-build.dynamodb", lambda model, **_: called.add(f"dynamodb:{model.name}")
    )
    slots.claim(2, now_ms(), now_ms() + 60_000)
    slots.claim(2, now_ms(), now_ms())  # no room: a ticket
    template = load_yaml((ROOT / "template.yaml").read_text())
    policies = template["Resources"]["DrainFunction"]["Properties"]["Policies"]
    [granted] = [
        s for p in policies if "Statement" in p for s in p["Statement"] if s["Sid"] == "ShareRateLimitSlots"
    ]
    assert called == set(granted["Action"])
    own, existing = granted["Resource"]["Fn::If"][1:]  # the stack's table, or the one it was given
    assert own == {"Fn::GetAtt": ["RateSlotsTable", "Arn"]}
    assert existing["Fn::Sub"].endswith(":table/${ExistingRateSlotsTableName}")


def call_through(gate, http, url, done: list) -> None:
    """One caller of a container: wait for the gate, call the sandbox, tell the gate."""
    while (wait := gate.delay()) > 0:
        time.sleep(wait)
    gate.started()
    response = http.request("GET", url, headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"})
    gate.finished(dict(response.headers), 1.0 if response.status == 429 else 0.0)
    done.append((time.monotonic(), response.status))


def invocation(gate, calls: int, http, url, deadline_s: float = 60) -> list:
    """What the drain does per batch: begin, ``calls`` requests four at a time, end."""
    done: list = []
    gate.begin(now_ms() + int(deadline_s * 1000), calls)
    threads = [
        threading.Thread(target=lambda n=n: [call_through(gate, http, url, done) for _ in range(n)])
        for n in [calls // 4 + (i < calls % 4) for i in range(4)]
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    gate.end()
    return done


def test_a_container_alone_fills_the_window_the_idle_others_left(slots_table, hubspot_sandbox):
    """Three containers share a limit of 12: two send a request each and go idle; the third then
    has 10 calls, all the window has left. With the shared timeline they all go in this window
    (pacing by the headers alone would have to keep (3 - 1) x 4 slots for the others)."""
    hubspot_sandbox.control.set_config(rate_limit_per_10s=12)
    url = f"{hubspot_sandbox.base_url}/crm/v3/objects/commerce_payments?limit=1"
    http = urllib3.PoolManager(maxsize=4)
    idle = [SlotGate(DynamoRateSlots(slots_table, 12)) for _ in range(2)]
    for other in idle:
        invocation(other, 1, http, url)
    first_window_ends = time.monotonic() + 10
    done = invocation(SlotGate(DynamoRateSlots(slots_table, 12)), 10, http, url)
    statuses = [status for _, status in done]
    in_first_window = sum(at < first_window_ends for at, _ in done)
    assert statuses == [200] * 10  # and no 429
    assert in_first_window == 10


def test_two_stacks_sharing_one_slots_table_share_one_budget(aws_env, hubspot_sandbox):
    """Two deployments on one HubSpot app (ExistingRateSlotsTableName): each sends 60 requests
    through two containers of its own. On one table they share the limit of 100 and none is
    refused; each on its own table (each stack believing it has the whole limit), some are."""
    hubspot_sandbox.control.set_config(rate_limit_per_10s=100)
    url = f"{hubspot_sandbox.base_url}/crm/v3/objects/commerce_payments?limit=1"
    http = urllib3.PoolManager(maxsize=16)

    def run(tables: list[str]) -> list[int]:
        done: list = []
        gates = [SlotGate(DynamoRateSlots(table, 100)) for table in tables for _ in range(2)]
        threads = [
            threading.Thread(target=lambda g=g: done.extend(invocation(g, 30, http, url))) for g in gates
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return [status for _, status in done]

    tables = []
    for _ in range(3):
        tables.append(f"slots-{uuid.uuid4().hex[:8]}")
        boto3.client("dynamodb").create_table(
            TableName=tables[-1],
            KeySchema=[{"AttributeName": "name", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "name", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    shared = run([tables[0], tables[0]])
    assert len(shared) == 120 and shared.count(429) == 0
    time.sleep(10.5)  # the sandbox's window empties
    apart = run([tables[1], tables[2]])
    assert apart.count(429) > 0


def test_stacks_sharing_a_table_with_different_limits_both_keep_to_the_smaller(slots_table, log_lines):
    """Two stacks on one app must share HubSpotRateLimitPer10s; one deployed with 20 and one with 10
    used to each plan by its own, so the first filled a window to 20 where the app allows 10. The
    item now carries the limit its last writer planned with: a container that meets another keeps
    to the smaller, and says so in a warning."""
    import json

    t0 = -(-now_ms() // 50) * 50  # on the slots' grid
    twenty, ten = DynamoRateSlots(slots_table, 20, parallel=20), DynamoRateSlots(slots_table, 10, parallel=20)
    assert twenty.claim(5, t0, t0 + 60_000).starts_ms == [t0] * 5
    assert ten.claim(10, t0, t0 + 60_000).starts_ms == [t0] * 5 + [t0 + ten.gap_ms] * 5
    later = twenty.claim(10, t0, t0 + 60_000).starts_ms  # its view is stale: it meets the 10 here
    assert len(later) == 10 and min(later) >= t0 + twenty.gap_ms
    item = boto3.client("dynamodb").get_item(
        TableName=slots_table, Key={"name": {"S": "hubspot-rate-timeline"}}
    )
    log = _decode(item["Item"]["log"])
    assert all(b - a >= twenty.gap_ms for a, b in zip(log, log[10:]))  # never 10 + 1 within a gap
    warnings = [json.loads(line) for line in log_lines() if "another limit" in line]
    assert sorted((w["configured"], w["other"]) for w in warnings) == [(10, 20), (20, 10)]  # once each
    ten.claim(1, t0, t0 + 60_000)  # stale again: it meets the 20 once more, and says nothing new
    assert sum("another limit" in line for line in log_lines()) == 2


def test_the_runbook_s_get_item_shows_the_timeline(slots_table):
    """docs/operations.md's `aws dynamodb get-item` for the slots, its key and consistent read,
    made with boto3 (no AWS CLI here) against the table after a claim."""
    import json
    import re

    runbook = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    command = re.search(r"`(aws dynamodb get-item --table-name <RateSlotsTableName> [^`]*)`", runbook)
    assert command, "the runbook shows no get-item for the slots table"
    key = json.loads(re.search(r"--key\s+'([^']*)'", command.group(1)).group(1))
    assert "--consistent-read" in command.group(1)
    slots = DynamoRateSlots(slots_table, 2, parallel=2)
    t0 = -(-now_ms() // 50) * 50  # on the slots' grid
    slots.claim(2, t0, t0 + 60_000)
    slots.claim(2, t0, t0)  # no room before its reach: a ticket
    item = boto3.client("dynamodb").get_item(TableName=slots_table, Key=key, ConsistentRead=True)["Item"]
    assert _decode(item["log"]) == [t0, t0]  # two slots at t0 (the runbook: "first;gap.count,...")
    assert int(item["queue"]["N"]) == t0 + slots.gap_ms + 2 * slots.spacing_ms
