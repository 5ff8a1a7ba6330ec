"""The chunk sender: one chunk of at most 100 payments to HubSpot, inside the invocation's budget.

Per call: the container's daily-limit memory, the rate gate, the token, the call, then the pure
``batching.settle`` decides; a whole-request 400 is split in halves (or, when it names the inputs
it refuses, sent again at once without them), a 401 reads the token past the cache once,
transient failures are resent with backoff while the budget allows. With the unique property, a
part whose answer was lost (sent, and no answer says what became of it) is read back by that
property before it is sent again (``read_back``): what HubSpot shows stored is settled as
created, and only the rest is sent again. In upsert mode a settled part's links are then written
the same way, one associations call per target type (``links``). Each settled part is handed to
``on_settled`` at once (the ledger records it there), with the ids HubSpot may have stored
although no answer says so. The backoff and hold policies are pure functions.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from payments_drain.adapters.rate_slots import RateSlotsUnavailable
from payments_drain.adapters.token import TokenUnavailable
from payments_drain.core import batching, links
from payments_drain.core.batching import settle
from payments_drain.core.observability import logger
from payments_drain.core.outcomes import Outcome, Payment, Reason, State, Wait
from payments_drain.core.reading import applied, read_of
from payments_drain.orchestration.invocation import Budget, Stats
from payments_drain.orchestration.pacing import DailyLimit, RateGate

RATE_SLOTS_UNAVAILABLE = "RATE_SLOTS_UNAVAILABLE"
SLOTS_RETRY_S = 1.0  # a payment at its last delivery asks the rate slots table again after this
DAILY_LIMIT = Reason("RATE_LIMIT", "HubSpot's daily limit is spent", 429)
OnSettled = Callable[[list[Payment], dict[str, Outcome], set[str]], None]


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


class ChunkSender:
    def __init__(
        self,
        hubspot,
        token,
        gate: RateGate,
        daily: DailyLimit,
        *,
        unique_property: str | None = None,
        upsert: bool = False,
        max_attempts: int = 3,
        sleep: Callable[[float], None],
        rng: random.Random,
        min_call_s: Callable[[], float],
        read_back: bool = False,
    ) -> None:
        self.hubspot = hubspot
        self.token = token
        self.gate = gate
        self.daily = daily
        self.unique_property = unique_property
        self.upsert = upsert  # batch/upsert by the unique property (the client knows the path)
        self.max_attempts = max_attempts
        self.sleep = sleep
        self.rng = rng
        self.min_call_s = min_call_s  # start a call only if connect plus a realistic answer fits
        # A lost answer is settled by batch/read by the unique property (``hubspot.read_batch``).
        self.read_back = read_back and bool(unique_property)

    def send(
        self, chunk: list[Payment], budget: Budget, stats: Stats, on_settled: OnSettled, last: bool = False
    ) -> None:
        """``last``: a payment of the chunk is at its last delivery before the dead-letter queue:
        transient failures are resent for as long as the budget allows, not ``max_attempts``.
        In upsert mode a settled part's links are written before it is handed on (``_link``)."""

        def settled(part: list[Payment], outcomes: dict[str, Outcome], maybe_stored: set[str]) -> None:
            if self.upsert:
                outcomes = self._link(part, outcomes, budget, stats, last)
            on_settled(part, outcomes, maybe_stored)

        written = [p for p in chunk if p.written_id]  # an earlier delivery wrote the record: links only
        records = [p for p in chunk if not p.written_id]
        if records:
            self._send_parts(records, budget, stats, last, _Records(self), settled)
        if written:
            settled(
                written,
                {p.message_id: Outcome(State.CREATED, hubspot_id=p.written_id) for p in written},
                set(),
            )

    def _link(
        self, part: list[Payment], outcomes: dict[str, Outcome], budget: Budget, stats: Stats, last: bool
    ) -> dict[str, Outcome]:
        """Upsert mode: the links of the part's written payments, by the ids the upsert returned,
        one call per target type (``links.plan``); each payment's outcome then says whether its
        links are written too (``links.fold``)."""
        written = [
            p
            for p in part
            if p.associations and (o := outcomes.get(p.message_id)) is not None and o.state is State.CREATED
        ]
        if not written:
            return outcomes
        settled_links: dict[str, Outcome] = {}
        ids = {p.message_id: outcomes[p.message_id].hubspot_id for p in written}
        for call in links.plan((p, ids[p.message_id]) for p in written if ids[p.message_id]):
            self._send_parts(
                call.links,
                budget,
                stats,
                last,
                _Links(self, call.to_type),
                lambda _part, result, _maybe: settled_links.update(result),
            )
        no_id = Outcome(State.RETRY, Reason(links.LINKS_PENDING, "HubSpot's answer gave no id to link from"))
        folded = dict(outcomes)
        for payment in written:
            keys = [f"{payment.message_id}#{i}" for i in range(len(payment.associations))]
            results = [settled_links.get(k, no_id) if ids[payment.message_id] else no_id for k in keys]
            folded[payment.message_id] = links.fold(payment, outcomes[payment.message_id], results)
            stats.count_links(sum(1 for o in results if o.state is State.CREATED))
        return folded

    def _send_parts(self, chunk: list, budget: Budget, stats: Stats, last: bool, call, on_settled) -> None:
        """One batch call's inputs to HubSpot, halved on a whole-request 400 that names no input,
        and without the refused ones on one that does; each settled part goes to ``on_settled``."""
        parts = [chunk]
        maybe_stored: set[str] = set()  # sent, and no answer has said it was not stored
        done: set[str] = set()  # settled by a read-back before their part's verdict

        def settle_now(payments: list[Payment], outcomes: dict[str, Outcome]) -> None:
            done.update(outcomes)
            on_settled(payments, outcomes, maybe_stored & {p.message_id for p in payments})

        while parts:
            part = parts.pop()
            try:
                verdict, part = self._send_part(part, budget, stats, maybe_stored, last, call, settle_now)
            except Exception as error:  # noqa: BLE001 - a bug must not lose the part: retry it, log it
                # The type only: an exception's text could carry what was sent, headers included.
                part = [p for p in part if p.message_id not in done]
                logger.error(
                    "unexpected error while sending a chunk",
                    extra={"errorType": type(error).__name__, "messageIds": [p.message_id for p in part]},
                )
                verdict = retry_all(part, Reason("INTERNAL_ERROR", "unexpected error while sending"))
            if not part:  # all of it settled by reading back
                continue
            if verdict.action == batching.SPLIT:
                middle = len(part) // 2
                parts.extend([part[middle:], part[:middle]])
                continue
            if verdict.resend_rest:
                parts.append([p for p in part if p.message_id not in verdict.outcomes])
                part = [p for p in part if p.message_id in verdict.outcomes]
            ids = {p.message_id for p in part}
            on_settled(part, verdict.outcomes, maybe_stored & ids)

    def _send_part(
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
        inputs = call.inputs(part)
        ids = {p.message_id for p in part}
        refreshed = False
        attempt = 0
        reason = Reason("TIME_BUDGET", "not enough time left in the invocation to call HubSpot")
        wait: Wait | None = None
        while True:
            if not self.daily.may_call():
                stats.daily_limit = True
                return retry_all(part, DAILY_LIMIT, Wait.DAILY_LIMIT), part
            try:
                token = self.token.get(force=refreshed)
            except TokenUnavailable as error:
                logger.error("HubSpot token unavailable", extra={"error": str(error)})
                return retry_all(part, Reason("TOKEN_UNAVAILABLE", str(error))), part
            if budget.left() < self.min_call_s():
                return self._out_of_time(part, reason, wait or stats.hubspot_wait()), part
            try:
                while (delay := self.gate.delay()) > 0:  # 0: the slot is ours, the call starts now
                    if budget.left() < delay + self.min_call_s():
                        return self._out_of_time(part, reason, wait or stats.hubspot_wait()), part
                    self.sleep(delay)
            except RateSlotsUnavailable as error:
                if last and budget.left() > SLOTS_RETRY_S + self.min_call_s():
                    self.sleep(SLOTS_RETRY_S)  # at its last delivery: the table may answer in a moment
                    continue
                logger.error("rate slots unavailable: payments retried", extra={"error": str(error)})
                reason = Reason(RATE_SLOTS_UNAVAILABLE, str(error))
                stats.count_unavailable(reason.category, len(part))
                return retry_all(part, reason, Wait.RATE_SLOTS_UNAVAILABLE), part
            if budget.left() < self.min_call_s():  # the slot came late (a slow slots table)
                self.gate.cancel()
                return self._out_of_time(part, reason, wait or stats.hubspot_wait()), part
            before = maybe_stored & ids
            maybe_stored.update(ids)  # from here until its answer proves otherwise, it may be stored
            self.gate.started()
            try:
                answer = call.write(inputs, token, budget.left())
            except BaseException:
                self.gate.finished({})  # it may have been counted: it holds its slot for a window
                raise
            verdict = call.settle(part, answer)
            if verdict.reason is not None and verdict.reason.category == batching.UNREADABLE:
                stats.count_unreadable()
            if not verdict.ambiguous:
                maybe_stored.difference_update(ids - before)
            self.gate.finished(
                answer.headers,
                verdict.wait_s if answer.status == 429 else 0.0,
                answered=answer.status is not None,
            )
            daily_spent = self.daily.observe(answer.status, answer.body, answer.headers)
            # AmbiguousCreates counts creates that may have stored a copy: an upsert or a link sent again makes none.
            stats.record(answer, [p.message_id for p in part], verdict.ambiguous and call.copies)
            reason = verdict.reason or reason
            if verdict.action in (batching.SETTLED, batching.SPLIT):
                held = [
                    o.reason for o in verdict.outcomes.values() if o.wait is Wait.CONFIGURATION and o.reason
                ]
                if held:  # its own alarm's metric: a person must fix the deployment (the reason says how)
                    stats.count_unavailable(held[0].category, len(held))
                    logger.error(
                        "HubSpot refused the deployment's configuration: payments held",
                        extra=_reason_log(held[0]),
                    )
                elif answer.status in (401, 403, 404) or batching.is_unknown_object_type(
                    answer.status, reason
                ):
                    logger.error(
                        "HubSpot refused the request: configuration fault", extra=_reason_log(reason)
                    )
                elif verdict.ambiguous:
                    logger.warning(
                        "HubSpot answer could not be mapped to every input", extra=_reason_log(reason)
                    )
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
                    extra={**_reason_log(reason), "probeInSeconds": round(self.daily.seconds_to_probe())},
                )
                return retry_all(part, reason, Wait.DAILY_LIMIT), part
            wait = wait_of(verdict)
            if wait is not None:
                stats.hubspot_unavailable = True
            if answer.status != 429:  # a 429 is waited out as long as the budget allows, not counted
                attempt += 1  # TRANSIENT
            backoff = backoff_s(attempt, verdict.wait_s, self.rng.random())
            if (attempt >= self.max_attempts and not last) or budget.left() < backoff + self.min_call_s():
                logger.warning(
                    "HubSpot call failed, payments retried",
                    extra={**_reason_log(reason), "messageIds": [p.message_id for p in part]},
                )
                return self._out_of_time(part, reason, wait or stats.hubspot_wait()), part
            self.sleep(backoff)
            if verdict.ambiguous and self.read_back and call.reads_back:  # sent, answer lost: what is stored?
                stored = self._read_back(part, token, budget, stats)
                if stored:
                    settle_now([p for p in part if p.message_id in stored], stored)
                    part = [p for p in part if p.message_id not in stored]
                    if not part:
                        return batching.Verdict(batching.SETTLED), part
                    inputs = [i for i in inputs if i["objectWriteTraceId"] not in stored]
                    ids -= set(stored)

    def _read_back(self, part: list[Payment], token: str, budget: Budget, stats: Stats) -> dict[str, Outcome]:
        """batch/read of the part by the unique property, in a rate slot like any call: the created
        outcomes of the payments HubSpot shows stored (``reading.applied``). Empty when the read could
        not be made or did not answer: the part is then sent again, as without reading back (safe
        with the unique property: HubSpot refuses, or in upsert mode rewrites, what it holds)."""
        try:
            while (delay := self.gate.delay()) > 0:
                if budget.left() < delay + 2 * self.min_call_s():  # the read, then the send
                    return {}
                self.sleep(delay)
        except RateSlotsUnavailable:
            return {}
        if budget.left() < 2 * self.min_call_s():
            self.gate.cancel()
            return {}
        names = sorted({name for p in part for name in p.properties} | {self.unique_property})
        self.gate.started()
        try:
            answer = self.hubspot.read_batch(
                [p.payment_key for p in part], token, names, self.unique_property, time_left_s=budget.left()
            )
        except BaseException:
            self.gate.finished({})
            raise
        self.gate.finished(
            answer.headers, 1.0 if answer.status == 429 else 0.0, answered=answer.status is not None
        )
        self.daily.observe(answer.status, answer.body, answer.headers)
        stats.record(answer, [], False)
        read = read_of(answer, [p.payment_key for p in part], self.unique_property)
        if read is None:
            return {}
        stored = applied(part, read, self.unique_property, self.upsert)  # type: ignore[arg-type]
        logger.info(
            "answer lost: read back by the unique property",
            extra={"readBack": len(part), "stored": len(stored), "messageIds": [p.message_id for p in part]},
        )
        return stored

    def _out_of_time(self, part: list[Payment], reason: Reason, wait: Wait | None) -> batching.Verdict:
        """The budget ends before the part can be sent: held while HubSpot is unavailable, or
        until the rate limit's timeline has a slot for it (``Wait.NO_SLOT_YET``), else back after
        the visibility timeout."""
        until_ms = None
        if wait is None and (until_ms := self.gate.no_slot_until_ms()) is not None:
            wait = Wait.NO_SLOT_YET
        return retry_all(part, reason, wait, until_ms)


def _reason_log(reason: Reason) -> dict[str, Any]:
    return {"reason": reason.as_dict()}


class _Records:
    """The payments' own batch call: create, or upsert by the unique property."""

    def __init__(self, sender: ChunkSender) -> None:
        self.sender = sender
        self.copies = not sender.upsert  # a create sent again may store a copy
        self.reads_back = True  # a lost answer is settled by reading the payments back

    def inputs(self, part: list[Payment]) -> list[dict[str, Any]]:
        sender = self.sender
        return [p.upsert_input(sender.unique_property) if sender.upsert else p.hubspot_input() for p in part]

    def write(self, inputs: list[dict[str, Any]], token: str, time_left_s: float) -> batching.Answer:
        return self.sender.hubspot.write_batch(inputs, token, time_left_s=time_left_s)

    def settle(self, part: list[Payment], answer: batching.Answer) -> batching.Verdict:
        return settle(part, answer, self.sender.unique_property)


class _Links:
    """Upsert mode's link call for one target object type (``links``)."""

    copies = False  # writing a link again changes nothing
    reads_back = False  # nor is a lost answer read back: the links are written again

    def __init__(self, sender: ChunkSender, to_type: str) -> None:
        self.sender = sender
        self.to_type = to_type

    def inputs(self, part: list[links.Link]) -> list[dict[str, Any]]:
        return [link.hubspot_input() for link in part]

    def write(self, inputs: list[dict[str, Any]], token: str, time_left_s: float) -> batching.Answer:
        return self.sender.hubspot.write_links(self.to_type, inputs, token, time_left_s=time_left_s)

    def settle(self, part: list[links.Link], answer: batching.Answer) -> batching.Verdict:
        return links.settle_links(part, answer)
