"""A lost answer read back: batch/read of the part by the unique property, in a rate slot like any
call; what HubSpot shows stored is settled as created (``reading.applied``), and only the rest is
sent again."""

from __future__ import annotations

from payments_drain.adapters.rate_slots import RateSlotsUnavailable
from payments_drain.core.observability import logger
from payments_drain.core.outcomes import Outcome, Payment
from payments_drain.core.reading import applied, read_of
from payments_drain.orchestration.invocation import Budget, Stats
from payments_drain.orchestration.pacing import call_in_slot, wait_for_slot


class ReadBack:
    """Reads back for a sender; its settings are read at each call (``sender``)."""

    def __init__(self, sender) -> None:
        self.sender = sender

    def __call__(self, part: list[Payment], token: str, budget: Budget, stats: Stats) -> dict[str, Outcome]:
        """batch/read of the part by the unique property, in a rate slot like any call: the created
        outcomes of the payments HubSpot shows stored (``reading.applied``). Empty when the read could
        not be made or did not answer: the part is then sent again, as without reading back (safe
        with the unique property: HubSpot refuses, or in upsert mode rewrites, what it holds)."""
        s = self.sender
        try:
            if not wait_for_slot(s.gate, budget, s.sleep, 2 * s.min_call_s()):  # the read, then the send
                return {}
        except RateSlotsUnavailable:
            return {}
        names = sorted({name for p in part for name in p.properties} | {s.unique_property})
        keys = [p.payment_key for p in part]
        answer, _ = call_in_slot(
            s.gate,
            s.daily,
            s.hubspot.read_batch,
            keys,
            token,
            names,
            s.unique_property,
            time_left_s=budget.left(),
        )
        stats.record(answer, [], False)
        read = read_of(answer, keys, s.unique_property)
        if read is None:
            return {}
        stored = applied(part, read, s.unique_property, s.upsert)  # type: ignore[arg-type]
        logger.info(
            "answer lost: read back by the unique property",
            extra={"readBack": len(part), "stored": len(stored), "messageIds": [p.message_id for p in part]},
        )
        return stored
