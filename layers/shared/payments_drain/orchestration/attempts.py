"""One part's attempts at its batch call, until a verdict.

Per attempt: the container's daily-limit memory, the token, a rate slot, the call, then the pure
``batching.settle`` decides; a 401 reads the token past the cache once, transient failures are
resent with backoff while the budget allows (at a payment's last delivery, for as long as it
allows), a lost answer is read back first where the unique property allows it (``ReadBack``).
The backoff and the retries' waits are pure functions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from payments_drain.adapters.rate_slots import RateSlotsUnavailable
from payments_drain.adapters.token import TokenUnavailable
from payments_drain.core import batching
from payments_drain.core.observability import logger
from payments_drain.core.outcomes import Outcome, Payment, Reason, State, Wait
from payments_drain.orchestration.invocation import Budget, Stats
from payments_drain.orchestration.pacing import call_in_slot, wait_for_slot

RATE_SLOTS_UNAVAILABLE = "RATE_SLOTS_UNAVAILABLE"
SLOTS_RETRY_S = 1.0  # a payment at its last delivery asks the rate slots table again after this
DAILY_LIMIT = Reason("RATE_LIMIT", "HubSpot's daily limit is spent", 429)


def backoff_s(attempt: int, told_s: float, jitter: float) -> float:
    """Seconds before a resend: what HubSpot told (Retry-After) if longer than 0.5, 1, 2 s...
    with up to 25 % jitter (``jitter`` in [0, 1))."""
    return max(told_s, 0.25 * 2 ** max(attempt, 1) * (1 + jitter / 4))


def wait_of(verdict: batching.Verdict) -> Wait | None:
    """Whether the retries of a verdict wait only for HubSpot (throttled, down, unreachable)."""
    return Wait.HUBSPOT_UNAVAILABLE if verdict.action == batching.TRANSIENT else None


def retry_all(
    part: list[Payment], reason: Reason, wait: Wait | None = None, until_ms: int | None = None
) -> batching.Verdict:
    outcome = Outcome(State.RETRY, reason, wait=wait, until_ms=until_ms)
    return batching.Verdict(batching.SETTLED, dict.fromkeys((p.message_id for p in part), outcome), reason)


class Attempts:
    """The attempts of one part; the sender's settings are read at each call (``sender``)."""

    def __init__(self, sender) -> None:
        self.sender = sender

    def run(
        self,
        part: list,
        budget: Budget,
        stats: Stats,
        maybe_stored: set[str],
        last: bool,
        call,
        settle_now: Callable[[list[Payment], dict[str, Outcome]], None] = lambda payments, outcomes: None,
    ) -> tuple[batching.Verdict, list]:
        """The verdict on ``part``, and the part it is about: ``part`` less what a read-back showed
        stored (handed to ``settle_now`` at once)."""
        s = self.sender
        inputs = call.inputs(part)
        ids = {p.message_id for p in part}
        refreshed = False
        attempt = 0
        reason = Reason("TIME_BUDGET", "not enough time left in the invocation to call HubSpot")
        wait: Wait | None = None
        while True:
            if not s.daily.may_call():
                stats.daily_limit = True
                return retry_all(part, DAILY_LIMIT, Wait.DAILY_LIMIT), part
            try:
                token = s.token.get(force=refreshed)
            except TokenUnavailable as error:
                logger.error("HubSpot token unavailable", extra={"error": str(error)})
                return retry_all(part, Reason("TOKEN_UNAVAILABLE", str(error))), part
            if budget.left() < s.min_call_s():
                return self._out_of_time(part, reason, wait or stats.hubspot_wait()), part
            try:
                has_slot = wait_for_slot(s.gate, budget, s.sleep, s.min_call_s())
            except RateSlotsUnavailable as error:
                if last and budget.left() > SLOTS_RETRY_S + s.min_call_s():
                    s.sleep(SLOTS_RETRY_S)  # at its last delivery: the table may answer in a moment
                    continue
                logger.error("rate slots unavailable: payments retried", extra={"error": str(error)})
                reason = Reason(RATE_SLOTS_UNAVAILABLE, str(error))
                stats.count_unavailable(reason.category, len(part))
                return retry_all(part, reason, Wait.RATE_SLOTS_UNAVAILABLE), part
            if not has_slot:  # none in the time left, or it came late (a slow slots table)
                return self._out_of_time(part, reason, wait or stats.hubspot_wait()), part
            before = maybe_stored & ids
            maybe_stored.update(ids)  # from here until its answer proves otherwise, it may be stored
            answer, daily_spent = call_in_slot(s.gate, s.daily, call.write, inputs, token, budget.left())
            verdict = call.settle(part, answer)
            if verdict.reason is not None and verdict.reason.category == batching.UNREADABLE:
                stats.count_unreadable()
            if not verdict.ambiguous:
                maybe_stored.difference_update(ids - before)
            # AmbiguousCreates counts creates that may have stored a copy: an upsert or a link sent again makes none.
            stats.record(answer, [p.message_id for p in part], verdict.ambiguous and call.copies)
            reason = verdict.reason or reason
            if verdict.action in (batching.SETTLED, batching.SPLIT):
                _log_settled(verdict, answer.status, reason, stats)
                return verdict, part
            if verdict.action == batching.REFRESH:
                if refreshed:
                    logger.error(
                        "HubSpot rejected the token, also after reading it again", extra=_reason_log(reason)
                    )
                    return retry_all(part, reason), part
                refreshed = True
                continue
            if verdict.action == batching.STOP or daily_spent:
                stats.daily_limit = True
                logger.error(
                    "HubSpot daily rate limit reached: no call until the next probe",
                    extra={**_reason_log(reason), "probeInSeconds": round(s.daily.seconds_to_probe())},
                )
                return retry_all(part, reason, Wait.DAILY_LIMIT), part
            wait = wait_of(verdict)
            if wait is not None:
                stats.hubspot_unavailable = True
            if answer.status != 429:  # a 429 is waited out as long as the budget allows, not counted
                attempt += 1  # TRANSIENT
            backoff = backoff_s(attempt, verdict.wait_s, s.rng.random())
            if (attempt >= s.max_attempts and not last) or budget.left() < backoff + s.min_call_s():
                logger.warning(
                    "HubSpot call failed, payments retried",
                    extra={**_reason_log(reason), "messageIds": [p.message_id for p in part]},
                )
                return self._out_of_time(part, reason, wait or stats.hubspot_wait()), part
            s.sleep(backoff)
            if verdict.ambiguous and s.read_back and call.reads_back:  # sent, answer lost: what is stored?
                stored = s.reader(part, token, budget, stats)
                if stored:
                    settle_now([p for p in part if p.message_id in stored], stored)
                    part = [p for p in part if p.message_id not in stored]
                    if not part:
                        return batching.Verdict(batching.SETTLED), part
                    inputs = [i for i in inputs if i["objectWriteTraceId"] not in stored]
                    ids -= set(stored)

    def _out_of_time(self, part: list[Payment], reason: Reason, wait: Wait | None) -> batching.Verdict:
        """The budget ends before the part can be sent: held while HubSpot is unavailable, or
        until the rate limit's timeline has a slot for it (``Wait.NO_SLOT_YET``), else back after
        the visibility timeout."""
        until_ms = None
        if wait is None and (until_ms := self.sender.gate.no_slot_until_ms()) is not None:
            wait = Wait.NO_SLOT_YET
        return retry_all(part, reason, wait, until_ms)


def _log_settled(verdict: batching.Verdict, status: int | None, reason: Reason, stats: Stats) -> None:
    """What a settled verdict tells the operator: a configuration HubSpot refuses (held, its own
    alarm's metric), a request refused as a configuration fault, an answer not mapped to every input."""
    held = [o.reason for o in verdict.outcomes.values() if o.wait is Wait.CONFIGURATION and o.reason]
    if held:  # a person must fix the deployment (the reason says how)
        stats.count_unavailable(held[0].category, len(held))
        logger.error(
            "HubSpot refused the deployment's configuration: payments held", extra=_reason_log(held[0])
        )
    elif status in (401, 403, 404) or batching.is_unknown_object_type(status, reason):
        logger.error("HubSpot refused the request: configuration fault", extra=_reason_log(reason))
    elif verdict.ambiguous:
        logger.warning("HubSpot answer could not be mapped to every input", extra=_reason_log(reason))


def _reason_log(reason: Reason) -> dict[str, Any]:
    return {"reason": reason.as_dict()}
