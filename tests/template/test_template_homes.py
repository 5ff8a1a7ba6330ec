"""template.yaml cannot import Python: every value it shares with the code is written there once
more, and these tests hold it equal to its one home in the code (core.limits for AWS's and
HubSpot's limits, core.holds and config for our defaults, adapters.hubspot for HubSpot's URL)."""

from __future__ import annotations

import re

import pytest
from payments_drain.adapters.hubspot import BASE_URL
from payments_drain.core import limits
from payments_drain.core.holds import HOLD_BASE_S, QueueTimes
from payments_drain.core.outcomes import Wait
from payments_drain.orchestration.config import DEFAULT_PROPERTY, Settings

DEFAULTS = Settings.model_fields


def test_hold_defaults_are_the_holds_base_and_configs_defaults(parameters):
    assert (
        int(parameters["HubSpotUnavailableHoldSeconds"]["Default"]) == HOLD_BASE_S[Wait.HUBSPOT_UNAVAILABLE]
    )
    assert int(parameters["DailyLimitHoldSeconds"]["Default"]) == HOLD_BASE_S[Wait.DAILY_LIMIT]
    assert DEFAULTS["HUBSPOT_UNAVAILABLE_HOLD_SECONDS"].default == HOLD_BASE_S[Wait.HUBSPOT_UNAVAILABLE]
    assert DEFAULTS["DAILY_LIMIT_HOLD_SECONDS"].default == HOLD_BASE_S[Wait.DAILY_LIMIT]


def test_queue_defaults_are_the_queue_times_defaults(parameters):
    queue = QueueTimes()
    assert int(parameters["QueueVisibilityTimeoutSeconds"]["Default"]) == queue.visibility_timeout_s
    assert DEFAULTS["QUEUE_VISIBILITY_TIMEOUT_SECONDS"].default == queue.visibility_timeout_s
    assert (
        DEFAULTS["QUEUE_RETENTION_SECONDS"].default == queue.retention_s == limits.SQS_MAX_RETENTION_S.value
    )


@pytest.mark.parametrize(
    "name", ["QueueVisibilityTimeoutSeconds", "HubSpotUnavailableHoldSeconds", "DailyLimitHoldSeconds"]
)
def test_every_visibility_parameter_stops_at_sqs_12_hours(parameters, name):
    assert int(parameters[name]["MaxValue"]) == limits.SQS_MAX_VISIBILITY_S.value


def test_every_retention_is_sqs_longest(parameters, resources):
    """The payments queue's retention defaults to SQS's longest; the dead-letter and report queues
    keep theirs that long, so a message dead-lettered late in its life is not dropped early."""
    assert int(parameters["QueueRetentionSeconds"]["Default"]) == limits.SQS_MAX_RETENTION_S.value
    assert int(parameters["QueueRetentionSeconds"]["MaxValue"]) == limits.SQS_MAX_RETENTION_S.value
    assert int(parameters["OldestMessageAgeAlarmSeconds"]["MaxValue"]) == limits.SQS_MAX_RETENTION_S.value
    for queue in ("PaymentsDeadLetterQueue", "FailureReportQueue"):
        retention = resources[queue]["Properties"]["MessageRetentionPeriod"]
        assert int(retention) == limits.SQS_MAX_RETENTION_S.value == limits.SQS_DLQ_RETENTION.value, queue


def test_the_queues_take_the_largest_message_sqs_takes(resources):
    """The producer's and the reporter's limit (adapters.sqs_batches.MAX_BYTES) is SQS's; the queues
    the template makes accept it."""
    for queue in ("PaymentsQueue", "FailureReportQueue"):
        size = resources[queue]["Properties"]["MaximumMessageSize"]
        assert int(size) == limits.SQS_MAX_MESSAGE_BYTES.value, queue


def test_hubspot_base_url_and_rate_limit_defaults_are_the_codes(parameters):
    assert parameters["HubSpotBaseUrl"]["Default"] == BASE_URL == DEFAULTS["HUBSPOT_BASE_URL"].default
    assert int(parameters["HubSpotRateLimitPer10s"]["Default"]) == limits.HUBSPOT_PER_10S_PROFESSIONAL.value
    assert DEFAULTS["HUBSPOT_RATE_LIMIT_PER_10S"].default == limits.HUBSPOT_PER_10S_PROFESSIONAL.value
    documented = {
        limits.HUBSPOT_PER_10S_STARTER.value,
        limits.HUBSPOT_PER_10S_PUBLIC_APP.value,
        limits.HUBSPOT_PER_10S_PROFESSIONAL.value,
        limits.HUBSPOT_PER_10S_LIMIT_INCREASE.value,
    }
    assert {int(v) for v in parameters["HubSpotRateLimitPer10s"]["AllowedValues"]} == documented


def test_the_table_name_pattern_is_dynamodbs(parameters):
    pattern = parameters["ExistingRateSlotsTableName"]["AllowedPattern"]
    assert pattern == f"^({limits.DDB_TABLE_NAME})?$"
    for name in ("LEDGER_TABLE_NAME", "RATE_SLOTS_TABLE_NAME"):
        assert [m.pattern for m in DEFAULTS[name].metadata if hasattr(m, "pattern")] == [pattern]
    assert re.fullmatch(pattern, "payments-drain-slots") and not re.fullmatch(pattern, "ab")


def test_the_dead_letter_queue_allows_redrive_from_exactly_the_payments_queue(resources):
    """The payments queue's name is written twice: as its QueueName, and in the dead-letter queue's
    RedriveAllowPolicy (a !GetAtt there would be a cycle: the payments queue's RedrivePolicy names
    the dead-letter queue). The two must stay the same name."""
    name = resources["PaymentsQueue"]["Properties"]["QueueName"]
    (source,) = resources["PaymentsDeadLetterQueue"]["Properties"]["RedriveAllowPolicy"]["sourceQueueArns"]
    assert _sub(source).endswith(":" + _sub(name))
    assert _sub(name) == "${AWS::StackName}-payments"


def _sub(value):
    return value["Fn::Sub"] if isinstance(value, dict) else value


def test_the_unique_property_default_is_the_tools_default(parameters):
    """setup-hubspot creates, and reconcile reads by, config.DEFAULT_PROPERTY: the property the
    template's default deploys with."""
    assert parameters["HubSpotUniqueProperty"]["Default"] == DEFAULT_PROPERTY
