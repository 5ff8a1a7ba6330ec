"""The reconcile function: what HubSpot holds for a set of payments, on demand.

Invoked by hand (console, ``aws lambda invoke``), never by an event source. The event holds what
``python -m payments_drain.tools.reconcile`` takes, in camelCase: ``paymentKey`` (a list of keys),
``payments`` (payment bodies or failure reports, as a file's lines) and ``since``/``until`` (the
ledger's payments created in that time), plus ``show`` (how many findings not as expected it
returns, 100 by default). HubSpot, the token's secret, the unique property and the ledger come
from the environment, as the drain's. It returns the counts, the exit code the command would have
ended with, and the findings not as expected; it stops reading before its time runs out (what it
did not reach is ``unread``). Only wiring lives here; the logic is in ``payments_drain.tools.reconcile``.
"""

import os

from payments_drain.adapters.hubspot import HubSpotClient
from payments_drain.adapters.ledger import DynamoLedger
from payments_drain.adapters.token import SecretToken
from payments_drain.core.observability import logger
from payments_drain.orchestration.config import load_settings
from payments_drain.orchestration.drain import Budget
from payments_drain.orchestration.pacing import RateGate
from payments_drain.tools.reconcile import (
    EXPECTED,
    BadInput,
    Reconciler,
    ReconcileRequest,
    exit_code,
    gather,
    summary,
)

SETTINGS = load_settings(os.environ)  # a bad variable fails the cold start, naming it
LEDGER = DynamoLedger(SETTINGS.LEDGER_TABLE_NAME) if SETTINGS.ledger_enabled else None
MARGIN_MS = 10_000  # left to answer after the last read


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event, context):
    request = ReconcileRequest.model_validate(event if isinstance(event, dict) else {"payments": event})
    try:
        payments = gather(request, SETTINGS.unique_property, LEDGER)
    except BadInput as error:
        raise ValueError(str(error)) from None
    budget = Budget.from_context(context, MARGIN_MS)
    reconciler = Reconciler(
        HubSpotClient(SETTINGS.HUBSPOT_BASE_URL, SETTINGS.HUBSPOT_API_VERSION),
        SecretToken(SETTINGS.HUBSPOT_TOKEN_SECRET_ID, 0).get(),
        SETTINGS.unique_property,
        LEDGER,
        RateGate(SETTINGS.HUBSPOT_RATE_LIMIT_PER_10S),
        time_left=budget.left,
    )
    findings = reconciler.run(payments)
    result = {
        "summary": {**summary(findings, reconciler.requests), "problems": reconciler.problems},
        "exitCode": exit_code(findings),
        "findings": [f.as_dict() for f in findings if f.status != EXPECTED][: request.show],
    }
    logger.info("reconcile summary", extra={"summary": result["summary"], "exitCode": result["exitCode"]})
    return result
