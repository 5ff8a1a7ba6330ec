"""The replay function: reported payments back onto the payments queue, on demand.

Invoked by hand (console, ``aws lambda invoke``), never by an event source. The event holds the
options of ``python -m payments_drain.tools.replay``, in camelCase, and must say ``dryRun`` either way:
``{"dryRun": true, "category": "...", "code": "...", "since": "...", "until": "...", "limit": 100}``.
The queues come from the environment (FAILURE_QUEUE_URL, PAYMENTS_QUEUE_URL), never from the event.
Only wiring lives here; the logic is in the layer's ``payments_drain.tools.replay``.
"""

import os

from payments_drain.core.limits import SQS_MAX_VISIBILITY_S
from payments_drain.core.observability import logger
from payments_drain.orchestration.drain import Budget
from payments_drain.tools.replay import ReplayRequest, replay

FAILURE_QUEUE_URL = os.environ["FAILURE_QUEUE_URL"]  # a missing variable fails the cold start, naming it
PAYMENTS_QUEUE_URL = os.environ["PAYMENTS_QUEUE_URL"]
MARGIN_MS = 20_000  # left for releasing held reports after the last round


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event, context):
    if not isinstance(event, dict) or not isinstance(event.get("dryRun"), bool):
        raise ValueError('the event must say "dryRun": true or false')
    budget = Budget.from_context(context, MARGIN_MS)
    # Hold reports for the whole invocation unless the event says otherwise: one pass sees each once.
    hold = min(SQS_MAX_VISIBILITY_S.value, int(context.get_remaining_time_in_millis() / 1000) + 60)
    request = ReplayRequest.model_validate({"visibilityTimeout": hold, **event})
    summary = replay(
        request, FAILURE_QUEUE_URL, PAYMENTS_QUEUE_URL, progress=logger.debug, time_left=budget.left
    ).as_dict()
    logger.info("replay summary", extra={"summary": summary})
    return summary
