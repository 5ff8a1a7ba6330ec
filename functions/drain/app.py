"""The drain function: an SQS batch of payments into HubSpot commerce_payments batch-create.

Only wiring lives here; the logic is in the layer's ``payments_drain`` package.
"""

import gc

# The cyclic collector finds nothing to free in what the cold start builds (modules, settings,
# clients, pools: kept for the container's life) nor in a batch (its objects die with it, by
# reference counting), but scans all of it again and again while it grows: ~13 % of the cold
# start's CPU and ~8 % of a 10,000-message batch's (docs/performance.md, figures a and d). So it
# is off while they run, and on again between invocations; what the cold start built is frozen,
# out of every later collection.
gc.disable()
try:
    import functools
    import os
    import time

    from payments_drain.core.observability import logger, metrics, tracer
    from payments_drain.orchestration.config import load_settings
    from payments_drain.orchestration.drain import Budget
    from payments_drain.orchestration.service import build_drain, publish

    SETTINGS = load_settings(os.environ)  # a bad variable fails the cold start, naming it
    DRAIN = build_drain(SETTINGS)
    gc.freeze()
finally:
    gc.enable()


def without_collector(handler):
    """The invocation, Powertools' decorators included, with the cyclic collector off (see above)."""

    @functools.wraps(handler)
    def invocation(event, context):
        gc.disable()
        try:
            return handler(event, context)
        finally:
            gc.enable()

    return invocation


@without_collector
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event, context):
    started = time.monotonic()
    records = event.get("Records") or []
    source = records[0].get("eventSourceARN") if records else None
    budget = Budget.from_context(context, SETTINGS.TIME_MARGIN_MS)
    result = DRAIN.run(records, budget, context.aws_request_id, source)
    publish(result, len(records), (time.monotonic() - started) * 1000)
    return result.response
