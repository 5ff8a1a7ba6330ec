"""template.yaml's alarms, dashboard and saved queries watch what the function really emits, and
every alarm points at its section of the runbook (docs/operations.md)."""

from __future__ import annotations

import json
import re

import pytest
from cfn_template import REPO_ROOT

SERVICE_PY = (REPO_ROOT / "layers/shared/payments_drain/orchestration/service.py").read_text(encoding="utf-8")
DRAIN_PY = (REPO_ROOT / "layers/shared/payments_drain/orchestration/drain.py").read_text(encoding="utf-8")
RUNBOOK = (REPO_ROOT / "docs/operations.md").read_text(encoding="utf-8")
EMITTED = set(re.findall(r'\("(\w+)", ', SERVICE_PY)) | set(re.findall(r'name="(\w+)"', SERVICE_PY))
ALARM_STATES = ("AlarmActions", "OKActions")


def of_type(resources, kind):
    return {name: r for name, r in resources.items() if r["Type"] == kind}


@pytest.fixture(scope="module")
def alarms(resources):
    return of_type(resources, "AWS::CloudWatch::Alarm")


def test_the_metric_names_are_read_from_the_code():
    assert {
        "PaymentsCreated",
        "HubSpotThrottled",
        "HubSpotAuthFailures",
        "HubSpotLatency",
        "BatchDuration",
        "LedgerWriteFailures",
        "HubSpotDailyLimitReached",
    } <= EMITTED


def test_the_alarms_the_runbook_promises_exist(alarms):
    watched = {(a["Properties"]["Namespace"], a["Properties"]["MetricName"]) for a in alarms.values()}
    assert watched == {
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),  # dead-letter queue not empty
        ("AWS/SQS", "NumberOfMessagesSent"),  # failure reports arriving
        ("AWS/SQS", "ApproximateAgeOfOldestMessage"),  # backlog
        ("PaymentsDrain", "HubSpotThrottled"),
        ("AWS/Lambda", "Errors"),
        ("PaymentsDrain", "HubSpotAuthFailures"),
        ("PaymentsDrain", "HubSpotDailyLimitReached"),
        ("PaymentsDrain", "LedgerWriteFailures"),
        ("PaymentsDrain", "LedgerUnavailable"),
        ("PaymentsDrain", "RateSlotsUnavailable"),
        ("PaymentsDrain", "UniquePropertyMissing"),
    }


def test_every_alarm_notifies_the_topic_says_what_to_do_and_treats_missing_data_deliberately(alarms):
    for name, alarm in alarms.items():
        properties = alarm["Properties"]
        for state in ALARM_STATES:
            assert properties[state] == [{"Ref": "AlarmTopic"}], name
        assert properties["TreatMissingData"] in {"notBreaching", "breaching", "ignore", "missing"}, name
        description = properties["AlarmDescription"]
        assert len(description) <= 1024, name
        section = re.search(r'Runbook: docs/operations\.md, "([^"]+)"', description)
        assert section, f"{name} does not name its runbook section"
        assert f"### {section.group(1)}" in RUNBOOK, f"docs/operations.md has no section {section.group(1)!r}"
        # The topic policy lets only <stack>-* alarms publish.
        assert properties["AlarmName"]["Fn::Sub"].startswith("${AWS::StackName}-"), name


def test_drain_metric_alarms_use_the_functions_namespace_and_service_dimension(alarms, function):
    variables = function["Environment"]["Variables"]
    for name, alarm in alarms.items():
        properties = alarm["Properties"]
        if properties["Namespace"] != "PaymentsDrain":
            continue
        assert properties["Namespace"] == variables["POWERTOOLS_METRICS_NAMESPACE"]
        assert properties["Dimensions"] == [
            {"Name": "service", "Value": variables["POWERTOOLS_SERVICE_NAME"]}
        ], name
        assert properties["MetricName"] in EMITTED, name


def test_throttling_alarm_needs_sustained_429s(alarms, parameters):
    properties = alarms["HubSpotThrottlingAlarm"]["Properties"]
    assert (
        properties["EvaluationPeriods"]
        == properties["DatapointsToAlarm"]
        == {"Ref": "ThrottlingAlarmPeriods"}
    )
    assert properties["Threshold"] == {"Ref": "ThrottlingAlarmThreshold"}
    assert int(parameters["ThrottlingAlarmPeriods"]["Default"]) >= 2
    auth = alarms["HubSpotAuthFailuresAlarm"]["Properties"]
    assert auth["EvaluationPeriods"] >= 2  # one 401 after a rotation heals itself: only persisting ones alarm


def test_queue_alarms_watch_the_right_queues(alarms):
    def queue(alarm):
        return alarms[alarm]["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0]

    assert queue("DeadLetterQueueAlarm") == "PaymentsDeadLetterQueue"
    assert queue("FailureReportsAlarm") == "FailureReportQueue"
    assert queue("OldestPaymentAgeAlarm") == "PaymentsQueue"
    assert alarms["FailureReportsAlarm"]["Properties"]["Threshold"] == {"Ref": "FailureReportsAlarmThreshold"}
    assert alarms["OldestPaymentAgeAlarm"]["Properties"]["Threshold"] == {
        "Ref": "OldestMessageAgeAlarmSeconds"
    }


# --- topic and key --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({}, {"Fn::GetAtt": ["AlarmTopicKey", "Arn"]}),
        (
            {"AlarmTopicKmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/abc"},
            "arn:aws:kms:us-east-1:123456789012:key/abc",
        ),
    ],
)
def test_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_use(resources, evaluator, overrides, key):
    ev = evaluator(**overrides)
    assert ev.value(resources["AlarmTopic"]["Properties"])["KmsMasterKeyId"] == key
    assert ev.condition(resources["AlarmTopicKey"]["Condition"]) is (not overrides)
    assert "alias/aws/sns" not in repr(resources["AlarmTopic"])  # CloudWatch cannot use the AWS managed key


def test_alarm_key_lets_cloudwatch_encrypt_and_nothing_else(resources):
    key = resources["AlarmTopicKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    statements = {s["Sid"]: s for s in key["KeyPolicy"]["Statement"]}
    assert set(statements) == {"AccountAdministersKey", "CloudWatchAlarmsPublish"}
    assert statements["CloudWatchAlarmsPublish"]["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert statements["CloudWatchAlarmsPublish"]["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    # KMS's default statement (the account's IAM policies administer the key) is the one wildcard action.
    assert statements["AccountAdministersKey"]["Principal"] == {
        "AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}
    }


def test_only_this_stacks_alarms_may_publish_to_the_topic(resources):
    [statement] = resources["AlarmTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert statement["Action"] == "sns:Publish"
    assert statement["Resource"] == {"Ref": "AlarmTopic"}
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert statement["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Sub"].endswith(
        ":alarm:${AWS::StackName}-*"
    )


@pytest.mark.parametrize(("email", "subscribed"), [("", False), ("ops@example.com", True)])
def test_email_subscription_only_when_an_address_is_given(
    resources, parameters, evaluator, email, subscribed
):
    subscription = resources["AlarmEmailSubscription"]
    assert evaluator(AlarmEmail=email).condition(subscription["Condition"]) is subscribed
    assert subscription["Properties"]["Protocol"] == "email"
    assert parameters["AlarmEmail"]["Default"] == ""
    assert re.fullmatch(parameters["AlarmEmail"]["AllowedPattern"], email)
    assert not re.fullmatch(parameters["AlarmEmail"]["AllowedPattern"], "not an address")


# --- dashboard ------------------------------------------------------------------------------------


def dashboard_body(resources, template):
    """The dashboard JSON with every ${...} replaced as CloudFormation would (placeholders for values)."""
    body, variables = resources["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    known = set(variables) | set(template["Parameters"]) | {"AWS::Region", "AWS::StackName"}
    names = set(re.findall(r"\$\{([^}!]+)\}", body))
    assert names <= known, f"undefined in the dashboard: {names - known}"
    defaults = {name: str(spec["Default"]) for name, spec in template["Parameters"].items()}
    text = re.sub(r"\$\{([^}!]+)\}", lambda m: defaults.get(m.group(1), f"<{m.group(1)}>"), body)
    return json.loads(text), variables


def test_dashboard_body_is_json_and_shows_what_the_runbook_describes(resources, template):
    body, variables = dashboard_body(resources, template)
    metrics = [
        tuple(m[:4]) + (m[4] if len(m) > 4 and isinstance(m[4], dict) else {},)
        for w in body["widgets"]
        if w["type"] == "metric"
        for m in w["properties"]["metrics"]
    ]
    drain = {m[1] for m in metrics if m[0] == "PaymentsDrain"}
    assert (
        {
            "PaymentsCreated",
            "PaymentsRejected",
            "PaymentsRetried",
            "PaymentsDuplicate",
            "HubSpotRequests",
            "HubSpotThrottled",
            "HubSpotLatency",
        }
        <= drain
        <= EMITTED
    )
    assert all(m[2:4] == ("service", "payments-drain") for m in metrics if m[0] == "PaymentsDrain")
    assert {m[4].get("stat") for m in metrics if m[1] == "HubSpotLatency"} == {"p50", "p99"}
    sqs = {(m[1], m[3]) for m in metrics if m[0] == "AWS/SQS"}
    assert {
        ("ApproximateNumberOfMessagesVisible", "<PaymentsQueueName>"),
        ("ApproximateAgeOfOldestMessage", "<PaymentsQueueName>"),
        ("ApproximateNumberOfMessagesVisible", "<DeadLetterQueueName>"),
        ("ApproximateNumberOfMessagesVisible", "<FailureReportQueueName>"),
    } <= sqs
    lambda_metrics = {m[1] for m in metrics if m[0] == "AWS/Lambda"}
    assert {"Errors", "Throttles", "Duration", "ConcurrentExecutions"} <= lambda_metrics
    assert all(m[2:4] == ("FunctionName", "<FunctionName>") for m in metrics if m[0] == "AWS/Lambda")
    assert variables["FunctionName"] == {"Ref": "DrainFunction"}
    assert variables["PaymentsQueueName"] == {"Fn::GetAtt": ["PaymentsQueue", "QueueName"]}
    [alarm_widget] = [w for w in body["widgets"] if w["type"] == "alarm"]
    assert len(alarm_widget["properties"]["alarms"]) == len(of_type(resources, "AWS::CloudWatch::Alarm"))


# --- saved queries --------------------------------------------------------------------------------


def test_saved_queries_run_on_the_functions_log_group_and_match_its_log_lines(resources):
    queries = {
        r["Properties"]["Name"]["Fn::Sub"]: r["Properties"]
        for r in of_type(resources, "AWS::Logs::QueryDefinition").values()
    }
    assert set(queries) >= {
        "${AWS::StackName}/follow-one-payment",
        "${AWS::StackName}/batch-summaries",
        "${AWS::StackName}/top-rejection-reasons",
    }
    for query in queries.values():
        assert query["LogGroupNames"] == [{"Ref": "DrainFunctionLogGroup"}]
    follow = queries["${AWS::StackName}/follow-one-payment"]["QueryString"]
    assert 'filter @message like "PUT-MESSAGE-ID-OR-PAYMENT-KEY-HERE"' in follow
    summaries = queries["${AWS::StackName}/batch-summaries"]["QueryString"]
    assert 'filter message = "batch summary"' in summaries and '"batch summary"' in SERVICE_PY
    rejections = queries["${AWS::StackName}/top-rejection-reasons"]["QueryString"]
    for text in ("payment rejected", "payment rejected by HubSpot"):
        assert f'"{text}"' in rejections and f'"{text}"' in DRAIN_PY
    for query in queries.values():  # one Logs Insights command per line
        commands = [line for line in query["QueryString"].splitlines() if line and not line.startswith("#")]
        assert all(line.startswith(("fields ", "filter ", "| ")) for line in commands), commands


def test_outputs_name_the_alarm_topic_and_the_dashboard(template):
    assert template["Outputs"]["AlarmTopicArn"]["Value"] == {"Ref": "AlarmTopic"}
    assert "${Dashboard}" in template["Outputs"]["DashboardUrl"]["Value"]["Fn::Sub"]
