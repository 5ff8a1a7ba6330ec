"""The report writer: one failure report per rejected message, FIFO order kept.

Each report is built and sent on its own account: a report that cannot be written turns only its
own message into a retry. FIFO: a group's reports go out one round at a time, in batch order, and
a report that fails stops its group (the rest of the group comes back with it, so none of them is
reported now and again on redelivery).
"""

from __future__ import annotations

from payments_drain.adapters.reports import report_of
from payments_drain.core.batching import fifo_rounds
from payments_drain.core.observability import logger
from payments_drain.core.outcomes import Rejection


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
