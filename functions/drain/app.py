"""The drain function: an SQS batch of payments into HubSpot commerce_payments batch-create.

Only wiring lives here; the logic is in the layer's ``payments_drain`` package.
"""

import gc
import os
import time

from payments_drain.config import load_settings
from payments_drain.drain import Budget
from payments_drain.observability import logger, metrics, tracer
from payments_drain.service import build_drain, publish

SETTINGS = load_settings(os.environ)  # a bad variable fails the cold start, naming it
DRAIN = build_drain(SETTINGS)
gc.freeze()  # what the cold start built lives as long as the container: keep it out of every collection


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
