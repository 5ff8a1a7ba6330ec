"""Figure h: N containers contending for HubSpot's limit through the shared timeline.

``python -m benchmarks.contention [--containers 4,50,200,1000] [--seed N]`` (``make bench`` runs
it as figure h). Virtual time: the simulated week's scheduler (``simulation.scheduler``) runs the
real ``SlotGate`` and ``DynamoRateSlots`` of every container against the simulated DynamoDB
(``simulation.dynamodb``: DynamoDB Local's conditional semantics, held to it by
tests/contract, and DynamoDB's per-item limit of 1,000 write units a second, past which a write is
throttled), so minutes of a thousand containers take seconds. The rest is a model, stated here:

- the queue: ``chunks`` HubSpot requests' worth of payments (100 each), delivered in batches of
  ``batch`` chunks; a chunk not sent by its invocation is held as the drain holds it (until its
  ticket for ``NO_SLOT_YET``, else the visibility timeout), and one received ``max_receives`` times
  goes to the dead-letter queue at its next receive (counted);
- the event source: it starts at five containers and adds 300 a minute up to ``containers``
  (``limits.LAMBDA_SQS_SCALE_UP_PER_MIN``); an idle container polls the queue every second;
- an invocation: ``INVOKE_S`` to start, ``timeout_s``, calls until ``margin_s`` before it,
  ``parallel`` callers; DynamoDB answers in 4-8 ms;
- HubSpot: a call takes 150 +- 50 ms (``call_ms``, a uniform range; ``--call-ms`` to try slower
  answers) and is counted in the rolling window when it arrives, a third of the way in; past
  ``limit`` in the window it is answered 429 (Retry-After 1 s).

The bound is the rate limit's: ``chunks`` requests as full windows of ``limit`` back to back.
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import sys
import uuid
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field

from botocore.exceptions import ClientError
from greenlet import greenlet
from payments_drain.adapters.rate_slots import DynamoRateSlots
from payments_drain.core import clock as clocks
from payments_drain.core.limits import DDB_ITEM_WCU_PER_S, LAMBDA_SQS_SCALE_UP_PER_MIN, SQS_MAX_VISIBILITY_S
from payments_drain.orchestration.pacing import SlotGate

from simulation.dynamodb import DynamoFaults, SimDynamoDB, Units, create_hash_table, refused_write_units
from simulation.scheduler import Scheduler

WINDOW_S = 10.0
DYNAMO = DynamoFaults(latency_s=0.004, jitter_s=0.004)  # DynamoDB answers in 4-8 ms (both backings)
INVOKE_S = 0.1  # per invocation: the event source's receives and the call of the function


@dataclass
class Chunk:
    visible_at: float = 0.0
    receives: int = 0
    sent: bool = False


@dataclass
class Result:
    containers: int
    chunks: int
    drain_s: float
    bound_s: float
    requests: int
    throttled_429: int
    dead_lettered: int
    holds: Counter = field(default_factory=Counter)
    peak_wcu_s: int = 0
    mean_wcu_s: float = 0.0
    peak_rcu_s: int = 0
    writes: int = 0

    @property
    def ratio(self) -> float:
        return self.drain_s / self.bound_s

    @property
    def share_429(self) -> float:
        return self.throttled_429 / max(1, self.requests)

    def as_dict(self) -> dict:
        return {
            "containers": self.containers,
            "chunks": self.chunks,
            "drain_s": round(self.drain_s, 1),
            "bound_s": round(self.bound_s, 1),
            "ratio": round(self.ratio, 3),
            "requests": self.requests,
            "share_429": round(self.share_429, 4),
            "dead_lettered": self.dead_lettered,
            "holds": dict(self.holds),
            "peak_wcu_per_s": self.peak_wcu_s,
            "mean_wcu_per_s": round(self.mean_wcu_s, 1),
            "peak_rcu_per_s": self.peak_rcu_s,
            "slot_table_writes": self.writes,
        }


class LocalDynamo:
    """DynamoDB Local behind the model's clock, for the write counts on real conditional writes
    (the issue's "measure it against DynamoDB Local"): each request first waits 4-8 ms of virtual
    time, drawn as SimDynamoDB draws them, then goes to DynamoDB Local; greenlets switch only at
    a sleep, so requests reach it one at a time, in the model's order. Units per item and virtual
    second, as SimDynamoDB counts them: DynamoDB Local's own ConsumedCapacity for a request it
    carried out, and for a conditional write it refused what DynamoDB charges for one (DynamoDB
    Local reports none). DynamoDB Local does not throttle an item past 1,000 WCU/s: that part of
    the model stays with SimDynamoDB."""

    def __init__(self, endpoint: str, sched, rng: random.Random, faults: DynamoFaults = DYNAMO) -> None:
        import boto3

        # DynamoDB Local takes any credentials; the figure's process may have none (make bench)
        self.client = boto3.client(
            "dynamodb",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - not a secret: DynamoDB Local's placeholder
        )
        self.sched, self.rng, self.faults = sched, rng, faults
        self.units: defaultdict[tuple[str, object, int], Units] = defaultdict(Units)
        self.calls: Counter[str] = Counter()

    def create_table(self, **request):
        return self.client.create_table(**request)

    def get_item(self, **request):
        return self._send("GetItem", self.client.get_item, request)

    def update_item(self, **request):
        return self._send("UpdateItem", self.client.update_item, request)

    def _send(self, operation: str, call, request: dict):
        self.calls[operation] += 1
        self.sched.sleep(self.faults.latency_s + self.rng.uniform(0, self.faults.jitter_s))
        cell = self.units[(request["TableName"], str(request["Key"]), int(self.sched.wall()))]
        try:
            answer = call(ReturnConsumedCapacity="TOTAL", **request)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                cell.write += refused_write_units(error.response.get("Item"))
            raise
        spent = math.ceil(answer.get("ConsumedCapacity", {}).get("CapacityUnits", 0))
        if operation == "GetItem":
            cell.read += spent
        else:
            cell.write += spent
        return answer


def run(
    containers: int,
    chunks: int,
    seed: int = 1,
    *,
    limit: int = 190,
    batch: int = 10,
    parallel: int = 4,
    timeout_s: float = 60.0,
    margin_s: float = 10.0,
    visibility_s: float = 370.0,
    max_receives: int = 5,
    call_ms: tuple[int, int] = (100, 200),
    dynamodb_endpoint: str | None = None,
) -> Result:
    """One run of the model; ``dynamodb_endpoint``: the slots item in DynamoDB Local (real
    conditional writes, ``LocalDynamo``) instead of SimDynamoDB."""
    sched = Scheduler()
    previous = clocks.install(sched)
    try:
        rng = random.Random(seed)
        if dynamodb_endpoint:  # the same latencies, drawn alike: the same run, on real conditional writes
            ddb = LocalDynamo(dynamodb_endpoint, sched, random.Random(seed + 1))
            table = f"slots-{uuid.uuid4().hex[:8]}"
        else:
            ddb = SimDynamoDB(sched, random.Random(seed + 1), DYNAMO)
            table = "slots"
        create_hash_table(ddb, table, "name")
        queue = [Chunk() for _ in range(chunks)]
        visible = [(0.0, i) for i in range(chunks)]  # a heap of (visible_at, index); stale entries skipped
        left = [chunks]
        window: deque[float] = deque()
        stats = Counter()
        holds: Counter = Counter()
        start = sched.now
        last_answer = [start]

        def receive() -> list[Chunk]:
            """Up to ``batch`` visible chunks, oldest first (SQS does not promise an order)."""
            taken = []
            while visible and visible[0][0] <= sched.now and len(taken) < batch:
                at, index = heapq.heappop(visible)
                chunk = queue[index]
                if chunk.sent or chunk.visible_at != at:
                    continue
                chunk.receives += 1
                if chunk.receives > max_receives:
                    chunk.sent = True  # to the dead-letter queue
                    left[0] -= 1
                    stats["dead"] += 1
                    continue
                hide(index, sched.now + visibility_s)
                taken.append(index)
            return taken

        def hide(index: int, until: float) -> None:
            queue[index].visible_at = until
            heapq.heappush(visible, (until, index))

        def call() -> bool:
            """One HubSpot request; whether it was accepted (else 429)."""
            latency = rng.uniform(*call_ms) / 1000
            sched.sleep(latency / 3)  # counted on arrival
            while window and window[0] <= sched.now - WINDOW_S:
                window.popleft()
            accepted = len(window) < limit
            stats["requests"] += 1
            if accepted:
                window.append(sched.now)
            else:
                stats["429"] += 1
            sched.sleep(latency * 2 / 3)
            last_answer[0] = max(last_answer[0], sched.now)
            return accepted

        def caller(gate: SlotGate, mine: deque, calls_end: float) -> None:
            while mine:
                index = mine.popleft()
                chunk = queue[index]
                while True:
                    delay = gate.delay()
                    if delay > 0:
                        if sched.now + delay + 0.3 > calls_end:
                            until_ms = gate.no_slot_until_ms()
                            if until_ms is not None:  # held until its ticket comes up (Wait.NO_SLOT_YET)
                                holds["no_slot_yet"] += 1
                                hold = until_ms / 1000 - sched.now
                                if chunk.receives == max_receives - 1:  # the last-delivery rule
                                    hold = SQS_MAX_VISIBILITY_S.value - 120
                                hide(index, sched.now + max(1.0, hold))
                            else:
                                holds["visibility_timeout"] += 1
                            break
                        sched.sleep(delay)
                        continue
                    gate.started()
                    if call():
                        gate.finished({}, answered=True)
                        chunk.sent = True
                        left[0] -= 1
                        break
                    gate.finished({}, 1.0, answered=True)

        def container() -> None:
            gate = SlotGate(
                DynamoRateSlots(table, limit, client=ddb, parallel=parallel),
                rng=random.Random(rng.random()),
                caller=greenlet.getcurrent,  # the callers are greenlets of one thread, not threads
            )
            while left[0] > 0:
                taken = receive()
                if not taken:
                    sched.sleep(1.0)
                    continue
                sched.sleep(INVOKE_S)  # the event source's receives, the invocation, its answer
                deadline = sched.now + timeout_s
                calls_end = deadline - margin_s
                gate.begin(round(calls_end * 1000), len(taken))
                mine = deque(taken)
                done = []
                for i in range(parallel):
                    sched.spawn(
                        sched.now,
                        f"call{i}",
                        lambda m=mine, e=calls_end, d=done: (caller(gate, m, e), d.append(1)),
                    )
                while len(done) < parallel:
                    sched.sleep(0.05)
                gate.end()

        per_second = LAMBDA_SQS_SCALE_UP_PER_MIN.value / 60
        for i in range(containers):
            at = start + max(0.0, (i - 5) / per_second) + rng.uniform(0, 0.5)
            sched.spawn(at, f"container{i}", container)
        horizon = start + 7 * 86_400
        while left[0] > 0 and sched.now < horizon and sched.queue:
            sched.run(sched.now + 60)
        units = [(second, u) for (name, _key, second), u in ddb.units.items() if name == table]
        seconds = max(1, int(last_answer[0] - start))
        return Result(
            containers=containers,
            chunks=chunks,
            drain_s=last_answer[0] - start,
            bound_s=bound_s(chunks, limit, sum(call_ms) / 2000),
            requests=stats["requests"],
            throttled_429=stats["429"],
            dead_lettered=stats["dead"],
            holds=holds,
            peak_wcu_s=max((u.write for _, u in units), default=0),
            mean_wcu_s=sum(u.write for _, u in units) / seconds,
            peak_rcu_s=max((u.read for _, u in units), default=0),
            writes=ddb.calls["UpdateItem"],
        )
    finally:
        clocks.install(previous)


def bound_s(requests: int, limit: int, call_s: float = 0.15) -> float:
    """The rolling window's least time: full windows back to back, the last one's calls answered."""
    return (math.ceil(requests / limit) - 1) * WINDOW_S + call_s


GOALS = {"ratio": 1.10, "share_429": 0.01, "peak_wcu_per_s": DDB_ITEM_WCU_PER_S.value // 2}


def figure(
    counts=(4, 50, 200, 1000),
    seed: int = 1,
    chunks_per_container: int = 20,
    call_ms: tuple[int, int] = (100, 200),
    dynamodb_endpoint: str | None = None,
) -> dict:
    """Each N with a backlog of 20 batches' worth of chunks per container (at least 2,000); with
    ``dynamodb_endpoint``, each run again with the item in DynamoDB Local (``dynamodb_local``):
    the write counts on real conditional writes (SimDynamoDB alone throttles past 1,000 WCU/s)."""
    out = {}
    for n in counts:
        chunks = max(2_000, n * chunks_per_container)
        out[str(n)] = run(n, chunks, seed, call_ms=call_ms).as_dict()
        if dynamodb_endpoint:
            local = run(n, chunks, seed, call_ms=call_ms, dynamodb_endpoint=dynamodb_endpoint)
            out[str(n)]["dynamodb_local"] = local.as_dict()
    return {"goals": GOALS, "runs": out, "seed": seed, "call_ms": list(call_ms)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.contention", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--containers", default="4,50,200,1000", help="comma-separated N (default 4,50,200,1000)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--call-ms", default="100-200", help="how long a HubSpot call takes, LOW-HIGH ms (default 100-200)"
    )
    parser.add_argument(
        "--dynamodb-endpoint",
        help="also run each N with the slots item in this DynamoDB Local (e.g. http://127.0.0.1:8000)",
    )
    args = parser.parse_args(argv)
    try:
        counts = [int(n) for n in args.containers.split(",")]
    except ValueError:
        parser.error("--containers: whole numbers separated by commas, such as 4,50")
    try:
        low, high = (int(ms) for ms in args.call_ms.split("-"))
    except ValueError:
        parser.error("--call-ms: two whole numbers of ms, LOW-HIGH, such as 100-200")
    if not 0 < low <= high:
        parser.error("--call-ms: LOW-HIGH with 0 < LOW <= HIGH, such as 100-200")
    result = figure(counts, args.seed, call_ms=(low, high), dynamodb_endpoint=args.dynamodb_endpoint)
    for n, r in result["runs"].items():
        print(
            f"{int(n):,} containers: {r['chunks']:,} requests in {r['drain_s']} s, bound {r['bound_s']} s "
            f"({r['ratio']:.2f}x), 429 {100 * r['share_429']:.2f}%, peak {r['peak_wcu_per_s']} WCU/s "
            f"(mean {r['mean_wcu_per_s']}), peak {r['peak_rcu_per_s']} RCU/s, dead-lettered {r['dead_lettered']}, "
            f"holds {r['holds']}"
        )
        if local := r.get("dynamodb_local"):
            print(
                f"  on DynamoDB Local: {local['drain_s']} s, {local['slot_table_writes']:,} writes, "
                f"peak {local['peak_wcu_per_s']} WCU/s, peak {local['peak_rcu_per_s']} RCU/s"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
