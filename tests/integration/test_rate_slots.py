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
from payments_drain.pacing import RateGate, SlotGate
from payments_drain.rate_slots import CLAIM_MAX, DynamoRateSlots, RateSlotsUnavailable

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
    later = now_ms() + 60_000
    got: list[list[str]] = []
    start = threading.Barrier(6)

    def container():
        slots = DynamoRateSlots(slots_table, 20)
        start.wait()
        mine: list[str] = []
        for _ in range(10):  # until the item shows none free
            claimed, _ = slots.claim(5, later, now_ms())
            mine += claimed
        got.append(mine)

    threads = [threading.Thread(target=container) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [name for mine in got for name in mine]
    assert sorted(everything) == sorted(f"s{i}" for i in range(20))  # each slot once, none left
    assert DynamoRateSlots(slots_table, 20).claim(1, later, now_ms()) == ([], later)


def test_given_back_slots_are_free_from_their_own_time_and_only_while_still_ours(slots_table):
    slots = DynamoRateSlots(slots_table, 3)
    t0 = now_ms()
    hold = t0 + 60_000
    claimed, _ = slots.claim(3, hold, t0)
    assert sorted(claimed) == ["s0", "s1", "s2"]
    slots.release({"s0": t0 + 10_000, "s1": 0}, held_until_ms=hold - 1)  # not our hold: nothing changes
    assert slots.claim(1, hold, t0) == ([], hold)
    slots.release({"s0": t0 + 10_000, "s1": 0}, held_until_ms=hold)
    assert slots.claim(3, hold, t0 + 1) == (["s1"], t0 + 1)  # s0 only once its request has left
    assert slots.claim(3, hold, t0 + 10_000) == (["s0"], t0 + 10_000)


def test_a_stale_view_costs_a_retry_never_a_slot_and_a_right_one_saves_the_read(slots_table):
    a, b = DynamoRateSlots(slots_table, 4), DynamoRateSlots(slots_table, 4)
    hold = now_ms() + 60_000
    assert len(a.claim(4, hold, now_ms())[0]) == 4
    assert b.claim(1, hold, now_ms()) == ([], hold)  # b now believes every slot held
    a.release({"s0": 0, "s1": 0}, hold)
    assert sorted(b.claim(4, hold, now_ms())[0]) == ["s0", "s1"]  # it reads again, not trusting that
    assert a.claim(4, hold, now_ms()) == ([], hold)  # a believed s0, s1 free: refused, then told
    calls: list[str] = []
    b.client.meta.events.register(
        "before-parameter-build.dynamodb", lambda model, **_: calls.append(model.name)
    )
    b.release({"s0": 0}, hold)
    assert b.claim(1, hold, now_ms())[0] == ["s0"]
    assert calls == ["UpdateItem", "UpdateItem"]  # its view was right: no read


def test_the_whole_limit_is_claimed_and_given_back_in_writes_dynamodb_accepts(slots_table):
    """DynamoDB refuses an expression over 4 KB or 300 operators: a claim of all 190 slots in one
    write is refused (ValidationException), so claims take at most CLAIM_MAX and releases go in
    groups."""
    slots = DynamoRateSlots(slots_table, 190)
    hold = now_ms() + 60_000
    claims = [slots.claim(190, hold, now_ms())[0] for _ in range(8)]
    assert [len(c) for c in claims] == [CLAIM_MAX] * 7 + [190 - 7 * CLAIM_MAX]
    slots.release({name: 0 for claim in claims for name in claim}, hold)
    assert len({name for _ in range(8) for name in slots.claim(190, hold, now_ms())[0]}) == 190


def test_a_killed_container_s_slots_come_back_when_their_hold_ends(slots_table):
    """A real process claims every slot, then dies by SIGKILL before giving them back."""
    hold = now_ms() + 3_000
    script = (
        "import os, signal, sys\n"
        "from payments_drain.rate_slots import DynamoRateSlots\n"
        f"got, _ = DynamoRateSlots({slots_table!r}, 4).claim(4, {hold}, {now_ms()})\n"
        "print(len(got), flush=True)\n"
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
    slots = DynamoRateSlots(slots_table, 4)
    assert slots.claim(4, now_ms() + 60_000, now_ms()) == ([], hold)
    assert len(slots.claim(4, now_ms() + 60_000, hold)[0]) == 4


def test_an_unreachable_table_makes_the_slots_unavailable_without_more(aws_env):
    with pytest.raises(RateSlotsUnavailable, match=r"get_item failed \(ResourceNotFoundException\)$"):
        DynamoRateSlots("no-such-table", 4).claim(1, now_ms(), now_ms())


def test_the_slots_use_exactly_the_actions_the_template_grants(slots_table):
    from local.stack.template import load_yaml

    slots = DynamoRateSlots(slots_table, 2)
    called: set[str] = set()
    slots.client.meta.events.register(
        "before-parameter-build.dynamodb", lambda model, **_: called.add(f"dynamodb:{model.name}")
    )
    claimed, _ = slots.claim(2, now_ms() + 60_000, now_ms())
    slots.release(dict.fromkeys(claimed, 0), now_ms() + 60_000)
    template = load_yaml((ROOT / "template.yaml").read_text())
    policies = template["Resources"]["DrainFunction"]["Properties"]["Policies"]
    [granted] = [
        s for p in policies if "Statement" in p for s in p["Statement"] if s["Sid"] == "ShareRateLimitSlots"
    ]
    assert called == set(granted["Action"])
    assert granted["Resource"] == {"Fn::GetAtt": ["RateSlotsTable", "Arn"]}


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


@pytest.mark.parametrize("shared", [True, False])
def test_a_container_alone_fills_the_window_the_idle_others_left(slots_table, hubspot_sandbox, shared):
    """Three containers share a limit of 12: two send a request each and go idle; the third then
    has 10 calls, all the window has left. With the shared slots they all go in this window;
    pacing by the headers alone keeps (3 - 1) x 4 slots for the others, so the last ones wait."""
    hubspot_sandbox.control.set_config(rate_limit_per_10s=12)
    url = f"{hubspot_sandbox.base_url}/crm/v3/objects/commerce_payments?limit=1"
    http = urllib3.PoolManager(maxsize=4)

    def gate():
        if shared:
            return SlotGate(DynamoRateSlots(slots_table, 12), 12, parallel_calls=4)
        return RateGate(12, containers=3, parallel_calls=4)

    idle = [gate(), gate()]
    for other in idle:
        invocation(other, 1, http, url)
    first_window_ends = time.monotonic() + 10
    done = invocation(gate(), 10, http, url)
    statuses = [status for _, status in done]
    in_first_window = sum(at < first_window_ends for at, _ in done)
    assert statuses == [200] * 10  # and no 429
    if shared:
        assert in_first_window == 10
    else:
        assert in_first_window < 10


def test_the_runbook_s_get_item_shows_who_holds_the_slots(slots_table):
    """docs/operations.md's `aws dynamodb get-item` for the slots, its key and consistent read,
    made with boto3 (no AWS CLI here) against the table after a claim."""
    import json
    import re

    runbook = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    command = re.search(r"`(aws dynamodb get-item --table-name <RateSlotsTableName> [^`]*)`", runbook)
    assert command, "the runbook shows no get-item for the slots table"
    key = json.loads(re.search(r"--key\s+'([^']*)'", command.group(1)).group(1))
    assert "--consistent-read" in command.group(1)
    hold = now_ms() + 60_000
    claimed, _ = DynamoRateSlots(slots_table, 4).claim(2, hold, now_ms())
    item = boto3.client("dynamodb").get_item(TableName=slots_table, Key=key, ConsistentRead=True)["Item"]
    assert {name: int(value["N"]) for name, value in item.items() if name != "name"} == dict.fromkeys(
        claimed, hold
    )
