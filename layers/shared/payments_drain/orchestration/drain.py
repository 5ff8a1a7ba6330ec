"""Orchestration: one SQS batch through parse, ledger, HubSpot, reports, to the batch response.

Every message ends in exactly one State (the invariant: docs/how-it-works.md). The decisions are the pure core's
(``messages``, ``batching``, ``sender``'s policies); the steps are the ledger session's (claim,
record each chunk as it settles, release), the chunk sender's (gate, token, call, deadline) and
the report writer's (one report per rejected message, FIFO order). This module carries the
outcomes between them inside the invocation's time budget, and never raises for a problem of
some messages.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from concurrent.futures import TimeoutError as StepTimeout
from dataclasses import dataclass
from typing import Any

from payments_drain.core import batching, clock, holds, links
from payments_drain.core.batching import plan_chunks
from payments_drain.core.holds import QueueTimes
from payments_drain.core.limits import HUBSPOT_PER_10S_PROFESSIONAL
from payments_drain.core.messages import parse_record
from payments_drain.core.observability import logger
from payments_drain.core.outcomes import Message, Outcome, Payment, Reason, Rejection, State, Wait
from payments_drain.orchestration.invocation import Budget, Stats
from payments_drain.orchestration.ledger_session import STALE_VERSION, LedgerSession, claims_payments
from payments_drain.orchestration.pacing import DailyLimit, RateGate
from payments_drain.orchestration.report_writer import ReportWriter
from payments_drain.orchestration.sender import ChunkSender

__all__ = ["Budget", "Drain", "Result", "Stats"]

RETENTION_EXPIRING = "RETENTION_EXPIRING"

# Claims again of payments another invocation held (``Drain._claim_again``): every 2 s while
# this invocation has time (a round is one conditional write and one read per payment).
RECLAIM_WAIT_S = 2.0
RECLAIM_MIN_LEFT_S = 10.0  # enough left to send what the claim gives, and to answer
NO_OUTCOME = Outcome(State.RETRY)  # a message without an outcome is retried (nothing is lost)


@dataclass
class Result:
    response: dict[str, list[dict[str, str]]]
    outcomes: dict[str, Outcome]
    stats: Stats
    ledger_write_failed: bool = False

    def counts(self) -> dict[str, int]:
        counts = Counter(o.state for o in self.outcomes.values())
        return {state.value: counts[state] for state in State}

    def updated(self) -> int:
        """Of the created: payments HubSpot had, which this batch updated (upsert mode)."""
        return sum(1 for o in self.outcomes.values() if o.state is State.CREATED and o.updated)

    def expiring(self) -> int:
        """Of the rejected: retries reported because the queue would drop them (holds.plan)."""
        return self._with_reason(RETENTION_EXPIRING)

    def stale(self) -> int:
        """Of the duplicates: messages older than the version already applied, refused unsent."""
        return self._with_reason(STALE_VERSION)

    def _with_reason(self, category: str) -> int:
        return sum(
            1 for o in self.outcomes.values() if o.reason is not None and o.reason.category == category
        )


class Drain:
    def __init__(
        self,
        hubspot,
        token,
        ledger,
        reporter,
        *,
        visibility=None,
        unique_property: str | None = None,
        upsert: bool = False,
        parallel_calls: int = 4,
        max_attempts: int = 3,
        gate: RateGate | None = None,
        daily: DailyLimit | None = None,
        hold_base_s: dict[Wait, int] | None = None,
        sleep: Callable[[float], None] = clock.sleep,
        rng: random.Random | None = None,
        queue_times: QueueTimes | None = None,
        pool: Executor | None = None,
        read_back: bool = False,
    ) -> None:
        self.ledger = ledger
        self.ledger_claims = claims_payments(unique_property, upsert)
        self.visibility = visibility
        self.unique_property = unique_property
        self.upsert = (
            upsert  # HubSpot's batch/upsert by the unique property: updates applied, in version order
        )
        self.hold_base_s = {**holds.HOLD_BASE_S, **(hold_base_s or {})}
        self.queue_times = queue_times or QueueTimes()
        self.gate = gate or RateGate(HUBSPOT_PER_10S_PROFESSIONAL.value)
        self.sender = ChunkSender(
            hubspot,
            token,
            self.gate,
            daily or DailyLimit(),
            unique_property=unique_property,
            upsert=upsert,
            max_attempts=max_attempts,
            sleep=sleep,
            rng=rng or random.Random(),
            min_call_s=hubspot.min_call_s,
            read_back=read_back,  # a lost answer read back by the unique property (sender)
        )
        self.reports = ReportWriter(reporter)
        # The HubSpot calls (at most parallel_calls at once), and the AWS steps after them, each
        # bounded by the time left to answer (``_bounded``). ``pool`` (the simulation's inline
        # executor) stands for both.
        self.pool = pool or ThreadPoolExecutor(max_workers=parallel_calls, thread_name_prefix="hubspot")
        self.steps = pool or ThreadPoolExecutor(max_workers=4, thread_name_prefix="aws-steps")

    def run(
        self,
        records: Sequence[dict[str, Any]],
        budget: Budget,
        request_id: str = "",
        source_arn: str | None = None,
    ) -> Result:
        stats = Stats()
        outcomes: dict[str, Outcome] = {}
        parsed = [parse_record(record, self.unique_property, self.upsert) for record in records]
        messages = [item.message for item in parsed]
        rejections = {r.message.message_id: r for r in parsed if isinstance(r, Rejection)}
        for rejection in rejections.values():
            outcomes[rejection.message.message_id] = Outcome(State.REJECTED, rejection.reason)
            _log_problem("payment rejected", rejection.message, rejection.reason, rejection.payment_key)

        session = LedgerSession(
            self.ledger,
            request_id,
            budget.function_deadline_ms() + 1000,
            stats,
            self.upsert,
            self.ledger_claims,
        )
        # Reports of messages refused before any request go out first, while the invocation has
        # time: a report written near the function's timeout can be cut off before the ledger
        # records it, and is then written again on redelivery. FIFO ones wait for their groups.
        early = [r for r in rejections.values() if r.message.group_id is None]
        self._report(early, session, outcomes, request_id, source_arn)

        payments = [p for p in parsed if isinstance(p, Payment)]
        newest, twins = _newest_of_each_key(payments)
        last = self._at_last_delivery(payments)
        sendable = session.claim(newest, outcomes)
        self._send_all(sendable, budget, stats, outcomes, session, last)
        self._claim_again(newest, budget, stats, outcomes, session, last)
        for twin, sent in twins:
            if sent.message_id in outcomes:  # else both are retried (failed_message_ids)
                outcomes[twin.message_id] = _twin_outcome(outcomes[sent.message_id], twin, sent, self.upsert)
        keys = {item.message.message_id: item.payment_key for item in parsed}
        hold_plan = self._plan_holds(messages, outcomes, budget, rejections, keys)

        for payment in payments:  # HubSpot refused these for good (or their copy): report them
            outcome = outcomes.get(payment.message_id)
            if outcome and outcome.state is State.REJECTED and payment.message_id not in rejections:
                rejections[payment.message_id] = Rejection(
                    payment.message, outcome.reason, payment.payment_key, _body_of(payment.message)
                )
                _log_problem(
                    "payment rejected by HubSpot", payment.message, outcome.reason, payment.payment_key
                )
        failed = batching.failed_message_ids(messages, outcomes)
        not_now = set(failed) | {r.message.message_id for r in early}  # blocked, or reported early
        late = [
            rejections[m.message_id]
            for m in messages
            if m.message_id in rejections and m.message_id not in not_now
        ]
        if late:
            self._bounded(
                budget,
                "failure reports",
                lambda: self._report(late, session, outcomes, request_id, source_arn),
                on_timeout=lambda: _not_written(late, outcomes),
            )
            failed = batching.failed_message_ids(messages, outcomes)  # a report not written is a retry
        for message_id in failed:  # FIFO: later messages of a blocked group go back too
            if outcomes.get(message_id, Outcome(State.CREATED)).state is not State.RETRY:
                outcomes[message_id] = Outcome(
                    State.RETRY, Reason("FIFO_GROUP_BLOCKED", "an earlier message of its group must retry")
                )
        # Retries the late reports made (a report not written, the ledger unavailable) wait too.
        unplanned = [m for m in messages if m.message_id not in hold_plan]
        hold_plan.update(self._plan_holds(unplanned, outcomes, budget, None, keys))
        held = {
            m.receipt_handle: hold_plan[m.message_id]
            for m in messages
            if m.message_id in hold_plan and m.receipt_handle and outcomes[m.message_id].state is State.RETRY
        }
        if held:
            self._bounded(budget, "holds", lambda: self._hold(held, source_arn, stats))
        return Result(batching.batch_response(failed), outcomes, stats, session.write_failed)

    def _report(
        self,
        rejections: list[Rejection],
        session: LedgerSession,
        outcomes: dict[str, Outcome],
        request_id: str,
        source_arn: str | None,
    ) -> None:
        """One report per rejected message not reported before; a report not written is a retry."""
        to_report = session.unreported(rejections, outcomes)
        not_written = self.reports.write(to_report, request_id, source_arn)
        for message_id in not_written:
            outcomes[message_id] = Outcome(
                State.RETRY, Reason("REPORT_NOT_WRITTEN", "failure report could not be written")
            )
        session.reports_done(
            [r for r in to_report if r.message.message_id not in not_written],
            [r for r in to_report if r.message.message_id in not_written],
        )

    def _send_all(
        self,
        payments: list[Payment],
        budget: Budget,
        stats: Stats,
        outcomes: dict[str, Outcome],
        session: LedgerSession,
        last: set[str],
    ) -> None:
        lock = threading.Lock()
        answered = threading.Event()  # past it, a part still settling is the next delivery's

        def settled(part: list[Payment], part_outcomes: dict[str, Outcome], maybe_stored: set[str]) -> None:
            with lock:
                if answered.is_set():
                    return
                outcomes.update(part_outcomes)
            session.settled(part, part_outcomes, maybe_stored)  # at once: a kill later loses none of it

        chunks = plan_chunks(payments)
        if not chunks:
            return
        # Every call the invocation may make: each chunk's write (none when an earlier delivery
        # wrote all its records) and, in upsert mode, its link calls (``links``).
        calls = sum(
            any(not p.written_id for p in chunk) + (links.calls_needed(chunk) if self.upsert else 0)
            for chunk in chunks
        )
        self.gate.begin(budget.calls_end_ms(), calls)
        try:
            futures = [
                self.pool.submit(
                    self.sender.send, chunk, budget, stats, settled, any(p.payment_key in last for p in chunk)
                )
                for chunk in chunks
            ]
            for future in futures:
                try:
                    future.result(timeout=max(0.0, budget.left_to_answer()))
                except StepTimeout:  # a ledger write that hangs: its payments go back (no outcome)
                    logger.error("a chunk did not settle before the invocation had to answer")
                    break
                except Exception as error:  # noqa: BLE001 - a payment left without an outcome is retried
                    logger.error(
                        "unexpected error while settling a chunk", extra={"errorType": type(error).__name__}
                    )
        finally:
            with lock:
                answered.set()
            self.gate.end()  # the slots not used pass by themselves: nothing to write

    def _at_last_delivery(self, payments: list[Payment]) -> set[str]:
        """The paymentKeys with a copy at its last delivery before the dead-letter queue."""
        most = self.queue_times.max_receive_count
        return {p.payment_key for p in payments if most > 0 and p.message.receive_count >= most}

    def _claim_again(
        self,
        payments: list[Payment],
        budget: Budget,
        stats: Stats,
        outcomes: dict[str, Outcome],
        session: LedgerSession,
        last: set[str],
    ) -> None:
        """Payments another invocation was sending (a copy in another batch) are claimed again
        while this one has time: that invocation usually ends in seconds, and then they settle
        here (a duplicate, or sent) instead of spending a delivery on the wait. So are payments at
        their last delivery whose claim failed: a moment later the ledger often answers again."""

        def waiting(payment: Payment) -> bool:
            wait = outcomes[payment.message_id].wait if payment.message_id in outcomes else None
            return wait is Wait.CLAIMED_ELSEWHERE or (
                wait is Wait.LEDGER_UNAVAILABLE and payment.payment_key in last
            )

        while busy := [p for p in payments if waiting(p)]:
            if budget.left() < RECLAIM_WAIT_S + RECLAIM_MIN_LEFT_S:
                return
            self.sender.sleep(RECLAIM_WAIT_S)
            self._send_all(session.claim(busy, outcomes), budget, stats, outcomes, session, last)

    def _plan_holds(
        self,
        messages: list[Message],
        outcomes: dict[str, Outcome],
        budget: Budget,
        rejections: dict[str, Rejection] | None,
        keys: dict[str, str | None],
    ) -> dict[str, int]:
        """Each retry's hold (``holds.plan``); a retry that would come back too close to the end
        of its retention is rejected instead, with a report, while there is time to write it
        (``rejections`` None: the reports are written already, it is held as it can be)."""
        now = clock.wall()
        planned: dict[str, int] = {}
        bases = self.hold_base_s
        if self.sender.daily.is_spent():
            # The day is spent for this container: whatever a payment waited on here, it would
            # meet the spent day next, so it waits at least as long as the day's hold.
            day = bases[Wait.DAILY_LIMIT]
            bases = {
                wait: max(base, day) if wait is not Wait.CLAIMED_ELSEWHERE else base
                for wait, base in bases.items()
            }
        for message in messages:
            outcome = outcomes.get(message.message_id, NO_OUTCOME)
            if outcome.state is not State.RETRY:
                continue
            hold = holds.plan(message, outcome, now, budget.started_s, self.queue_times, bases)
            if hold.expiring and rejections is not None:
                reason = Reason(
                    RETENTION_EXPIRING,
                    "the queue's retention ends before it could be tried again; last retry reason: "
                    + (outcome.reason.category if outcome.reason else "none"),
                )
                outcomes[message.message_id] = Outcome(State.REJECTED, reason)
                key = keys.get(message.message_id)
                rejections[message.message_id] = Rejection(message, reason, key, _body_of(message))
                _log_problem("payment reported before the queue drops it", message, reason, key)
            elif hold.seconds is not None:
                planned[message.message_id] = hold.seconds
        return planned

    def _hold(self, held: dict[str, int], source_arn: str | None, stats: Stats) -> None:
        """Retries that wait stay hidden until what they wait for can take them (``holds``)."""
        if not held or self.visibility is None or not source_arn:
            return
        failed = self.visibility.hold(source_arn, held)
        stats.held, stats.hold_failures = len(held) - failed, failed
        if failed:
            logger.warning("some retries could not be held on the queue", extra={"failed": failed})

    def _bounded(self, budget: Budget, step: str, work: Callable[[], None], on_timeout=None) -> None:
        """An AWS step after the last HubSpot call, ended by the time left to answer: whatever AWS
        does (a call that hangs, retries), the invocation answers before its timeout. Its payments
        were decided before; what the step did not finish is the next delivery's to do."""
        future = self.steps.submit(work)
        try:
            future.result(timeout=max(0.0, budget.left_to_answer()))
        except StepTimeout:
            logger.error("step not finished before the invocation had to answer", extra={"step": step})
            if on_timeout is not None:
                on_timeout()
        except Exception as error:  # noqa: BLE001 - stored state we cannot use must not fail the batch
            logger.error("step failed", extra={"step": step, "errorType": type(error).__name__})
            if on_timeout is not None:
                on_timeout()


def _newest_of_each_key(payments: list[Payment]) -> tuple[list[Payment], list[tuple[Payment, Payment]]]:
    """A paymentKey more than once in one batch: the producer's latest word is sent (the highest
    ``version``; else, for FIFO, the last in queue order, which is batch order; for a standard
    queue, which delivers in any order, the latest SentTimestamp). The other copies (twins) take
    its outcome in the same invocation (``_twin_outcome``), with no request of their own."""
    if len({p.payment_key for p in payments}) == len(payments):  # the usual batch: no key twice
        return payments, []
    order = {id(p): (_version(p), p.message.sent_ms or 0, i) for i, p in enumerate(payments)}
    chosen: dict[str, Payment] = {}
    for payment in payments:
        current = chosen.get(payment.payment_key)
        if current is None or order[id(payment)] > order[id(current)]:
            chosen[payment.payment_key] = payment
    sent = {id(p) for p in chosen.values()}
    twins = [(p, chosen[p.payment_key]) for p in payments if id(p) not in sent]
    return [p for p in payments if id(p) in sent], twins


def _version(payment: Payment) -> float:
    return payment.version if payment.version is not None else float("-inf")


def _twin_outcome(outcome: Outcome, twin: Payment, sent: Payment, upsert: bool) -> Outcome:
    if outcome.state in (State.CREATED, State.DUPLICATE):
        if upsert and twin.version is not None and sent.version is not None and twin.version < sent.version:
            reason = Reason(
                STALE_VERSION, f"version {twin.version} is older than {sent.version} in the same batch"
            )
        else:
            reason = Reason(
                "SUPERSEDED_IN_BATCH",
                f"a later copy of this paymentKey in the batch ({sent.message_id}) was applied",
            )
        return Outcome(State.DUPLICATE, reason, outcome.hubspot_id)
    return outcome  # the same rejection (reported for each message) or the same retry


def _not_written(rejections: list[Rejection], outcomes: dict[str, Outcome]) -> None:
    reason = Reason("REPORT_NOT_WRITTEN", "failure report not written before the invocation had to answer")
    for rejection in rejections:
        if outcomes[rejection.message.message_id].state is State.REJECTED:
            outcomes[rejection.message.message_id] = Outcome(State.RETRY, reason)


def _body_of(message: Message) -> Any:
    try:
        return json.loads(message.body)
    except ValueError:
        return message.body


def _log_problem(text: str, message: Message, reason: Reason | None, payment_key: str | None) -> None:
    logger.warning(
        text,
        extra={
            "messageId": message.message_id,
            "paymentKey": payment_key,
            "reason": reason.as_dict() if reason else None,
        },
    )
