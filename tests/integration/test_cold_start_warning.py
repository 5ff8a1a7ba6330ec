"""Without a unique property the function warns once per cold start (build_drain runs once per container)."""

import json

import pytest
from payments_drain.orchestration.config import load_settings
from payments_drain.orchestration.service import build_drain

ENVIRONMENT = {
    "HUBSPOT_TOKEN_SECRET_ID": "arn:aws:secretsmanager:us-east-1:123456789012:secret:token-AbCdEf",
    "FAILURE_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/reports",
    "LEDGER_TABLE_NAME": "ledger",
    "HUBSPOT_BASE_URL": "http://127.0.0.1:1",
}


def warnings(log_lines):
    return [json.loads(line) for line in log_lines() if '"no unique property' in line]


@pytest.mark.parametrize(
    ("unique", "ledger", "expected"),
    [
        (
            "",
            "ledger",
            [
                "no unique property (HUBSPOT_UNIQUE_PROPERTY is empty): HubSpot cannot refuse a payment it "
                "already holds, so a payment whose reply was lost may be created twice"
            ],
        ),
        (
            "",
            "",
            [
                "no unique property (HUBSPOT_UNIQUE_PROPERTY is empty): HubSpot cannot refuse a payment it "
                "already holds, so a payment whose reply was lost may be created twice, and the ledger is off too"
            ],
        ),
        ("payments_drain_key", "ledger", []),
    ],
)
def test_a_cold_start_without_a_unique_property_warns_once(aws_env, log_lines, unique, ledger, expected):
    build_drain(
        load_settings({**ENVIRONMENT, "HUBSPOT_UNIQUE_PROPERTY": unique, "LEDGER_TABLE_NAME": ledger})
    )
    found = warnings(log_lines)
    assert [w["message"] for w in found] == expected
    assert all(w["level"] == "WARNING" for w in found)
