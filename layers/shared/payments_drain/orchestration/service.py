"""Wiring for a Lambda container: adapters from settings, and the per-batch summary and metrics."""

from __future__ import annotations

import statistics

from aws_lambda_powertools.metrics import MetricUnit

from payments_drain.adapters.hubspot import HubSpotClient
from payments_drain.adapters.ledger import DynamoLedger
from payments_drain.adapters.rate_slots import DynamoRateSlots
from payments_drain.adapters.reports import SqsReporter
from payments_drain.adapters.token import SecretToken
from payments_drain.adapters.visibility import SqsVisibility
from payments_drain.core.batching import UNIQUE_PROPERTY_MISSING
from payments_drain.core.observability import logger, metrics
from payments_drain.core.outcomes import Wait
from payments_drain.orchestration.attempts import RATE_SLOTS_UNAVAILABLE
from payments_drain.orchestration.config import Settings
from payments_drain.orchestration.drain import Drain, Result
from payments_drain.orchestration.ledger_session import LEDGER_UNAVAILABLE
from payments_drain.orchestration.pacing import DailyLimit, RateGate, SlotGate

MAX_METRIC_VALUES = 100  # EMF: at most 100 values per metric in one document


def build_drain(settings: Settings) -> Drain:
    """Once per container: the pool, the token cache and the rate gate live across invocations."""
    if settings.unique_property is None:  # once per cold start: docs/exactly-once.md
        logger.warning(
            "no unique property (HUBSPOT_UNIQUE_PROPERTY is empty): HubSpot cannot refuse a payment "
            "it already holds, so a payment whose reply was lost may be created twice"
            + ("" if settings.ledger_enabled else ", and the ledger is off too"),
            extra={"ledgerEnabled": settings.ledger_enabled},
        )
    parallel = settings.HUBSPOT_MAX_PARALLEL_CALLS
    hubspot = HubSpotClient(
        settings.HUBSPOT_BASE_URL,
        settings.HUBSPOT_API_VERSION,
        settings.HUBSPOT_CONNECT_TIMEOUT_SECONDS,
        settings.HUBSPOT_READ_TIMEOUT_SECONDS,
        max_connections=parallel,
        write_mode=settings.HUBSPOT_WRITE_MODE,
    )
    ledger = (
        DynamoLedger(settings.LEDGER_TABLE_NAME, settings.LEDGER_RETENTION_DAYS)
        if settings.ledger_enabled
        else None
    )
    return Drain(
        hubspot,
        SecretToken(settings.HUBSPOT_TOKEN_SECRET_ID, settings.TOKEN_CACHE_SECONDS),
        ledger,
        SqsReporter(settings.FAILURE_QUEUE_URL),
        visibility=SqsVisibility(),
        unique_property=settings.unique_property,
        upsert=settings.upsert,
        parallel_calls=parallel,
        max_attempts=settings.HUBSPOT_MAX_ATTEMPTS,
        gate=(
            SlotGate(
                DynamoRateSlots(
                    settings.RATE_SLOTS_TABLE_NAME, settings.HUBSPOT_RATE_LIMIT_PER_10S, parallel=parallel
                )
            )
            if settings.RATE_SLOTS_TABLE_NAME
            else RateGate(settings.HUBSPOT_RATE_LIMIT_PER_10S, parallel_calls=parallel)
        ),
        daily=DailyLimit(settings.DAILY_LIMIT_PROBE_SECONDS),
        hold_base_s={  # an outage of the ledger or the slots, or a refused configuration, as HubSpot's
            Wait.HUBSPOT_UNAVAILABLE: settings.HUBSPOT_UNAVAILABLE_HOLD_SECONDS,
            Wait.LEDGER_UNAVAILABLE: settings.HUBSPOT_UNAVAILABLE_HOLD_SECONDS,
            Wait.RATE_SLOTS_UNAVAILABLE: settings.HUBSPOT_UNAVAILABLE_HOLD_SECONDS,
            Wait.CONFIGURATION: settings.HUBSPOT_UNAVAILABLE_HOLD_SECONDS,
            Wait.DAILY_LIMIT: settings.DAILY_LIMIT_HOLD_SECONDS,
        },
        queue_times=settings.queue_times,
        read_back=True,  # with the unique property: a lost answer is read back, not resent blindly
    )


def publish(result: Result, received: int, duration_ms: float) -> None:
    """One summary log line and one set of EMF metrics for the batch."""
    counts = result.counts()
    # Each a pass over the batch's outcomes: counted once for the log line and the metrics both.
    updated, stale, expiring = result.updated(), result.stale(), result.expiring()
    stats = result.stats
    latencies = stats.latencies_ms
    summary = {
        "received": received,
        **counts,
        "updated": updated,
        "stale": stale,
        "linksWritten": stats.links,
        "hubspotRequests": stats.requests,
        "hubspotStatuses": dict(stats.statuses),
        "hubspotThrottled": stats.throttled,
        "hubspotLatencyMs": {
            "p50": round(statistics.median(latencies), 1) if latencies else None,
            "max": max(latencies) if latencies else None,
        },
        "rateLimitRemaining": stats.rate_limit_remaining,
        "ambiguousCreates": stats.ambiguous,
        "dailyLimitReached": stats.daily_limit,
        "held": stats.held,
        "holdFailures": stats.hold_failures,
        "unreadableAnswers": stats.unreadable,
        "expiring": expiring,
        "ledgerUnavailable": stats.unavailable[LEDGER_UNAVAILABLE],
        "rateSlotsUnavailable": stats.unavailable[RATE_SLOTS_UNAVAILABLE],
        "uniquePropertyMissing": stats.unavailable[UNIQUE_PROPERTY_MISSING],
        "ledgerWriteFailed": result.ledger_write_failed,
        "batchItemFailures": len(result.response["batchItemFailures"]),
        "durationMs": round(duration_ms, 1),
    }
    logger.info("batch summary", extra={"summary": summary})
    count = MetricUnit.Count
    for name, value in (
        ("PaymentsReceived", received),
        ("PaymentsCreated", counts["created"]),
        ("PaymentsDuplicate", counts["duplicate"]),
        ("PaymentsUpdated", updated),
        ("PaymentsStale", stale),
        ("PaymentLinksWritten", stats.links),
        ("PaymentsRejected", counts["rejected"]),
        ("PaymentsRetried", counts["retry"]),
        ("AmbiguousCreates", stats.ambiguous),
        ("HubSpotRequests", stats.requests),
        ("HubSpotThrottled", stats.throttled),
        ("HubSpotErrors", stats.errors),
        ("HubSpotAuthFailures", stats.auth_failures),
        ("HubSpotDailyLimitReached", int(stats.daily_limit)),
        ("PaymentsHeld", stats.held),
        ("PaymentHoldFailures", stats.hold_failures),
        ("PaymentsExpiring", expiring),
        ("HubSpotUnreadableAnswers", stats.unreadable),
        ("LedgerUnavailable", stats.unavailable[LEDGER_UNAVAILABLE]),
        ("RateSlotsUnavailable", stats.unavailable[RATE_SLOTS_UNAVAILABLE]),
        ("UniquePropertyMissing", stats.unavailable[UNIQUE_PROPERTY_MISSING]),
        ("LedgerWriteFailures", int(result.ledger_write_failed)),
    ):
        metrics.add_metric(name=name, unit=count, value=value)
    for latency in latencies[:MAX_METRIC_VALUES]:
        metrics.add_metric(name="HubSpotLatency", unit=MetricUnit.Milliseconds, value=latency)
    metrics.add_metric(name="BatchDuration", unit=MetricUnit.Milliseconds, value=round(duration_ms, 1))
