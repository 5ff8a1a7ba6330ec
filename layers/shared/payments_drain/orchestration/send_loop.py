"""The claim-and-send loop: the payments the ledger lets this invocation claim go to HubSpot in
parallel chunks (``ChunkSender``), and those another invocation held are claimed again while there
is time. Each chunk's outcomes are recorded as it settles (``LedgerSession.settled``)."""

from __future__ import annotations

import threading
from concurrent.futures import Executor, wait
from dataclasses import dataclass

from payments_drain.core import links
from payments_drain.core.batching import plan_chunks
from payments_drain.core.observability import logger
from payments_drain.core.outcomes import Outcome, Payment, Wait
from payments_drain.orchestration.invocation import Budget, Stats
from payments_drain.orchestration.ledger_session import LedgerSession
from payments_drain.orchestration.sender import ChunkSender

# Claims again of payments another invocation held (``SendLoop._claim_again``): every 2 s while
# this invocation has time (a round is one conditional write and one read per payment).
RECLAIM_WAIT_S = 2.0
RECLAIM_MIN_LEFT_S = 10.0  # enough left to send what the claim gives, and to answer


@dataclass
class Sending:
    """What one invocation's sends share: its time, counters, outcomes, ledger session, and the
    paymentKeys at their last delivery (``RetryHolds.at_last_delivery``)."""

    budget: Budget
    stats: Stats
    outcomes: dict[str, Outcome]
    session: LedgerSession
    last: set[str]


class SendLoop:
    def __init__(self, sender: ChunkSender, pool: Executor, upsert: bool) -> None:
        self.sender = sender
        self.pool = pool  # the HubSpot calls, at most parallel_calls at once
        self.upsert = upsert

    def run(self, payments: list[Payment], sending: Sending) -> None:
        """Claim the payments, send what the claim gives, and claim again what was held elsewhere."""
        claimed = sending.session.claim(payments, sending.outcomes)
        self._send_all(claimed, sending)
        if len(claimed) < len(payments):  # only the claim holds a payment back (``_claim_again``)
            self._claim_again(payments, sending)

    def _send_all(self, payments: list[Payment], sending: Sending) -> None:
        budget, outcomes, gate = sending.budget, sending.outcomes, self.sender.gate
        lock = threading.Lock()
        answered = threading.Event()  # past it, a part still settling is the next delivery's

        def settled(part: list[Payment], part_outcomes: dict[str, Outcome], maybe_stored: set[str]) -> None:
            with lock:
                if answered.is_set():
                    return
                outcomes.update(part_outcomes)
            sending.session.settled(part, part_outcomes, maybe_stored)  # at once: a kill later loses none

        chunks = plan_chunks(payments)
        if not chunks:
            return
        # Every call the invocation may make: each chunk's write (none when an earlier delivery
        # wrote all its records) and, in upsert mode, its link calls (``links``).
        calls = sum(
            any(not p.written_id for p in chunk) + (links.calls_needed(chunk) if self.upsert else 0)
            for chunk in chunks
        )
        gate.begin(budget.calls_end_ms(), calls)
        try:
            futures = [
                self.pool.submit(
                    self.sender.send,
                    chunk,
                    budget,
                    sending.stats,
                    settled,
                    any(p.payment_key in sending.last for p in chunk),
                )
                for chunk in chunks
            ]
            # One wait for them all, not one per chunk: this thread then wakes once, when the last
            # chunk settles, and a wake after an idle wait costs ~0.1 ms of CPU here
            # (docs/performance.md, "a: where the glue goes").
            wait(futures, timeout=max(0.0, budget.left_to_answer()))
            for future in futures:
                if not future.done():  # a ledger write that hangs: its payments go back (no outcome)
                    logger.error("a chunk did not settle before the invocation had to answer")
                    break
                try:
                    future.result()
                except Exception as error:  # noqa: BLE001 - a payment left without an outcome is retried
                    logger.error(
                        "unexpected error while settling a chunk", extra={"errorType": type(error).__name__}
                    )
        finally:
            with lock:
                answered.set()
            gate.end()  # the slots not used pass by themselves: nothing to write

    def _claim_again(self, payments: list[Payment], sending: Sending) -> None:
        """Payments another invocation was sending (a copy in another batch) are claimed again
        while this one has time: that invocation usually ends in seconds, and then they settle
        here (a duplicate, or sent) instead of spending a delivery on the wait. So are payments at
        their last delivery whose claim failed: a moment later the ledger often answers again."""
        outcomes = sending.outcomes

        def waiting(payment: Payment) -> bool:
            wait = outcomes[payment.message_id].wait if payment.message_id in outcomes else None
            return wait is Wait.CLAIMED_ELSEWHERE or (
                wait is Wait.LEDGER_UNAVAILABLE and payment.payment_key in sending.last
            )

        while busy := [p for p in payments if waiting(p)]:
            if sending.budget.left() < RECLAIM_WAIT_S + RECLAIM_MIN_LEFT_S:
                return
            self.sender.sleep(RECLAIM_WAIT_S)
            self._send_all(sending.session.claim(busy, outcomes), sending)
