"""Configuration rules that no single variable's check covers."""

import pytest
from payments_drain.orchestration.config import ConfigurationError, load_settings

ENVIRONMENT = {
    "HUBSPOT_TOKEN_SECRET_ID": "s",
    "FAILURE_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/reports",
    "LEDGER_TABLE_NAME": "ledger",
}


def test_several_containers_need_the_rate_slots_table():
    """Without the slots table a container paces by HubSpot's headers alone, as if it were the only
    one (pacing.RateGate): several would together exceed the limit."""
    with pytest.raises(
        ConfigurationError, match="EVENT_SOURCE_MAX_CONCURRENCY above 1 needs RATE_SLOTS_TABLE_NAME"
    ):
        load_settings({**ENVIRONMENT, "EVENT_SOURCE_MAX_CONCURRENCY": "2"})
    shared = load_settings(
        {**ENVIRONMENT, "EVENT_SOURCE_MAX_CONCURRENCY": "2", "RATE_SLOTS_TABLE_NAME": "slots"}
    )
    assert shared.EVENT_SOURCE_MAX_CONCURRENCY == 2
    assert load_settings(ENVIRONMENT).EVENT_SOURCE_MAX_CONCURRENCY == 1
