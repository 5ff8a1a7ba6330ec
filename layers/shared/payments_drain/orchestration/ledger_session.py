"""One invocation's dealings with the ledger. ``LedgerSession``: claim the payments, record each
chunk as it settles, release what surely was not stored, mark what HubSpot may have stored.
``ReportClaims``: remember which messages' failure reports were written.

A kill at any instant (timeout, out of memory, SIGKILL) leaves at most the chunks in flight
claimed: every settled chunk is already recorded. A finished invocation leaves no live claim.
With no ledger configured (``ledger`` None) every method of both lets everything through; where
HubSpot refuses a copy itself (``claims_payments``) the ledger keeps only the written reports.
"""

from __future__ import annotations

import threading
from dataclasses import replace

from payments_drain.adapters.ledger import BUSY, CLAIMED, CREATED, STALE, Entry, LedgerUnavailable
from payments_drain.core import clock
from payments_drain.core.observability import logger
from payments_drain.core.outcomes import Outcome, Payment, Reason, Rejection, State, Wait
from payments_drain.orchestration.invocation import Stats

CLAIMED_ELSEWHERE = "CLAIMED_ELSEWHERE"
RECORD_RETRY_PAUSES_S = (0.2, 1.0)
LEDGER_UNAVAILABLE = "LEDGER_UNAVAILABLE"
STALE_VERSION = "STALE_VERSION"


def claims_payments(unique_property: str | None, upsert: bool) -> bool:
    """Whether the ledger claims each payment before it is sent (2 write units per new payment).
    Not in create mode with the unique property: HubSpot refuses a second create of a key it holds,
    also after an answer that never came, which no claim can cover (docs/exactly-once.md), so
    claims would buy only skipped requests on redeliveries. Upsert mode claims to apply versions in
    order; without the property the ledger is the only guard. Written reports are always kept."""
    return upsert or not unique_property


def _busy(entry: Entry, text: str) -> Outcome:
    """Held until the other invocation's claim ends (``holds``), not a whole visibility timeout."""
    return Outcome(
        State.RETRY, Reason(CLAIMED_ELSEWHERE, text), wait=Wait.CLAIMED_ELSEWHERE, until_ms=entry.until_ms
    )


def _unavailable(reason: Reason) -> Outcome:
    return Outcome(State.RETRY, reason, wait=Wait.LEDGER_UNAVAILABLE)


class LedgerSession:
    """This invocation's claims on payments, from the claim to the record of how each settled."""

    def __init__(
        self,
        ledger,
        request_id: str,
        claim_until_ms: int,
        stats: Stats,
        upsert: bool = False,
        payments: bool = True,
    ) -> None:
        self.ledger = ledger
        self.payments = payments  # claims_payments: else only reports are kept
        self.request_id = request_id
        self.until_ms = claim_until_ms  # the claims outlive every send of this invocation
        self.stats = stats
        self.upsert = upsert  # a created key takes newer versions; resending is harmless
        self.entries: dict[str, Entry] = {}
        self.write_failed = False
        self.lock = threading.Lock()

    def claim(self, payments: list[Payment], outcomes: dict[str, Outcome]) -> list[Payment]:
        """The payments this invocation may send; the others get their outcome."""
        if self.ledger is None or not self.payments or not payments:
            return payments
        versions = {p.payment_key: p.version for p in payments} if self.upsert else None
        try:
            entries = self.ledger.claim(
                [p.payment_key for p in payments], self.request_id, self.until_ms, versions
            )
        except LedgerUnavailable as error:
            reason = Reason(LEDGER_UNAVAILABLE, str(error))
            logger.error("ledger unavailable, every payment retried", extra={"error": str(error)})
            self.stats.count_unavailable(LEDGER_UNAVAILABLE, len(payments))
            outcomes.update({p.message_id: _unavailable(reason) for p in payments})
            return []
        sendable = []
        for payment in payments:
            entry = entries[payment.payment_key]
            if entry.state == CREATED:
                outcomes[payment.message_id] = Outcome(
                    State.DUPLICATE,
                    Reason("ALREADY_CREATED", "the ledger records it as created"),
                    entry.hubspot_id,
                )
            elif entry.state == STALE:
                outcomes[payment.message_id] = Outcome(
                    State.DUPLICATE,
                    Reason(
                        STALE_VERSION,
                        f"version {payment.version} is not newer than the applied {entry.version}",
                    ),
                    entry.hubspot_id,
                )
            elif entry.state == BUSY:
                outcomes[payment.message_id] = _busy(entry, "another invocation is sending this paymentKey")
            else:
                self.entries[payment.payment_key] = entry
                if entry.links_pending and entry.hubspot_id and payment.version == entry.version:
                    payment = replace(payment, written_id=entry.hubspot_id)  # its links only
                if entry.reclaimed and not self.upsert:  # maybe sent by an invocation that did not finish
                    # (in upsert mode sending again writes the same values: no copy to count)
                    self.stats.reclaimed()
                    logger.warning(
                        "payment may have been sent by an earlier invocation",
                        extra={"messageId": payment.message_id, "paymentKey": payment.payment_key},
                    )
                sendable.append(payment)
        return sendable

    def settled(self, part: list[Payment], outcomes: dict[str, Outcome], maybe_stored: set[str]) -> None:
        """Record one settled part at once: created ones, release those surely not stored, mark
        the rest ambiguous (their next delivery is taken over at once, and counted)."""
        if self.ledger is None or not self.payments:
            return
        created, versions, release, restore, ambiguous = {}, {}, [], {}, {}
        pending = set()  # upsert mode: written, links still to write (retried, or reported)
        for payment in part:
            key, outcome = payment.payment_key, outcomes[payment.message_id]
            entry = self.entries.get(key, Entry(CLAIMED))
            if outcome.state in (State.CREATED, State.DUPLICATE) or outcome.record_written:
                created[key] = outcome.hubspot_id or entry.hubspot_id
                versions[key] = payment.version if payment.version is not None else entry.version
                if outcome.state in (State.RETRY, State.REJECTED):  # a replay writes the links alone
                    pending.add(key)
            elif payment.message_id in maybe_stored:
                ambiguous[key] = entry
            elif entry.applied:
                restore[key] = entry
            else:
                release.append(key)
        if created:
            try:
                self._record_created(created, versions, pending)
            except LedgerUnavailable as error:
                # HubSpot has them: retrying would create them twice. Keep them created, say so loudly.
                logger.error(
                    "ledger write failed after HubSpot created the payments",
                    extra={"error": str(error), "paymentKeys": sorted(created)},
                )
                with self.lock:
                    self.write_failed = True
        _best_effort(self.ledger.mark_ambiguous, ambiguous, "could not mark ambiguous claims")
        _best_effort(self.ledger.restore, restore, "could not restore claims of applied payments")
        _best_effort(
            lambda keys: self.ledger.release(keys, self.request_id), release, "could not release claims"
        )

    def _record_created(self, created: dict, versions: dict, pending: set[str]) -> None:
        """What HubSpot holds must be recorded: a record lost lets a resend through (a copy, or
        in upsert mode an older version over a newer one). A failed write is tried again twice,
        a moment later (throttling on one item passes in a second), before it is given up."""
        for pause_s in RECORD_RETRY_PAUSES_S:
            try:
                self.ledger.record_created(created, versions, pending)
                return
            except LedgerUnavailable:
                clock.sleep(pause_s)
        self.ledger.record_created(created, versions, pending)


class ReportClaims:
    """The ledger's memory of written failure reports, so that no message is reported twice."""

    def __init__(self, ledger, request_id: str, claim_until_ms: int, stats: Stats) -> None:
        self.ledger = ledger
        self.request_id = request_id
        self.until_ms = claim_until_ms
        self.stats = stats

    def unreported(self, rejections: list[Rejection], outcomes: dict[str, Outcome]) -> list[Rejection]:
        """A message redelivered after its report was written (the invocation died before
        answering) is still rejected, but not reported twice."""
        if self.ledger is None or not rejections:
            return rejections
        try:
            entries = self.ledger.claim([report_key(r) for r in rejections], self.request_id, self.until_ms)
        except LedgerUnavailable as error:
            # Not reported unprotected (a redelivery would report it twice): it waits on the queue,
            # as every payment the ledger claims does while the ledger is unavailable.
            logger.error(
                "ledger unavailable, rejected messages retried unreported", extra={"error": str(error)}
            )
            reason = Reason(LEDGER_UNAVAILABLE, str(error))
            self.stats.count_unavailable(LEDGER_UNAVAILABLE, len(rejections))
            outcomes.update({r.message.message_id: _unavailable(reason) for r in rejections})
            return []
        unreported = []
        for rejection in rejections:
            entry = entries[report_key(rejection)]
            if entry.state == BUSY:
                outcomes[rejection.message.message_id] = _busy(
                    entry, "another invocation is reporting this message"
                )
            elif entry.state != CREATED:
                unreported.append(rejection)
        return unreported

    def reports_done(self, written: list[Rejection], not_written: list[Rejection]) -> None:
        if self.ledger is None:
            return
        if written:
            try:
                self.ledger.record_created({report_key(r): None for r in written})
            except LedgerUnavailable as error:
                logger.warning("could not record written reports in the ledger", extra={"error": str(error)})
        _best_effort(
            lambda keys: self.ledger.release(keys, self.request_id),
            [report_key(r) for r in not_written],
            "could not release report claims",
        )


def _best_effort(write, keys, problem: str) -> None:
    if not keys:
        return
    try:
        write(keys)
    except LedgerUnavailable as error:  # the claims expire at the function's deadline anyway
        logger.warning(problem, extra={"error": str(error)})


def report_key(rejection: Rejection) -> str:
    # A space never occurs in a paymentKey (messages.KEY_PATTERN), so report keys cannot collide.
    return f"report {rejection.message.message_id}"
