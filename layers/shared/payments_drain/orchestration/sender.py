"""The chunk sender: one chunk of at most 100 payments to HubSpot, inside the invocation's budget.

A chunk's batch call is made by ``attempts.Attempts`` (the day, the token, a rate slot, the call,
the verdict, resends); here a whole-request 400 is split in halves (or, when it names the inputs
it refuses, sent again at once without them), and in upsert mode a settled part's links are then
written the same way, one associations call per target type (``links``). Each settled part is
handed to ``on_settled`` at once (the ledger records it there), with the ids HubSpot may have
stored although no answer says so."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from payments_drain.core import batching, links
from payments_drain.core.batching import settle
from payments_drain.core.observability import logger
from payments_drain.core.outcomes import Outcome, Payment, Reason, State
from payments_drain.orchestration.attempts import Attempts, retry_all
from payments_drain.orchestration.invocation import Budget, Stats
from payments_drain.orchestration.pacing import DailyLimit, RateGate
from payments_drain.orchestration.read_back import ReadBack

OnSettled = Callable[[list[Payment], dict[str, Outcome], set[str]], None]


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
        self.attempts = Attempts(self)  # one part's attempts at its call, until a verdict
        self.reader = ReadBack(self)

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
                verdict, part = self.attempts.run(part, budget, stats, maybe_stored, last, call, settle_now)
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
