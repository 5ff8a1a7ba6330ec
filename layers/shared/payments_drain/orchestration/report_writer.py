"""The report writer: one failure report per rejected message, FIFO order kept.

Each report is built and sent on its own account: a report that cannot be written turns only its
own message into a retry. FIFO: a group's reports go out one round at a time, in batch order, and
a report that fails stops its group (the rest of the group comes back with it, so none of them is
reported now and again on redelivery).
"""

from __future__ import annotations

import json
from typing import Any

from payments_drain.adapters.reports import report_of
from payments_drain.core.batching import fifo_rounds
from payments_drain.core.observability import logger
from payments_drain.core.outcomes import Message, Outcome, Reason, Rejection, State
from payments_drain.orchestration.ledger_session import ReportClaims


class ReportWriter:
    def __init__(self, reporter) -> None:
        self.reporter = reporter

    def write(self, rejections: list[Rejection], request_id: str, source_arn: str | None) -> set[str]:
        """Write the reports; return the message ids left without one."""
        not_written: set[str] = set()
        for round_ in fifo_rounds([r.message for r in rejections], not_written):
            ids = {m.message_id for m in round_}
            not_written |= self._send(
                [report_of(r, request_id, source_arn) for r in rejections if r.message.message_id in ids]
            )
        return not_written

    def _send(self, reports: list[dict]) -> set[str]:
        if not reports:
            return set()
        try:
            not_written = self.reporter.send(reports)
        except Exception as error:  # noqa: BLE001 - whatever failed, those messages stay on the queue
            logger.error("failure reports could not be written", extra={"errorType": type(error).__name__})
            return {r["messageId"] for r in reports}
        if not_written:
            logger.error("some failure reports were not written", extra={"messageIds": sorted(not_written)})
        return not_written


class BatchReports:
    """One batch's failure reports: each rejected message reported once (``ReportClaims``
    remembers the written ones), and a report not written makes its message a retry."""

    def __init__(
        self,
        writer: ReportWriter,
        claims: ReportClaims,
        outcomes: dict[str, Outcome],
        request_id: str,
        source_arn: str | None,
    ) -> None:
        self.writer, self.claims, self.outcomes = writer, claims, outcomes
        self.request_id, self.source_arn = request_id, source_arn

    def write(self, rejections: list[Rejection]) -> None:
        """One report per rejected message not reported before; a report not written is a retry."""
        to_report = self.claims.unreported(rejections, self.outcomes)
        not_written = self.writer.write(to_report, self.request_id, self.source_arn)
        for message_id in not_written:
            self.outcomes[message_id] = Outcome(
                State.RETRY, Reason("REPORT_NOT_WRITTEN", "failure report could not be written")
            )
        self.claims.reports_done(
            [r for r in to_report if r.message.message_id not in not_written],
            [r for r in to_report if r.message.message_id in not_written],
        )

    def not_written(self, rejections: list[Rejection]) -> None:
        """The reports the invocation could not wait for: their messages are retried."""
        reason = Reason(
            "REPORT_NOT_WRITTEN", "failure report not written before the invocation had to answer"
        )
        for rejection in rejections:
            if self.outcomes[rejection.message.message_id].state is State.REJECTED:
                self.outcomes[rejection.message.message_id] = Outcome(State.RETRY, reason)


def rejected(text: str, message: Message, reason: Reason | None, payment_key: str | None) -> Rejection:
    """A message rejected after parsing (HubSpot refused it, or its retention runs out): its
    rejection to report, with the problem logged."""
    rejection = Rejection(message, reason, payment_key, _body_of(message))
    log_problem(text, message, reason, payment_key)
    return rejection


def _body_of(message: Message) -> Any:
    try:
        return json.loads(message.body)
    except ValueError:
        return message.body


def log_problem(text: str, message: Message, reason: Reason | None, payment_key: str | None) -> None:
    logger.warning(
        text,
        extra={
            "messageId": message.message_id,
            "paymentKey": payment_key,
            "reason": reason.as_dict() if reason else None,
        },
    )
