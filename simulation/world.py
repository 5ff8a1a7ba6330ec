"""One seed of the simulated week: producers, the payments queue, Lambda's event source, the drain
function's containers, HubSpot and DynamoDB, under one virtual clock; then the invariants.

What runs unchanged: ``payments_drain.orchestration.drain.Drain`` and everything under it (sender, pacing, the
ledger and rate-slot adapters, reports, holds), wired as ``service.build_drain`` wires them, with
each boto3 client replaced by its simulated twin and HubSpotClient by ``SimHubSpot`` (their
contract tests hold them to moto, DynamoDB Local and the sandbox). What is simulated here: the
event source mapping (polling, batching window, concurrency, deleting what the function did not
list as failed), Lambda (timeouts, kills at random instants, cold containers), the producers, and
outages. Thread pools become inline executors so that the order of everything is the seed's.

A ``Scenario`` is drawn from the seed; ``run(seed)`` returns the violations found (empty: the
invariants held), with enough said to replay it: ``python -m simulation --seed N``.
"""

from __future__ import annotations

import json
import logging
import random
from collections import Counter, defaultdict
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError
from payments_drain.adapters.aws_clients import MAX_ATTEMPTS
from payments_drain.adapters.ledger import DynamoLedger
from payments_drain.adapters.rate_slots import DynamoRateSlots
from payments_drain.adapters.reports import SqsReporter
from payments_drain.adapters.visibility import SqsVisibility
from payments_drain.core import clock as clocks
from payments_drain.core.holds import QueueTimes
from payments_drain.core.outcomes import Outcome, State, Wait
from payments_drain.core.reading import CREATED_BEFORE, CREATED_BY_ANOTHER
from payments_drain.orchestration.drain import Budget, Drain
from payments_drain.orchestration.pacing import DailyLimit, SlotGate

from simulation.dynamodb import DynamoFaults, SimDynamoDB, create_hash_table
from simulation.hubspot import HubSpotFaults, SimHubSpot
from simulation.scheduler import Killed, Scheduler
from simulation.sqs import SimSqs

DAY = 86_400.0
UNIQUE = "payments_drain_key"
TOKEN = "sim-token"


class InlineExecutor(Executor):
    """A thread pool's interface, running each task at once in the caller: the simulation's order
    is then the seed's alone. ``Killed`` is never stored in a future: a dead process stops."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Killed:
            raise
        except Exception as error:  # noqa: BLE001 - the caller reads it from the future
            future.set_exception(error)
        return future


class Retried:
    """A simulated client behind botocore's retries as the drain configures them
    (``aws_clients``: standard mode, ``MAX_ATTEMPTS`` in all): the simulated services answer as
    the services do, and the drain's clients retry throttling and server errors once."""

    RETRYABLE = frozenset(
        {
            "InternalServerError",
            "ProvisionedThroughputExceededException",
            "ThrottlingException",
            "RequestLimitExceeded",
            "ServiceUnavailable",
        }
    )

    def __init__(self, client, clock) -> None:
        self._client, self._clock = client, clock

    def __getattr__(self, name: str):
        target = getattr(self._client, name)
        if not callable(target):
            return target

        def call(*args, **kwargs):
            for attempt in range(MAX_ATTEMPTS):
                try:
                    return target(*args, **kwargs)
                except ClientError as error:
                    if error.response.get("Error", {}).get("Code") not in self.RETRYABLE:
                        raise
                    if attempt == MAX_ATTEMPTS - 1:
                        raise
                    self._clock.sleep(0.05 * 2**attempt)

        return call


class Token:
    def get(self, force: bool = False) -> str:
        return TOKEN


@dataclass
class Scenario:
    """What one seed simulates; every field drawn from the seed (``Scenario.draw``)."""

    seed: int
    write_mode: str = "create"
    unique: bool = True
    ledger: bool = True
    fifo: bool = False
    keys: int = 20
    max_copies: int = 2
    send_span_s: float = 2 * DAY
    malformed: int = 1
    batch_size: int = 10
    window_s: int = 0
    concurrency: int = 2
    timeout_s: int = 60
    visibility_s: int = 370
    retention_s: int = 14 * int(DAY)
    max_receive: int = 5
    limit_per_10s: int = 190
    daily_limit: int = 625_000
    daily_spent_at: float | None = None  # another integration spends the rest of the day's limit
    p_kill: float = 0.02
    hubspot: dict[str, float] = field(default_factory=dict)
    outages: list[tuple[float, float, str]] = field(default_factory=list)
    dynamo: dict[str, float] = field(default_factory=dict)
    dynamo_outages: list[tuple[float, float]] = field(default_factory=list)
    days: float = 7.0

    @classmethod
    def draw(cls, seed: int, start: float) -> Scenario:
        r = random.Random(seed)
        s = cls(seed)
        s.write_mode = r.choice(["create", "create", "upsert"])
        s.unique = s.write_mode == "upsert" or r.random() < 0.7
        s.ledger = r.random() < 0.8 or not s.unique
        s.fifo = r.random() < 0.2
        s.keys = r.randint(3, 40)
        s.max_copies = r.choice([1, 2, 3])
        s.send_span_s = r.choice([600.0, 6 * 3600.0, 2 * DAY])
        s.malformed = r.randint(0, 2)
        s.batch_size = r.choice([10, 10, 100])
        s.window_s = r.choice([0, 1, 5])
        s.concurrency = r.randint(2, 6)
        s.retention_s = r.choice([14 * int(DAY), 14 * int(DAY), 4 * int(DAY), int(DAY)])
        s.limit_per_10s = r.choice([190, 190, 20])
        # One incident per seed, each within what the holds ride out before the dead-letter queue
        # (docs/exactly-once.md, "What can still go wrong"): several in one payment's life can outlast MaxReceiveCount's
        # deliveries, and then the dead-letter queue is where it belongs.
        incident = r.choice(["none", "none", "daily", "hubspot", "dynamodb"])
        if incident == "daily":
            s.daily_spent_at = start + r.uniform(0, s.send_span_s)
        s.p_kill = r.choice([0.0, 0.02, 0.05])
        s.hubspot = {
            name: r.choice([0.0, 0.0, p])
            for name, p in (
                ("p_429", 0.05),
                ("p_5xx", 0.05),
                ("p_stored_then_5xx", 0.03),
                ("p_stored_then_timeout", 0.03),
                ("p_reset", 0.02),
                ("p_connect_error", 0.02),
                ("p_unreadable_2xx", 0.03),
                ("p_2xx_with_errors", 0.03),
            )
        }
        s.hubspot["latency_s"] = r.choice([0.2, 0.5, 2.0])
        if incident == "hubspot":
            begin = start + r.uniform(0, s.send_span_s + 3600)
            s.outages = [(begin, begin + r.uniform(60, 4 * 3600), r.choice(["503", "connect", "hang"]))]
        s.dynamo = {
            name: r.choice([0.0, 0.0, p])
            for name, p in (
                ("p_request_error", 0.01),
                ("p_throttle_request", 0.01),
                ("p_statement_throttle", 0.02),
                ("p_unprocessed", 0.02),
            )
        }
        s.dynamo["latency_s"] = r.choice([0.005, 0.02])
        if incident == "dynamodb":  # the ledger and the rate slots both unavailable
            begin = start + r.uniform(0, s.send_span_s)
            s.dynamo_outages = [(begin, begin + r.uniform(60, 2 * 3600))]
        # Answers lost after HubSpot stored (no answer, a 5xx, an unreadable 2xx) are what the
        # read-back settles: in create mode with the unique property, every seed draws at least one.
        # Drawn last, so that a seed's other fields stay what they were before the read-back.
        lost = ("p_stored_then_5xx", "p_stored_then_timeout", "p_unreadable_2xx")
        if s.write_mode == "create" and s.unique and not any(s.hubspot[name] for name in lost):
            s.hubspot[r.choice(lost)] = 0.03
        return s


@dataclass
class Sent:
    message_id: str
    key: str | None  # None: malformed
    version: int | None
    properties: dict[str, str]
    sent_at: float


class World:
    def __init__(self, scenario: Scenario) -> None:
        self.s = s = scenario
        self.clock = Scheduler()
        self.rng = random.Random(s.seed * 7919 + 1)
        start = self.clock.now
        self.sqs = SimSqs(self.clock, random.Random(s.seed * 31 + 2))
        self.ddb = SimDynamoDB(self.clock, random.Random(s.seed * 37 + 3), DynamoFaults(**s.dynamo))
        self.hubspot = SimHubSpot(
            self.clock,
            random.Random(s.seed * 41 + 4),
            write_mode=s.write_mode,
            unique_property=UNIQUE if s.unique else None,
            limit_per_10s=s.limit_per_10s,
            daily_limit=s.daily_limit,
            faults=HubSpotFaults(**s.hubspot, outages=s.outages),
            key_of=self._key_of,
        )
        suffix = ".fifo" if s.fifo else ""
        fifo = {"FifoQueue": "true"} if s.fifo else {}
        dlq = self.sqs.create_queue(QueueName=f"dlq{suffix}", Attributes={**fifo})["QueueUrl"]
        self.dlq_arn = self.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        redrive = json.dumps({"deadLetterTargetArn": self.dlq_arn, "maxReceiveCount": s.max_receive})
        self.queue = self.sqs.create_queue(
            QueueName=f"payments{suffix}",
            Attributes={
                **fifo,
                "VisibilityTimeout": str(s.visibility_s),
                "MessageRetentionPeriod": str(s.retention_s),
                "RedrivePolicy": redrive,
            },
        )["QueueUrl"]
        self.queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.reports = self.sqs.create_queue(QueueName="reports")["QueueUrl"]
        for table, key in (("ledger", "paymentKey"), ("slots", "name")):
            create_hash_table(self.ddb, table, key)
        self.start = start
        self.sent: dict[str, Sent] = {}
        self.history: dict[str, list[str]] = defaultdict(list)  # messageId -> how each receive ended
        self.settled: dict[str, list[Outcome]] = defaultdict(list)  # messageId -> its outcomes, not retries
        self.containers: list[Drain] = []  # idle, warm
        self.running = 0
        self.invocations = 0
        self.kills = Counter()
        self.ambiguous = 0
        self.violations: list[str] = []
        self.faults_seen = Counter()
        self.actors: list = []
        self.planned = 0
        self.next_poll = float("inf")
        self.last_retry_at: dict[str, float] = {}
        # When the seed's incident was on: HubSpot's outage, DynamoDB's, or the spent day.
        self.incidents: list[tuple[float, float]] = [(a, b) for a, b, _ in s.outages] + list(s.dynamo_outages)
        self.background_dead = 0
        self.refused_holds: list[str] = []
        change = self.sqs.change_message_visibility_batch

        def change_visibility(**request):  # SQS's refusals of a hold past 12 h, for the invariants
            answer = change(**request)
            for failed in answer.get("Failed", []):
                if failed.get("Code") == "InvalidParameterValue":
                    self.refused_holds.append(failed.get("Message", ""))
            return answer

        self.sqs.change_message_visibility_batch = change_visibility

    # -- producers -------------------------------------------------------------------------------
    def _key_of(self, item: dict[str, Any]) -> str:
        """The paymentKey of a HubSpot input: its upsert id, its unique property, or its message's."""
        if "idProperty" in item:
            return str(item["id"])
        if UNIQUE in item.get("properties", {}):
            return str(item["properties"][UNIQUE])
        sent = self.sent.get(str(item.get("objectWriteTraceId")))
        return str(sent.key if sent else item.get("objectWriteTraceId"))

    def _spend_the_day(self) -> None:
        today = self.hubspot._today()
        self.hubspot.daily[today] = max(self.hubspot.daily[today], self.hubspot.daily_limit)
        local = datetime.fromtimestamp(self.clock.now, self.hubspot.zone)
        midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        self.incidents.append((self.clock.now, midnight.timestamp()))

    def _in_incident(self, at: float) -> bool:
        return any(begin <= at <= end for begin, end in self.incidents)

    def produce(self) -> None:
        s, r = self.s, self.rng
        n = 0
        for k in range(s.keys):
            key = f"pay_{s.seed}_{k}"
            first = self.start + r.uniform(0, s.send_span_s)
            copies = r.randint(1, s.max_copies)
            versioned = s.write_mode == "upsert" and r.random() < 0.5
            for c in range(copies):
                at = first + c * r.choice([0.0, 0.5, 30.0, 3600.0])
                properties = {
                    "hs_initial_amount": f"{10 + k}.{c:02d}",
                    "hs_initiated_date": "2026-12-01T10:00:00Z",
                }
                body: dict[str, Any] = {"paymentKey": key, "properties": properties}
                if versioned:
                    body["version"] = c + 1
                self.clock.call_at(at, self._sender(body, key, c + 1 if versioned else None, properties, n))
                n += 1
        for _ in range(s.malformed):
            at = self.start + r.uniform(0, s.send_span_s)
            self.clock.call_at(at, self._sender({"properties": "not a map"}, None, None, {}, n))
            n += 1
        self.planned = n

    def _sender(self, body, key, version, properties, n):
        def send() -> None:
            extra = {"MessageGroupId": key or "bad", "MessageDeduplicationId": f"d{n}"} if self.s.fifo else {}
            answer = self.sqs.send_message(QueueUrl=self.queue, MessageBody=json.dumps(body), **extra)
            self.sent[answer["MessageId"]] = Sent(
                answer["MessageId"], key, version, properties, self.clock.now
            )
            self.wake_poller(self.clock.now)

        return send

    # -- Lambda's event source and containers ------------------------------------------------------
    def wake_poller(self, at: float) -> None:
        """The event source mapping long-polls: it receives as soon as a message is visible and a
        slot of MaximumConcurrency is free. Polls are scheduled for those moments only (a poll a
        second for a week would be most of the simulation's work)."""
        if at < self.next_poll:
            self.next_poll = at
            self.clock.call_at(at, lambda: self._poll_event(at))

    def _poll_event(self, at: float) -> None:
        if self.next_poll == at:
            self.next_poll = float("inf")
            self.poll()

    def poll(self) -> None:
        """Receive a batch and invoke a container with it (after the batching window when the batch
        is short) while fewer than MaximumConcurrency invocations run."""
        while self.running < self.s.concurrency:
            records = self.sqs.receive_records(self.queue, self.s.batch_size)
            if not records:
                break
            self.running += 1
            wait = self.s.window_s if len(records) < self.s.batch_size else 0
            begin = self.clock.now + wait
            self.invocations += 1
            actor = self.clock.spawn(
                begin,
                f"invocation-{self.invocations}",
                self._invocation(records, f"req-{self.invocations}"),
                deadline=begin + self.s.timeout_s,
            )
            self.actors.append(actor)
            if self.rng.random() < self.s.p_kill:
                self.clock.call_at(
                    begin + self.rng.uniform(0, self.s.timeout_s), lambda a=actor: self._kill(a)
                )
        if self.running < self.s.concurrency:
            hidden = [m["visible_at"] for m in self.sqs.messages(self.queue) if m["state"] == "in_flight"]
            if hidden:
                self.wake_poller(max(self.clock.now, min(hidden)))

    def _kill(self, actor) -> None:
        if not actor.done:
            self.kills["sigkill"] += 1
            self.clock.kill(actor)

    def _container(self) -> Drain:
        if self.containers:
            return self.containers.pop()
        s, inline = self.s, InlineExecutor()
        ddb = Retried(self.ddb, self.clock)
        ledger = DynamoLedger("ledger", client=ddb, pool=inline) if s.ledger else None
        gate = SlotGate(DynamoRateSlots("slots", s.limit_per_10s, client=ddb), rng=random.Random(s.seed))
        return Drain(
            self.hubspot,
            Token(),
            ledger,
            SqsReporter(self.reports, client=Retried(self.sqs, self.clock)),
            visibility=SqsVisibility(client=Retried(self.sqs, self.clock), pool=inline),
            unique_property=UNIQUE if s.unique else None,
            upsert=s.write_mode == "upsert",
            parallel_calls=1,
            gate=gate,
            daily=DailyLimit(300),
            rng=random.Random(self.rng.random()),
            queue_times=QueueTimes(s.visibility_s, s.retention_s, s.window_s, s.max_receive),
            pool=inline,
            read_back=True,  # as service.build_drain: a lost answer read back by the unique property
        )

    def _invocation(self, records: list[dict], request_id: str):
        def invoke() -> None:
            drain = self._container()
            ids = [r["messageId"] for r in records]
            budget = Budget(self.clock.now + self.s.timeout_s - 2.0, margin_s=2.0)
            finished = False
            try:
                result = drain.run(records, budget, request_id, self.queue_arn)
                finished = True
            finally:
                self.running -= 1
                self.wake_poller(self.clock.now)
                if not finished:  # killed or timed out: every message comes back; the container is gone
                    for message_id in ids:
                        self.history[message_id].append("killed")
            self.containers.append(drain)
            self.ambiguous += result.stats.ambiguous
            failed = {f["itemIdentifier"] for f in result.response["batchItemFailures"]}
            for record in records:
                outcome = result.outcomes.get(record["messageId"])
                if record["messageId"] in failed:
                    wait = outcome.wait.value if outcome and outcome.wait else "-"
                    reason = outcome.reason.category if outcome and outcome.reason else "NONE"
                    self.history[record["messageId"]].append(f"retry:{reason}:{wait}")
                    self.last_retry_at[record["messageId"]] = self.clock.now
                else:
                    self.history[record["messageId"]].append(outcome.state.value if outcome else "?")
                    if outcome is not None:
                        self.settled[record["messageId"]].append(outcome)
            done = [r for r in records if r["messageId"] not in failed]
            for start in range(0, len(done), 10):
                entries = [
                    {"Id": str(i), "ReceiptHandle": r["receiptHandle"]}
                    for i, r in enumerate(done[start : start + 10])
                ]
                self.sqs.delete_message_batch(QueueUrl=self.queue, Entries=entries)

        return invoke

    def _dynamo_outage(self, on: bool) -> None:
        self.ddb.faults = DynamoFaults(
            **{**self.s.dynamo, "p_request_error": 1.0 if on else self.s.dynamo.get("p_request_error", 0.0)}
        )

    # -- the run and the invariants ---------------------------------------------------------------
    def run(self) -> list[str]:
        previous = clocks.install(self.clock)
        logging.disable(logging.CRITICAL)  # the drain's log lines: millions over many seeds
        try:
            self.produce()
            if self.s.daily_spent_at is not None:
                self.clock.call_at(self.s.daily_spent_at, self._spend_the_day)
            for begin, end in self.s.dynamo_outages:
                self.clock.call_at(begin, lambda: self._dynamo_outage(True))
                self.clock.call_at(end, lambda: self._dynamo_outage(False))
            end = self.start + self.s.days * DAY
            step = 3600.0
            while self.clock.now < end:
                self.clock.run(min(end, self.clock.now + step))
                if self.clock.now > self.start + self.s.send_span_s and self._drained():
                    break
        finally:
            clocks.install(previous)
            logging.disable(logging.NOTSET)
        self.check()
        return self.violations

    def _drained(self) -> bool:
        visible, in_flight = self.sqs.counts(self.queue)
        return visible == 0 and in_flight == 0 and self.running == 0 and len(self.sent) == self._expected()

    def _expected(self) -> int:
        return self.planned

    def check(self) -> None:
        v = self.violations
        reports = [json.loads(m["body"]) for m in self.sqs.messages(self.reports)]
        reported_keys = {r.get("paymentKey") for r in reports}
        reported_ids = {r.get("messageId") for r in reports}
        dead = {m["message_id"] for m in self.sqs.messages(self._dlq_url())}
        dropped = {d.get("message_id") or d.get("MessageId") for d in self.sqs.dropped}
        visible, in_flight = self.sqs.counts(self.queue)
        by_key: dict[str, list[Sent]] = defaultdict(list)
        for sent in self.sent.values():
            if sent.key is not None:
                by_key[sent.key].append(sent)
        for message_id in dropped:
            if message_id not in reported_ids:
                v.append(f"lost: message {message_id} dropped by the queue's retention without a report")
        for key, copies in by_key.items():
            ids = {c.message_id for c in copies}
            if self.hubspot.count(key) == 0 and key not in reported_keys and not ids & dead:
                if visible or in_flight:
                    continue  # still waiting on the queue at the end: not decided yet
                v.append(f"lost: {key} is neither in HubSpot, nor reported, nor dead-lettered")
            if self.s.unique and self.hubspot.count(key) > 1:
                v.append(f"created twice: {key} ({self.hubspot.count(key)} records) with a unique property")
        copies = sum(max(0, self.hubspot.count(k) - 1) for k in by_key)
        if copies > self.ambiguous:
            v.append(f"created twice: {copies} copies, only {self.ambiguous} answers were ambiguous")
        for message_id in dead:
            endings = [h for h in self.history.get(message_id, []) if h.startswith(("retry", "killed"))]
            if endings and all(h.startswith("retry") and not h.endswith(":-") for h in endings):
                if self._in_incident(self.last_retry_at.get(message_id, 0.0)):
                    v.append(f"dead-lettered while only waiting: {message_id} {endings}")
                else:
                    # Its last delivery met the background faults (rates far above HubSpot's and
                    # DynamoDB's real ones) after the incident: bad luck the holds cannot cover,
                    # counted and printed, not a violation.
                    self.background_dead += 1
        if self.s.write_mode == "upsert":
            self._check_last_state(by_key, reported_ids, dead)
        else:
            self._check_records_named()
        for failure in self.hubspot_refused_holds():
            v.append(failure)

    def _check_last_state(self, by_key, reported_ids, dead) -> None:
        for key, copies in by_key.items():
            writes = self.hubspot.writes.get(key)
            if not writes:
                continue
            order = {id(c): i for i, c in enumerate(copies)}  # send order: a FIFO queue's order
            newest = max(copies, key=lambda c: (c.version or 0, c.sent_at, order[id(c)]))
            if newest.message_id in reported_ids | dead:
                continue
            if not (self.s.fifo and newest.version is None or self.s.ledger and newest.version is not None):
                # Versions are kept across batches by the ledger; without versions only a FIFO
                # queue orders copies across batches (docs/messages.md: version).
                continue
            final = writes[-1].properties
            if final.get("hs_initial_amount") != newest.properties["hs_initial_amount"]:
                self.violations.append(
                    f"last state not applied: {key} holds {final.get('hs_initial_amount')}, "
                    f"the newest copy says {newest.properties['hs_initial_amount']}"
                )

    def _check_records_named(self) -> None:
        """Create mode: an outcome names the record it counts, so that a payment is counted created
        once. Created: a record of its payment that this message's own create made (the ground truth
        knows each record's trace id; the simulation's copies of a payment always differ in value,
        so the read-back can tell them apart). A duplicate because HubSpot's record was made before
        the message was sent: a record of its payment another message made before this one was
        sent; because the record holds another message's values: one another message made."""
        v = self.violations
        for message_id, outcomes in self.settled.items():
            sent = self.sent.get(message_id)
            for outcome in outcomes:
                if outcome.hubspot_id is None or sent is None or sent.key is None:
                    continue
                record = self.hubspot.by_id.get(outcome.hubspot_id)
                if record is None or record["id"] not in self.hubspot.ids_by_key.get(sent.key, []):
                    v.append(f"{outcome.state.value} names no record of its payment: {message_id} {sent.key}")
                    continue
                made_by = record["objectWriteTraceId"]
                made_at = next(w.at for w in self.hubspot.writes[sent.key] if w.id == record["id"] and w.new)
                if outcome.state is State.CREATED and made_by != message_id:
                    v.append(
                        f"counted created by a record another message made: {message_id} {sent.key} "
                        f"(made by {made_by})"
                    )
                reason = outcome.reason.category if outcome.reason else None
                if reason == CREATED_BEFORE.category and (made_by == message_id or made_at >= sent.sent_at):
                    v.append(
                        f"counted a duplicate of a record not made before it was sent: {message_id} {sent.key}"
                    )
                if reason == CREATED_BY_ANOTHER.category and made_by == message_id:
                    v.append(f"counted a duplicate of its own record: {message_id} {sent.key}")

    def hubspot_refused_holds(self) -> list[str]:
        errors = [f"invocation crashed: {type(a.error).__name__}: {a.error}" for a in self.actors if a.error]
        return errors + [f"hold refused by SQS: {m}" for m in self.refused_holds[:3]]

    def _dlq_url(self) -> str:
        return self.sqs.queue_url(self.dlq_arn)


def run(seed: int) -> tuple[list[str], float]:
    """The violations of one seed, and the simulated days it covered."""
    return run_world(seed)[:2]


def run_world(seed: int) -> tuple[list[str], float, World]:
    world = World(Scenario.draw(seed, Scheduler().now))
    violations = world.run()
    return violations, (world.clock.now - world.start) / DAY, world


__all__ = ["Scenario", "World", "run", "State", "Wait"]
