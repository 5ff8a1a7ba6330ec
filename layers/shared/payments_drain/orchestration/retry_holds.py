"""The retries' holds: how long each retry of a batch stays hidden on the queue, and setting it.

The rule for one retry is the pure core's (``holds.plan``); this class brings the invocation's
facts to it (the spent day, the queue's times) and sets the holds through the visibility adapter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from payments_drain.core import clock, holds
from payments_drain.core.holds import QueueTimes
from payments_drain.core.observability import logger
from payments_drain.core.outcomes import Message, Outcome, Payment, Reason, Rejection, State, Wait
from payments_drain.orchestration.invocation import Budget, Stats
from payments_drain.orchestration.pacing import DailyLimit
from payments_drain.orchestration.report_writer import rejected

RETENTION_EXPIRING = "RETENTION_EXPIRING"
NO_OUTCOME = Outcome(State.RETRY)  # a message without an outcome is retried (nothing is lost)


class RetryHolds:
    def __init__(self, visibility, daily: DailyLimit, hold_base_s: dict[Wait, int], queue_times: QueueTimes):
        self.visibility = visibility
        self.daily = daily  # the sender's: a spent day lengthens every hold
        self.hold_base_s = hold_base_s
        self.queue_times = queue_times

    def at_last_delivery(self, payments: list[Payment]) -> set[str]:
        """The paymentKeys with a copy at its last delivery before the dead-letter queue."""
        most = self.queue_times.max_receive_count
        return {p.payment_key for p in payments if most > 0 and p.message.receive_count >= most}

    def plan(
        self,
        messages: list[Message],
        outcomes: dict[str, Outcome],
        budget: Budget,
        rejections: dict[str, Rejection] | None,
        keys: Callable[[], Mapping[str, str | None]],
    ) -> dict[str, int]:
        """Each retry's hold (``holds.plan``); a retry that would come back too close to the end
        of its retention is rejected instead, with a report, while there is time to write it
        (``rejections`` None: the reports are written already, it is held as it can be).
        ``keys()``: the paymentKeys by message id, asked for only by such a report."""
        now = clock.wall()
        planned: dict[str, int] = {}
        bases = self.hold_base_s
        if self.daily.is_spent():
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
                rejections[message.message_id] = rejected(
                    "payment reported before the queue drops it",
                    message,
                    reason,
                    keys().get(message.message_id),
                )
            elif hold.seconds is not None:
                planned[message.message_id] = hold.seconds
        return planned

    def hold(self, held: dict[str, int], source_arn: str | None, stats: Stats) -> None:
        """Retries that wait stay hidden until what they wait for can take them (``holds``)."""
        if not held or self.visibility is None or not source_arn:
            return
        failed = self.visibility.hold(source_arn, held)
        stats.held, stats.hold_failures = len(held) - failed, failed
        if failed:
            logger.warning("some retries could not be held on the queue", extra={"failed": failed})
