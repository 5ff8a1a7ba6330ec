"""Orchestration: one SQS batch through parse, ledger, HubSpot, reports, to the batch response.

Every message ends in exactly one State (the invariant: docs/how-it-works.md). The decisions are
the pure core's (``messages``, ``batching``, ``sender``'s policies); the steps are the send loop's
(claim, send in parallel chunks, claim again what another invocation held), the ledger session's
(record each chunk as it settles, release), the chunk sender's (gate, token, call, deadline), the
reports' (one report per rejected message, FIFO order) and the retries' holds. This module carries
the outcomes between them inside the invocation's time budget, and never raises for a problem of
some messages.
"""

from __future__ import annotations

import functools
import random
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from payments_drain.core import batching, clock, holds
from payments_drain.core.holds import QueueTimes
from payments_drain.core.limits import HUBSPOT_PER_10S_PROFESSIONAL
from payments_drain.core.messages import parse_record
from payments_drain.core.outcomes import Outcome, Payment, Reason, Rejection, State, Wait
from payments_drain.orchestration.invocation import BoundedSteps, Budget, Stats
from payments_drain.orchestration.ledger_session import (
    STALE_VERSION,
    LedgerSession,
    ReportClaims,
    claims_payments,
)
from payments_drain.orchestration.pacing import DailyLimit, RateGate
from payments_drain.orchestration.report_writer import BatchReports, ReportWriter, log_problem, rejected
from payments_drain.orchestration.retry_holds import RETENTION_EXPIRING, RetryHolds
from payments_drain.orchestration.send_loop import Sending, SendLoop
from payments_drain.orchestration.sender import ChunkSender

__all__ = ["Budget", "Drain", "Result", "Stats"]


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
    """One SQS batch's flow from its records to the batch response, through the parts it holds."""

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
        self.unique_property = unique_property
        # HubSpot's batch/upsert by the unique property: updates applied, in version order
        self.upsert = upsert
        daily = daily or DailyLimit()
        self.holds = RetryHolds(
            visibility, daily, {**holds.HOLD_BASE_S, **(hold_base_s or {})}, queue_times or QueueTimes()
        )
        self.sender = ChunkSender(
            hubspot,
            token,
            gate or RateGate(HUBSPOT_PER_10S_PROFESSIONAL.value),
            daily,
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
        # bounded by the time left to answer (``BoundedSteps``). ``pool`` (the simulation's inline
        # executor) stands for both.
        calls = pool or ThreadPoolExecutor(max_workers=parallel_calls, thread_name_prefix="hubspot")
        self.sends = SendLoop(self.sender, calls, upsert)
        self.steps = BoundedSteps(pool or ThreadPoolExecutor(max_workers=4, thread_name_prefix="aws-steps"))

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
            log_problem("payment rejected", rejection.message, rejection.reason, rejection.payment_key)

        claim_until_ms = budget.function_deadline_ms() + 1000  # past every send of this invocation
        session = LedgerSession(
            self.ledger, request_id, claim_until_ms, stats, self.upsert, self.ledger_claims
        )
        claims = ReportClaims(self.ledger, request_id, claim_until_ms, stats)
        reports = BatchReports(self.reports, claims, outcomes, request_id, source_arn)
        # Reports of messages refused before any request go out first, while the invocation has
        # time: a report written near the function's timeout can be cut off before the ledger
        # records it, and is then written again on redelivery. FIFO ones wait for their groups.
        early = [r for r in rejections.values() if r.message.group_id is None]
        reports.write(early)

        payments = [p for p in parsed if isinstance(p, Payment)]
        newest, twins = _newest_of_each_key(payments)
        last = self.holds.at_last_delivery(payments)
        self.sends.run(newest, Sending(budget, stats, outcomes, session, last))
        _share_with_twins(twins, outcomes, self.upsert)
        # The paymentKeys by message id, built only for a retry reported as expiring (``plan``):
        # a pass over the batch that the usual batch does not need.
        keys = functools.cache(lambda: {item.message.message_id: item.payment_key for item in parsed})
        hold_plan = self.holds.plan(messages, outcomes, budget, rejections, keys)

        _refused_by_hubspot(payments, outcomes, rejections)
        failed = batching.failed_message_ids(messages, outcomes)
        not_now = set(failed) | {r.message.message_id for r in early}  # blocked, or reported early
        late = [
            rejections[m.message_id]
            for m in messages
            if m.message_id in rejections and m.message_id not in not_now
        ]
        if late:
            self.steps.run(
                budget, "failure reports", lambda: reports.write(late), lambda: reports.not_written(late)
            )
            failed = batching.failed_message_ids(messages, outcomes)  # a report not written is a retry
        if failed:  # else no message is a retry: none to hold (the usual batch skips these passes)
            _block_groups(failed, outcomes)
            # Retries the late reports made (a report not written, the ledger unavailable) wait too.
            unplanned = [m for m in messages if m.message_id not in hold_plan]
            hold_plan.update(self.holds.plan(unplanned, outcomes, budget, None, keys))
            held = {
                m.receipt_handle: hold_plan[m.message_id]
                for m in messages
                if m.message_id in hold_plan
                and m.receipt_handle
                and outcomes[m.message_id].state is State.RETRY
            }
            if held:
                self.steps.run(budget, "holds", lambda: self.holds.hold(held, source_arn, stats))
        return Result(batching.batch_response(failed), outcomes, stats, session.write_failed)


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


def _share_with_twins(
    twins: list[tuple[Payment, Payment]], outcomes: dict[str, Outcome], upsert: bool
) -> None:
    for twin, sent in twins:
        if sent.message_id in outcomes:  # else both are retried (failed_message_ids)
            outcomes[twin.message_id] = _twin_outcome(outcomes[sent.message_id], twin, sent, upsert)


def _refused_by_hubspot(
    payments: list[Payment], outcomes: dict[str, Outcome], rejections: dict[str, Rejection]
) -> None:
    """HubSpot refused these for good (or their copy): they are reported."""
    for payment in payments:
        outcome = outcomes.get(payment.message_id)
        if outcome and outcome.state is State.REJECTED and payment.message_id not in rejections:
            rejections[payment.message_id] = rejected(
                "payment rejected by HubSpot", payment.message, outcome.reason, payment.payment_key
            )


FIFO_GROUP_BLOCKED = Reason("FIFO_GROUP_BLOCKED", "an earlier message of its group must retry")
UNSETTLED = Reason("TIME_BUDGET", "its chunk did not settle before the invocation had to answer")


def _block_groups(failed: list[str], outcomes: dict[str, Outcome]) -> None:
    """The retries without a reason of their own: a message whose chunk did not settle in time has
    no outcome; FIFO: a later message of a blocked group has another one, and goes back too."""
    for message_id in failed:
        outcome = outcomes.get(message_id)
        if outcome is None:
            outcomes[message_id] = Outcome(State.RETRY, UNSETTLED)
        elif outcome.state is not State.RETRY:
            outcomes[message_id] = Outcome(State.RETRY, FIFO_GROUP_BLOCKED)
