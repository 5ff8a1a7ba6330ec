"""Orchestration: one SQS batch through parse, ledger, HubSpot, reports, to the batch response.

Every message ends in exactly one State (DESIGN.md's invariant). The decisions are the pure
core's (``messages``, ``batching``); this module carries them between the adapters, inside
the invocation's time budget, and never raises for a problem of some messages.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from payments_drain import batching
from payments_drain.batching import Answer, plan_chunks, settle
from payments_drain.ledger import BUSY, CREATED, LedgerUnavailable
from payments_drain.messages import parse_record
from payments_drain.observability import logger
from payments_drain.outcomes import Message, Outcome, Payment, Reason, Rejection, State
from payments_drain.pacing import RateGate
from payments_drain.reports import report_of
from payments_drain.token import TokenUnavailable

MIN_CALL_S = 1.0  # never start a HubSpot call with less than this left in the budget


@dataclass
class Budget:
    """The invocation's time, less a margin for the work after the last call."""

    deadline: float
    clock: Callable[[], float] = time.monotonic
    margin_s: float = 0.0

    @classmethod
    def from_context(cls, context: Any, margin_ms: int) -> Budget:
        return cls(time.monotonic() + (context.get_remaining_time_in_millis() - margin_ms) / 1000, margin_s=margin_ms / 1000)

    def left(self) -> float:
        return self.deadline - self.clock()

    def function_deadline_ms(self) -> int:
        """Wall-clock epoch ms at which the function times out: nothing of ours runs after it."""
        return int((time.time() + max(self.left(), 0) + self.margin_s) * 1000)


@dataclass
class Stats:
    """What the summary line and the metrics report about the HubSpot side of one batch."""

    requests: int = 0
    statuses: Counter = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    throttled: int = 0
    errors: int = 0
    auth_failures: int = 0
    ambiguous: int = 0  # copies HubSpot may have stored unbeknown to us (one per payment and such answer)
    ambiguous_ids: set[str] = field(default_factory=set)  # the payments concerned
    daily_limit: bool = False
    rate_limit_remaining: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, answer: Answer, message_ids: list[str], ambiguous: bool) -> None:
        with self.lock:
            self.requests += 1
            self.statuses[str(answer.status or answer.error)] += 1
            self.latencies_ms.append(answer.latency_ms)
            if answer.status == 429:
                self.throttled += 1
            if answer.status is None or answer.status >= 400:
                self.errors += 1
            if answer.status in (401, 403):
                self.auth_failures += 1
            if ambiguous:
                self._count_ambiguous(message_ids)
            remaining = answer.header("X-HubSpot-RateLimit-Remaining")
            if remaining is not None and remaining.isdigit():
                value = int(remaining)
                self.rate_limit_remaining = value if self.rate_limit_remaining is None else min(value, self.rate_limit_remaining)

    def reclaimed(self, message_id: str) -> None:
        """A payment whose last invocation died holding its claim, perhaps after sending it."""
        with self.lock:
            self._count_ambiguous([message_id])

    def _count_ambiguous(self, message_ids: list[str]) -> None:
        self.ambiguous += len(message_ids)
        self.ambiguous_ids.update(message_ids)


@dataclass
class Result:
    response: dict[str, list[dict[str, str]]]
    outcomes: dict[str, Outcome]
    stats: Stats
    ledger_write_failed: bool = False

    def counts(self) -> dict[str, int]:
        counts = Counter(o.state.value for o in self.outcomes.values())
        return {state.value: counts.get(state.value, 0) for state in State}


class Drain:
    def __init__(self, hubspot, token, ledger, reporter, *, unique_property: str | None = None,
                 parallel_calls: int = 4, max_attempts: int = 3, gate: RateGate | None = None,
                 sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None) -> None:
        self.hubspot = hubspot
        self.token = token
        self.ledger = ledger
        self.reporter = reporter
        self.unique_property = unique_property
        self.max_attempts = max_attempts
        self.gate = gate or RateGate(190)
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.pool = ThreadPoolExecutor(max_workers=parallel_calls, thread_name_prefix="hubspot")

    def run(self, records: Sequence[dict[str, Any]], budget: Budget, request_id: str = "",
            source_arn: str | None = None) -> Result:
        stats = Stats()
        outcomes: dict[str, Outcome] = {}
        parsed = [parse_record(record, self.unique_property) for record in records]
        messages = [item.message for item in parsed]
        rejections = {r.message.message_id: r for r in parsed if isinstance(r, Rejection)}
        for rejection in rejections.values():
            outcomes[rejection.message.message_id] = Outcome(State.REJECTED, rejection.reason)
            _log_problem("payment rejected", rejection.message, rejection.reason, rejection.payment_key)

        payments = _first_of_each_key([p for p in parsed if isinstance(p, Payment)], outcomes)
        sendable = self._claim(payments, budget, request_id, outcomes, stats)
        self._send_all(sendable, budget, stats, outcomes)
        ledger_failed = self._record_created(sendable, outcomes)
        self._release(sendable, outcomes, stats, request_id)

        for payment in sendable:  # HubSpot refused these for good: they need a report too
            outcome = outcomes[payment.message_id]
            if outcome.state is State.REJECTED and payment.message_id not in rejections:
                rejections[payment.message_id] = Rejection(payment.message, outcome.reason, payment.payment_key,
                                                           _body_of(payment.message))
                _log_problem("payment rejected by HubSpot", payment.message, outcome.reason, payment.payment_key)
        blocked = set(batching.failed_message_ids(messages, outcomes))
        to_report = [rejections[m.message_id] for m in messages if m.message_id in rejections and m.message_id not in blocked]
        to_report = self._not_yet_reported(to_report, budget, request_id, outcomes)
        not_written = self._report_in_order(to_report, request_id, source_arn)
        for message_id in not_written:
            outcomes[message_id] = Outcome(State.RETRY, Reason("REPORT_NOT_WRITTEN", "failure report could not be written"))
        self._record_reported([r for r in to_report if r.message.message_id not in not_written])
        failed = batching.failed_message_ids(messages, outcomes)
        for message_id in failed:  # FIFO: later messages of a blocked group go back too
            if outcomes.get(message_id, Outcome(State.CREATED)).state is not State.RETRY:
                outcomes[message_id] = Outcome(State.RETRY, Reason("FIFO_GROUP_BLOCKED", "an earlier message of its group must retry"))
        return Result(batching.batch_response(failed), outcomes, stats, ledger_failed)

    # -- ledger ------------------------------------------------------------------------------
    def _claim(self, payments: list[Payment], budget: Budget, request_id: str,
               outcomes: dict[str, Outcome], stats: Stats) -> list[Payment]:
        if self.ledger is None or not payments:
            return payments
        until_ms = budget.function_deadline_ms() + 1000  # the claim outlives every send of this invocation
        try:
            entries = self.ledger.claim([p.payment_key for p in payments], request_id, until_ms)
        except LedgerUnavailable as error:
            reason = Reason("LEDGER_UNAVAILABLE", str(error))
            logger.error("ledger unavailable, every payment retried", extra={"error": str(error)})
            outcomes.update({p.message_id: Outcome(State.RETRY, reason) for p in payments})
            return []
        sendable = []
        for payment in payments:
            entry = entries[payment.payment_key]
            if entry.state == CREATED:
                outcomes[payment.message_id] = Outcome(State.DUPLICATE, Reason("ALREADY_CREATED", "the ledger records it as created"), entry.hubspot_id)
            elif entry.state == BUSY:
                outcomes[payment.message_id] = Outcome(State.RETRY, Reason("CLAIMED_ELSEWHERE", "another invocation is sending this paymentKey"))
            else:
                if entry.reclaimed:  # its last invocation died holding the claim, perhaps after sending
                    stats.reclaimed(payment.message_id)
                    _log_problem("payment may have been sent by an invocation that did not finish",
                                 payment.message, None, payment.payment_key)
                sendable.append(payment)
        return sendable

    def _release(self, sent: list[Payment], outcomes: dict[str, Outcome], stats: Stats, request_id: str) -> None:
        keys = [p.payment_key for p in sent if p.message_id not in stats.ambiguous_ids
                and outcomes[p.message_id].state in (State.RETRY, State.REJECTED)]
        if self.ledger is None or not keys:
            return
        try:
            self.ledger.release(keys, request_id)
        except LedgerUnavailable as error:  # the claims expire at the function's deadline anyway
            logger.warning("could not release claims", extra={"error": str(error)})

    def _record_created(self, sent: list[Payment], outcomes: dict[str, Outcome]) -> bool:
        if self.ledger is None:
            return False
        created = {p.payment_key: outcomes[p.message_id].hubspot_id for p in sent
                   if outcomes[p.message_id].state in (State.CREATED, State.DUPLICATE)}
        if not created:
            return False
        try:
            self.ledger.record_created(created)
        except LedgerUnavailable as error:
            # HubSpot has them: retrying would create them twice. Keep them created, say so loudly.
            logger.error("ledger write failed after HubSpot created the payments",
                         extra={"error": str(error), "paymentKeys": sorted(created)})
            return True
        return False

    def _not_yet_reported(self, rejections: list[Rejection], budget: Budget, request_id: str,
                          outcomes: dict[str, Outcome]) -> list[Rejection]:
        """A message redelivered after its report was written (the invocation died before
        answering) is still rejected, but not reported twice: the ledger remembers reports too."""
        if self.ledger is None or not rejections:
            return rejections
        try:
            entries = self.ledger.claim([_report_key(r) for r in rejections], request_id, budget.function_deadline_ms() + 1000)
        except LedgerUnavailable:
            return rejections  # a report twice is better than none
        unreported = []
        for rejection in rejections:
            state = entries[_report_key(rejection)].state
            if state == BUSY:
                outcomes[rejection.message.message_id] = Outcome(State.RETRY, Reason("CLAIMED_ELSEWHERE", "another invocation is reporting this message"))
            elif state != CREATED:
                unreported.append(rejection)
        return unreported

    def _record_reported(self, written: list[Rejection]) -> None:
        if self.ledger is None or not written:
            return
        try:
            self.ledger.record_created({_report_key(r): None for r in written})
        except LedgerUnavailable as error:
            logger.warning("could not record written reports in the ledger", extra={"error": str(error)})

    # -- HubSpot -----------------------------------------------------------------------------
    def _send_all(self, payments: list[Payment], budget: Budget, stats: Stats, outcomes: dict[str, Outcome]) -> None:
        stop = threading.Event()
        chunks = plan_chunks(payments)
        futures = [(chunk, self.pool.submit(self._send_chunk, chunk, budget, stats, stop)) for chunk in chunks]
        for chunk, future in futures:
            try:
                outcomes.update(future.result())
            except Exception:  # noqa: BLE001 - a bug must not lose the chunk: retry it, log it
                logger.exception("unexpected error while sending a chunk", extra={"messageIds": [p.message_id for p in chunk]})
                reason = Reason("INTERNAL_ERROR", "unexpected error while sending")
                outcomes.update({p.message_id: Outcome(State.RETRY, reason) for p in chunk})

    def _send_chunk(self, chunk: list[Payment], budget: Budget, stats: Stats, stop: threading.Event) -> dict[str, Outcome]:
        outcomes: dict[str, Outcome] = {}
        parts = [chunk]
        while parts:
            part = parts.pop()
            verdict = self._send_part(part, budget, stats, stop)
            if verdict.action == batching.SPLIT:
                middle = len(part) // 2
                parts.extend([part[middle:], part[:middle]])
            else:
                outcomes.update(verdict.outcomes)
        return outcomes

    def _send_part(self, part: list[Payment], budget: Budget, stats: Stats, stop: threading.Event) -> batching.Verdict:
        inputs = [p.hubspot_input() for p in part]
        refreshed = False
        attempt = 0
        reason = Reason("TIME_BUDGET", "not enough time left in the invocation to call HubSpot")
        while True:
            if stop.is_set():
                return _retry_all(part, Reason("RATE_LIMIT", "HubSpot's daily limit is spent", 429))
            wait = self.gate.delay()
            if budget.left() < wait + MIN_CALL_S:
                return _retry_all(part, reason)
            if wait:
                self.sleep(wait)
            try:
                token = self.token.get(force=refreshed)
            except TokenUnavailable as error:
                logger.error("HubSpot token unavailable", extra={"error": str(error)})
                return _retry_all(part, Reason("TOKEN_UNAVAILABLE", str(error)))
            self.gate.started()
            answer = self.hubspot.create_batch(inputs, token, time_left_s=budget.left())
            verdict = settle(part, answer, self.unique_property)
            self.gate.finished(answer.headers, verdict.wait_s if answer.status == 429 else 0.0)
            stats.record(answer, [p.message_id for p in part], verdict.ambiguous)
            reason = verdict.reason or reason
            if verdict.action in (batching.SETTLED, batching.SPLIT):
                if answer.status in (401, 403, 404):
                    logger.error("HubSpot refused the request: configuration fault", extra=_reason_log(reason))
                elif verdict.ambiguous:
                    logger.warning("HubSpot answer could not be mapped to every input", extra=_reason_log(reason))
                return verdict
            if verdict.action == batching.REFRESH:
                if refreshed:
                    logger.error("HubSpot rejected the token, also after reading it again", extra=_reason_log(reason))
                    return _retry_all(part, reason)
                refreshed = True
                continue
            if verdict.action == batching.STOP:
                stats.daily_limit = True
                stop.set()
                logger.error("HubSpot daily rate limit reached: sending stops for this invocation", extra=_reason_log(reason))
                return _retry_all(part, reason)
            if answer.status != 429:  # a 429 is waited out as long as the budget allows, not counted
                attempt += 1  # TRANSIENT
            backoff = max(verdict.wait_s, 0.25 * 2**max(attempt, 1) * (1 + self.rng.random() / 4))  # honour Retry-After
            if attempt >= self.max_attempts or budget.left() < backoff + MIN_CALL_S:
                logger.warning("HubSpot call failed, payments retried", extra={**_reason_log(reason), "messageIds": [p.message_id for p in part]})
                return _retry_all(part, reason)
            self.sleep(backoff)

    # -- reports -----------------------------------------------------------------------------
    def _report_in_order(self, rejections: list[Rejection], request_id: str, source_arn: str | None) -> set[str]:
        """Write the reports; return the message ids left without one. FIFO: a group's reports go
        out one round at a time in batch order, and a failed one stops its group (the rest of the
        group comes back, so none of them is reported now and again on redelivery)."""
        not_written: set[str] = set()
        blocked_groups: set[str] = set()
        pending = rejections
        while pending:
            round_, later, groups = [], [], set()
            for rejection in pending:
                group = rejection.message.group_id
                if group is not None and group in blocked_groups:
                    not_written.add(rejection.message.message_id)
                elif group is not None and group in groups:
                    later.append(rejection)
                else:
                    round_.append(rejection)
                    if group is not None:
                        groups.add(group)
            failed = self._report([report_of(r, request_id, source_arn) for r in round_])
            blocked_groups.update(r.message.group_id for r in round_ if r.message.message_id in failed and r.message.group_id)
            not_written |= failed
            pending = later
        return not_written

    def _report(self, reports: list[dict[str, Any]]) -> set[str]:
        if not reports:
            return set()
        try:
            not_written = self.reporter.send(reports)
        except Exception:  # noqa: BLE001 - whatever failed, those messages stay on the queue
            logger.exception("failure reports could not be written")
            return {r["messageId"] for r in reports}
        if not_written:
            logger.error("some failure reports were not written", extra={"messageIds": sorted(not_written)})
        return not_written


def _report_key(rejection: Rejection) -> str:
    # A space never occurs in a paymentKey (messages.KEY_PATTERN), so report keys cannot collide.
    return f"report {rejection.message.message_id}"


def _first_of_each_key(payments: list[Payment], outcomes: dict[str, Outcome]) -> list[Payment]:
    """A paymentKey twice in one batch: send the first, retry the others (the ledger, or
    HubSpot's unique property, settles them as duplicates on their next delivery)."""
    seen: set[str] = set()
    first = []
    for payment in payments:
        if payment.payment_key in seen:
            outcomes[payment.message_id] = Outcome(State.RETRY, Reason("DUPLICATE_KEY_IN_BATCH", "paymentKey repeated in this batch"))
        else:
            seen.add(payment.payment_key)
            first.append(payment)
    return first


def _retry_all(part: list[Payment], reason: Reason) -> batching.Verdict:
    return batching.Verdict(batching.SETTLED, {p.message_id: Outcome(State.RETRY, reason) for p in part}, reason)


def _body_of(message: Message) -> Any:
    try:
        return json.loads(message.body)
    except ValueError:
        return message.body


def _reason_log(reason: Reason) -> dict[str, Any]:
    return {"reason": reason.as_dict()}


def _log_problem(text: str, message: Message, reason: Reason | None, payment_key: str | None) -> None:
    logger.warning(text, extra={"messageId": message.message_id, "paymentKey": payment_key,
                                "reason": reason.as_dict() if reason else None})
