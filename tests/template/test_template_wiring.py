"""template.yaml wires what the code and the operators rely on."""

from __future__ import annotations

import json
import re
import tomllib

import pytest
from cfn_template import REPO_ROOT, load_template

# The environment the code reads (README, "Configuration"): name -> wiring.
EXPECTED_ENVIRONMENT = {
    "HUBSPOT_TOKEN_SECRET_ID": {
        "Fn::If": ["CreateTokenSecret", {"Ref": "HubSpotTokenSecret"}, {"Ref": "ExistingTokenSecretArn"}]
    },
    "HUBSPOT_BASE_URL": {"Ref": "HubSpotBaseUrl"},
    "HUBSPOT_API_VERSION": {"Ref": "HubSpotApiVersion"},
    "HUBSPOT_UNIQUE_PROPERTY": {"Ref": "HubSpotUniqueProperty"},
    "HUBSPOT_WRITE_MODE": {"Ref": "HubSpotWriteMode"},
    "HUBSPOT_RATE_LIMIT_PER_10S": {"Ref": "HubSpotRateLimitPer10s"},
    "HUBSPOT_MAX_PARALLEL_CALLS": {
        "Fn::FindInMap": ["RateLimitProfile", {"Ref": "HubSpotRateLimitPer10s"}, "MaxParallelCalls"]
    },
    "EVENT_SOURCE_MAX_CONCURRENCY": {
        "Fn::If": [
            "UseMappedConcurrency",
            {"Fn::FindInMap": ["RateLimitProfile", {"Ref": "HubSpotRateLimitPer10s"}, "MaximumConcurrency"]},
            {"Ref": "MaximumConcurrency"},
        ]
    },
    "FAILURE_QUEUE_URL": {"Ref": "FailureReportQueue"},
    "LEDGER_TABLE_NAME": {"Fn::If": ["LedgerEnabled", {"Ref": "LedgerTable"}, ""]},
    "RATE_SLOTS_TABLE_NAME": {
        "Fn::If": ["CreateRateSlotsTable", {"Ref": "RateSlotsTable"}, {"Ref": "ExistingRateSlotsTableName"}]
    },
    "TOKEN_CACHE_SECONDS": {"Ref": "TokenCacheSeconds"},
    "HUBSPOT_UNAVAILABLE_HOLD_SECONDS": {"Ref": "HubSpotUnavailableHoldSeconds"},
    "DAILY_LIMIT_HOLD_SECONDS": {"Ref": "DailyLimitHoldSeconds"},
    # The queue and its event source as the holds need them (holds.QueueTimes).
    "QUEUE_VISIBILITY_TIMEOUT_SECONDS": {"Ref": "QueueVisibilityTimeoutSeconds"},
    "QUEUE_RETENTION_SECONDS": {"Ref": "QueueRetentionSeconds"},
    "BATCHING_WINDOW_SECONDS": {"Ref": "BatchingWindowSeconds"},
    "MAX_RECEIVE_COUNT": {"Ref": "MaxReceiveCount"},
    "POWERTOOLS_SERVICE_NAME": "payments-drain",
    "POWERTOOLS_METRICS_NAMESPACE": "PaymentsDrain",
    "POWERTOOLS_LOG_LEVEL": {"Ref": "LogLevel"},
}
QUEUES = ("PaymentsQueue", "PaymentsDeadLetterQueue", "FailureReportQueue")
FOURTEEN_DAYS = 14 * 24 * 3600


def default(parameters, name):
    return int(parameters[name]["Default"])


# --- loader ---------------------------------------------------------------------------------------


def test_loader_turns_short_form_tags_into_long_form(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(
        "a: !Ref X\nb: !GetAtt Res.Attr\nc: !Sub 'x-${AWS::Region}'\nd: !If [C, !Ref Y, '']\n"
        "e: !FindInMap [M, !Ref K, V]\nf: !Not [!Equals [!Ref Z, '']]\ng: !Select [0, !GetAZs '']\n"
    )
    assert load_template(path) == {
        "a": {"Ref": "X"},
        "b": {"Fn::GetAtt": ["Res", "Attr"]},
        "c": {"Fn::Sub": "x-${AWS::Region}"},
        "d": {"Fn::If": ["C", {"Ref": "Y"}, ""]},
        "e": {"Fn::FindInMap": ["M", {"Ref": "K"}, "V"]},
        "f": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Z"}, ""]}]},
        "g": {"Fn::Select": [0, {"Fn::GetAZs": ""}]},
    }


def test_every_ref_names_a_parameter_resource_or_pseudo_parameter(template):
    known = set(template["Parameters"]) | set(template["Resources"])
    refs: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            if set(node) == {"Ref"}:
                refs.append(node["Ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(template["Resources"])
    walk(template["Outputs"])
    dangling = {ref for ref in refs if ref not in known and not ref.startswith("AWS::")}
    assert not dangling


# --- function and layer ---------------------------------------------------------------------------


def test_function_runs_python313_on_arm64_with_the_shared_layer(function, resources, parameters):
    assert function["Runtime"] == "python3.13"
    assert function["Architectures"] == ["arm64"]
    assert function["Handler"] == "app.lambda_handler"
    assert function["CodeUri"].rstrip("/") == "functions/drain"
    assert function["Tracing"] == "Active"
    assert function["Layers"] == [{"Ref": "SharedLayer"}]
    assert (
        function["MemorySize"] == {"Ref": "FunctionMemoryMB"}
        and default(parameters, "FunctionMemoryMB") == 512
    )
    assert function["Timeout"] == {"Ref": "FunctionTimeoutSeconds"}
    assert default(parameters, "FunctionTimeoutSeconds") == 60

    layer = resources["SharedLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Properties"]["ContentUri"].rstrip("/") == "layers/shared"
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert layer["Properties"]["RetentionPolicy"] == "Delete"
    assert layer["Metadata"] == {"BuildMethod": "python3.13", "BuildArchitecture": "arm64"}
    assert (REPO_ROOT / "layers/shared/requirements.txt").is_file()


def test_function_logs_to_its_own_log_group_with_retention(function, resources, parameters):
    assert function["LoggingConfig"]["LogGroup"] == {"Ref": "DrainFunctionLogGroup"}
    group = resources["DrainFunctionLogGroup"]
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert default(parameters, "LogRetentionDays") == 30
    assert 30 in parameters["LogRetentionDays"]["AllowedValues"]


def test_every_environment_variable_the_code_reads_is_set(function):
    assert function["Environment"]["Variables"] == EXPECTED_ENVIRONMENT


@pytest.mark.parametrize(
    ("overrides", "secret"),
    [
        ({}, {"Ref": "HubSpotTokenSecret"}),
        (
            {"ExistingTokenSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:hubspot-AbCdEf"},
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:hubspot-AbCdEf",
        ),
    ],
)
def test_token_secret_is_the_stacks_own_or_the_existing_one(
    function, resources, evaluator, overrides, secret
):
    ev = evaluator(**overrides)
    assert ev.value(function["Environment"]["Variables"]["HUBSPOT_TOKEN_SECRET_ID"]) == secret
    assert ev.condition(resources["HubSpotTokenSecret"]["Condition"]) is (not overrides)
    policy = next(p for p in function["Policies"] if "AWSSecretsManagerGetSecretValuePolicy" in p)
    assert ev.value(policy["AWSSecretsManagerGetSecretValuePolicy"]["SecretArn"]) == secret


def test_ledger_switch_blanks_the_table_name_and_removes_access(function, evaluator):
    on, off = evaluator(), evaluator(EnableLedger="false")
    variables = function["Environment"]["Variables"]
    assert on.value(variables["LEDGER_TABLE_NAME"]) == {"Ref": "LedgerTable"}
    assert off.value(variables["LEDGER_TABLE_NAME"]) == ""
    assert any("LedgerTable" in repr(p) for p in on.value(function["Policies"]))
    assert not any("LedgerTable" in repr(p) for p in off.value(function["Policies"]))


# --- event source ---------------------------------------------------------------------------------


def test_partial_batch_responses_are_on(queue_event):
    assert queue_event["Type"] == "AWS::Lambda::EventSourceMapping"
    properties = queue_event["Properties"]
    assert properties["EventSourceArn"] == {"Fn::GetAtt": ["PaymentsQueue", "Arn"]}
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_batching_parameters_are_wired_with_their_defaults(queue_event, parameters):
    properties = queue_event["Properties"]
    assert properties["BatchSize"] == {"Ref": "BatchSize"}
    assert properties["MaximumBatchingWindowInSeconds"] == {"Ref": "BatchingWindowSeconds"}
    assert default(parameters, "BatchSize") == 1000
    assert default(parameters, "BatchingWindowSeconds") == 5
    # Lambda refuses a standard-queue batch above 10 without a batching window of at least 1 s.
    assert default(parameters, "BatchSize") <= 10 or default(parameters, "BatchingWindowSeconds") >= 1
    assert int(parameters["BatchSize"]["MaxValue"]) <= 10000


@pytest.mark.parametrize(
    ("limit", "concurrency", "parallel"),
    [
        (100, 2, "3"),
        (110, 2, "3"),
        (190, 3, "4"),
        (250, 4, "4"),
    ],
)
def test_rate_limit_picks_concurrency_and_parallel_calls(
    queue_event, function, evaluator, limit, concurrency, parallel
):
    ev = evaluator(HubSpotRateLimitPer10s=limit)
    assert ev.value(queue_event["Properties"]["ScalingConfig"]["MaximumConcurrency"]) == concurrency
    variables = ev.value(function["Environment"]["Variables"])
    assert variables["HUBSPOT_MAX_PARALLEL_CALLS"] == parallel
    assert variables["HUBSPOT_RATE_LIMIT_PER_10S"] == limit
    assert variables["EVENT_SOURCE_MAX_CONCURRENCY"] == concurrency  # the gate's reserve sees every container


SLOW_CALL_S = 0.3  # HubSpot's batch calls take ~0.15-0.3 s (docs/deploy.md, "The rate-limit arithmetic")


def test_rate_limit_mapping_covers_every_allowed_value_and_feeds_the_timeline_with_headroom(
    template, parameters
):
    """The template's derivation (comment above Mappings): C x P calls in flight at 0.3 s per call
    must start more requests per second than the timeline's slots allow (1 per spacing), with
    headroom (a batch's last round runs fewer than P calls; a container idles between batches),
    and not much more: past that, containers only contend for the slots item."""
    from payments_drain.adapters.rate_slots import DynamoRateSlots

    allowed = {str(v) for v in parameters["HubSpotRateLimitPer10s"]["AllowedValues"]}
    assert allowed == {"100", "110", "190", "250"}
    assert str(parameters["HubSpotRateLimitPer10s"]["Default"]) == "190"
    profile = template["Mappings"]["RateLimitProfile"]
    assert set(profile) == allowed
    for limit, row in profile.items():
        concurrency, parallel = int(row["MaximumConcurrency"]), int(row["MaxParallelCalls"])
        assert 2 <= concurrency <= 1000  # the event source's MaximumConcurrency range
        assert isinstance(row["MaxParallelCalls"], str)  # environment values are strings
        slots_per_s = 1000 / DynamoRateSlots("t", int(limit), client=object()).spacing_ms
        headroom = concurrency * parallel / SLOW_CALL_S / slots_per_s
        assert 1.5 <= headroom <= 3, (limit, headroom)


def test_explicit_maximum_concurrency_overrides_the_mapping(queue_event, evaluator, parameters):
    assert parameters["MaximumConcurrency"]["Default"] == "0"
    ev = evaluator(MaximumConcurrency="7")
    assert ev.value(queue_event["Properties"]["ScalingConfig"]["MaximumConcurrency"]) == "7"


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("0", True),
        ("2", True),
        ("10", True),
        ("999", True),
        ("1000", True),
        ("1", False),
        ("1001", False),
        ("01", False),
        ("-3", False),
        ("", False),
    ],
)
def test_maximum_concurrency_accepts_only_zero_or_what_lambda_accepts(parameters, value, accepted):
    assert bool(re.fullmatch(parameters["MaximumConcurrency"]["AllowedPattern"], value)) is accepted


# --- queues ---------------------------------------------------------------------------------------


def test_visibility_timeout_covers_six_function_timeouts_plus_the_window(resources, parameters):
    queue = resources["PaymentsQueue"]["Properties"]
    assert queue["VisibilityTimeout"] == {"Ref": "QueueVisibilityTimeoutSeconds"}
    visibility = default(parameters, "QueueVisibilityTimeoutSeconds")
    needed = 6 * default(parameters, "FunctionTimeoutSeconds") + default(parameters, "BatchingWindowSeconds")
    assert visibility >= needed
    assert visibility == 370
    assert "6 x" in parameters["QueueVisibilityTimeoutSeconds"]["Description"]


def test_dead_letter_queue_is_wired_after_at_least_five_receives(resources, parameters):
    queue = resources["PaymentsQueue"]["Properties"]
    redrive = queue["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["PaymentsDeadLetterQueue", "Arn"]}
    assert redrive["maxReceiveCount"] == {"Ref": "MaxReceiveCount"}
    assert default(parameters, "MaxReceiveCount") >= 5
    # SQS's most (docs/limits.md): a hold never outlives it; the function knows it to report first.
    assert queue["MessageRetentionPeriod"] == {"Ref": "QueueRetentionSeconds"}
    assert default(parameters, "QueueRetentionSeconds") == FOURTEEN_DAYS

    dlq = resources["PaymentsDeadLetterQueue"]["Properties"]
    assert dlq["MessageRetentionPeriod"] == FOURTEEN_DAYS
    # Only the payments queue may use it: its ARN is built from the payments queue's fixed name.
    allow = dlq["RedriveAllowPolicy"]
    assert allow["redrivePermission"] == "byQueue"
    assert queue["QueueName"] == {"Fn::Sub": "${AWS::StackName}-payments"}
    assert allow["sourceQueueArns"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:${AWS::StackName}-payments"}
    ]
    assert resources["FailureReportQueue"]["Properties"]["MessageRetentionPeriod"] == FOURTEEN_DAYS


@pytest.mark.parametrize(
    "kms_key", ["", "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"]
)
@pytest.mark.parametrize("queue", QUEUES)
def test_queues_are_encrypted_with_or_without_a_customer_key(resources, evaluate, queue, kms_key):
    properties = evaluate(resources[queue]["Properties"], QueueKmsKeyArn=kms_key)
    if kms_key:
        assert properties["KmsMasterKeyId"] == kms_key
        assert "SqsManagedSseEnabled" not in properties
    else:
        assert properties["SqsManagedSseEnabled"] is True
        assert "KmsMasterKeyId" not in properties


# --- secret and ledger ----------------------------------------------------------------------------


def test_token_secret_is_generated_not_literal(resources, evaluate):
    secret = resources["HubSpotTokenSecret"]
    assert secret["Type"] == "AWS::SecretsManager::Secret"
    assert secret["Condition"] == "CreateTokenSecret"
    properties = secret["Properties"]
    assert "SecretString" not in properties
    assert "GenerateSecretString" in properties
    assert "crm.objects.commercepayments.write" in properties["Description"]
    assert "KmsKeyId" not in evaluate(properties)
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    assert evaluate(properties, SecretKmsKeyArn=key)["KmsKeyId"] == key


def test_ledger_table_has_ttl_sse_pitr_and_on_demand_billing(resources):
    table = resources["LedgerTable"]
    assert table["Type"] == "AWS::DynamoDB::Table"
    properties = table["Properties"]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["KeySchema"] == [{"AttributeName": "paymentKey", "KeyType": "HASH"}]
    assert properties["AttributeDefinitions"] == [{"AttributeName": "paymentKey", "AttributeType": "S"}]
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    assert properties["SSESpecification"]["SSEEnabled"] is True
    assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["DeletionPolicy"] == "Retain" and table["UpdateReplacePolicy"] == "Retain"


# --- policies -------------------------------------------------------------------------------------


def _statements(policies):
    for policy in policies:
        if isinstance(policy, dict) and "Statement" in policy:
            yield from policy["Statement"]


def test_policy_templates_name_one_resource_each(function):
    templates = {
        name: args
        for p in function["Policies"]
        if isinstance(p, dict)
        for name, args in p.items()
        if name.endswith("Policy")
    }
    assert templates == {
        "AWSSecretsManagerGetSecretValuePolicy": {
            "SecretArn": EXPECTED_ENVIRONMENT["HUBSPOT_TOKEN_SECRET_ID"]
        },
    }


def test_failure_reports_may_be_sent_to_the_report_queue_only_and_retries_held_on_the_payments_queue(
    function, evaluate
):
    # Not SAM's SQSSendMessagePolicy, whose action is the wildcard sqs:SendMessage*.
    statements = [
        s
        for s in _statements(evaluate(function["Policies"]))
        if any(a.startswith("sqs:") for a in s["Action"])
    ]
    assert statements == [
        {
            "Sid": "SendFailureReports",
            "Effect": "Allow",
            "Action": ["sqs:SendMessage"],
            "Resource": {"Fn::GetAtt": ["FailureReportQueue", "Arn"]},
        },
        {
            "Sid": "DrainPaymentsQueue",
            "Effect": "Allow",
            "Action": [
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                "sqs:ChangeMessageVisibility",
            ],
            "Resource": {"Fn::GetAtt": ["PaymentsQueue", "Arn"]},
        },
    ]


def test_the_poller_may_receive_and_delete_on_the_payments_queue_only(resources, function):
    # SAM's SQS event would attach AWSLambdaSQSQueueExecutionRole: receive and delete on any queue.
    assert "Events" not in function
    assert "AWSLambdaSQSQueueExecutionRole" not in json.dumps(resources)
    mapping = resources["PaymentsQueueEventSource"]
    assert mapping["Type"] == "AWS::Lambda::EventSourceMapping"
    assert mapping["Properties"]["EventSourceArn"] == {"Fn::GetAtt": ["PaymentsQueue", "Arn"]}
    assert mapping["Properties"]["FunctionName"] == {"Ref": "DrainFunction"}


def test_ledger_statement_allows_exactly_what_the_ledger_does_on_the_table(function, evaluate):
    statements = list(_statements(evaluate(function["Policies"])))
    ledger = [s for s in statements if s["Resource"] == {"Fn::GetAtt": ["LedgerTable", "Arn"]}]
    assert len(ledger) == 1
    assert sorted(ledger[0]["Action"]) == [
        "dynamodb:BatchGetItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:PartiQLDelete",
        "dynamodb:PartiQLInsert",
        "dynamodb:PutItem",
    ]
    assert ledger[0]["Resource"] == {"Fn::GetAtt": ["LedgerTable", "Arn"]}
    assert ledger[0]["Effect"] == "Allow"


EXISTING_SLOTS_ARN = {
    "Fn::Sub": "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${ExistingRateSlotsTableName}"
}


@pytest.mark.parametrize(
    ("overrides", "table"),
    [
        ({}, {"Fn::GetAtt": ["RateSlotsTable", "Arn"]}),
        ({"EnableLedger": "false"}, {"Fn::GetAtt": ["RateSlotsTable", "Arn"]}),
        ({"ExistingRateSlotsTableName": "payments-drain-RateSlotsTable-6F5E4D3C2B1A"}, EXISTING_SLOTS_ARN),
    ],
)
def test_rate_slots_statement_allows_reading_and_updating_its_one_table_whatever_the_ledger(
    function, evaluate, overrides, table
):
    statements = list(_statements(evaluate(function["Policies"], **overrides)))
    [slots] = [s for s in statements if s["Sid"] == "ShareRateLimitSlots"]
    assert slots["Resource"] == table
    assert slots["Action"] == ["dynamodb:GetItem", "dynamodb:UpdateItem"] and slots["Effect"] == "Allow"
    assert not [s for s in statements if s is not slots and "RateSlotsTable" in repr(s)]


@pytest.mark.parametrize("existing", ["", "payments-drain-RateSlotsTable-6F5E4D3C2B1A"])
def test_a_stack_uses_its_own_slots_table_or_the_existing_one_it_is_given(
    template, resources, function, evaluator, existing
):
    """ExistingRateSlotsTableName: several stacks on one HubSpot app share one budget (docs/deploy.md)."""
    ev = evaluator(ExistingRateSlotsTableName=existing)
    assert resources["RateSlotsTable"]["Condition"] == "CreateRateSlotsTable"
    assert ev.condition("CreateRateSlotsTable") is (existing == "")
    own = {"Ref": "RateSlotsTable"}
    used = ev.value(function["Environment"]["Variables"]["RATE_SLOTS_TABLE_NAME"])
    assert used == (existing or own)
    assert ev.value(template["Outputs"]["RateSlotsTableName"]["Value"]) == used


@pytest.mark.parametrize(
    "name",
    ["", "payments-drain-RateSlotsTable-6F5E4D3C2B1A", "slots.v2_x", "ab", "a" * 256, "slots table", "a/b"],
)
def test_the_existing_slots_table_parameter_accepts_what_the_code_accepts(parameters, name):
    from payments_drain.orchestration.config import ConfigurationError, load_settings

    environ = {
        "HUBSPOT_TOKEN_SECRET_ID": "s",
        "FAILURE_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/reports",
        "LEDGER_TABLE_NAME": "",
    }
    try:
        load_settings({**environ, "RATE_SLOTS_TABLE_NAME": name})
        code_accepts = True
    except ConfigurationError as error:
        assert "RATE_SLOTS_TABLE_NAME" in str(error)
        code_accepts = False
    pattern = parameters["ExistingRateSlotsTableName"]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, name)) is code_accepts


def test_kms_statements_exist_only_for_the_keys_that_are_set(function, evaluate):
    secret_key = "arn:aws:kms:us-east-1:123456789012:key/aaaaaaaa-1111-2222-3333-444444444444"
    queue_key = "arn:aws:kms:us-east-1:123456789012:key/bbbbbbbb-1111-2222-3333-444444444444"

    def kms(**overrides):
        return [
            s
            for s in _statements(evaluate(function["Policies"], **overrides))
            if any(a.startswith("kms:") for a in s["Action"])
        ]

    assert kms() == []
    [only_secret] = kms(SecretKmsKeyArn=secret_key)
    assert only_secret["Resource"] == secret_key and only_secret["Action"] == ["kms:Decrypt"]
    [only_queue] = kms(QueueKmsKeyArn=queue_key)
    assert only_queue["Resource"] == queue_key
    assert sorted(only_queue["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert len(kms(SecretKmsKeyArn=secret_key, QueueKmsKeyArn=queue_key)) == 2


def test_inline_statements_have_no_wildcards(function, evaluate):
    overrides = {
        "SecretKmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/k1",
        "QueueKmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/k2",
    }
    statements = list(_statements(evaluate(function["Policies"], **overrides)))
    assert len(statements) == 6
    for statement in statements:
        assert statement["Effect"] == "Allow"
        assert all("*" not in action for action in statement["Action"])
        assert "*" not in repr(statement["Resource"])


# --- outputs and parameters -----------------------------------------------------------------------


def test_outputs_give_operators_every_url_and_arn(template):
    outputs = template["Outputs"]
    expected = {
        "PaymentsQueueUrl": {"Ref": "PaymentsQueue"},
        "PaymentsQueueArn": {"Fn::GetAtt": ["PaymentsQueue", "Arn"]},
        "PaymentsDeadLetterQueueUrl": {"Ref": "PaymentsDeadLetterQueue"},
        "PaymentsDeadLetterQueueArn": {"Fn::GetAtt": ["PaymentsDeadLetterQueue", "Arn"]},
        "FailureReportQueueUrl": {"Ref": "FailureReportQueue"},
        "FailureReportQueueArn": {"Fn::GetAtt": ["FailureReportQueue", "Arn"]},
        "DrainFunctionName": {"Ref": "DrainFunction"},
        "DrainFunctionArn": {"Fn::GetAtt": ["DrainFunction", "Arn"]},
        "LedgerTableName": {"Ref": "LedgerTable"},
        "RateSlotsTableName": EXPECTED_ENVIRONMENT["RATE_SLOTS_TABLE_NAME"],
        "HubSpotTokenSecretArn": EXPECTED_ENVIRONMENT["HUBSPOT_TOKEN_SECRET_ID"],
    }
    for name, value in expected.items():
        assert outputs[name]["Value"] == value, name
        assert outputs[name].get("Description")


def test_hubspot_parameters_have_the_documented_defaults(parameters):
    assert parameters["HubSpotBaseUrl"]["Default"] == "https://api.hubapi.com"
    assert parameters["HubSpotApiVersion"]["AllowedValues"] == ["2026-09", "v3"]
    assert parameters["HubSpotApiVersion"]["Default"] == "2026-09"  # the current date version
    assert parameters["HubSpotUniqueProperty"]["Default"] == "payments_drain_key"  # empty opts out
    assert parameters["ExistingTokenSecretArn"]["Default"] == ""
    assert default(parameters, "TokenCacheSeconds") == 300
    assert parameters["LogLevel"]["Default"] == "INFO"
    assert parameters["EnableLedger"]["Default"] == "true"
    for name, spec in parameters.items():
        assert spec.get("Description"), f"parameter {name} has no description"
        if "Default" in spec and "AllowedPattern" in spec:
            assert re.fullmatch(spec["AllowedPattern"], str(spec["Default"])), name
        if "Default" in spec and "AllowedValues" in spec:
            assert str(spec["Default"]) in {str(v) for v in spec["AllowedValues"]}, name


def test_the_codes_default_api_version_is_the_templates(parameters):
    from payments_drain.orchestration.config import Settings

    assert Settings.model_fields["HUBSPOT_API_VERSION"].default == parameters["HubSpotApiVersion"]["Default"]


def test_every_parameter_is_documented_in_the_configuration_page(parameters):
    # Its default too: tests/tools/test_docs_vs_code.py.
    docs = (REPO_ROOT / "docs/configuration.md").read_text(encoding="utf-8")
    missing = [name for name in parameters if f"| `{name}` |" not in docs]
    assert not missing


# --- samconfig ------------------------------------------------------------------------------------


def test_samconfig_deploys_builds_and_validates_as_agreed():
    config = tomllib.loads((REPO_ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    assert config["version"] == 0.1
    deploy = config["default"]["deploy"]["parameters"]
    assert deploy["stack_name"] == "payments-drain"
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert deploy["resolve_s3"] is True
    assert deploy["confirm_changeset"] is True
    build = config["default"]["build"]["parameters"]
    assert build["cached"] is True and build["parallel"] is True
    # No validate section: a plain `sam validate` runs SAM's own checks, `make validate` adds --lint.
    assert "validate" not in config["default"]


# --- the environment against the code's own settings model -----------------------------------------

DEPLOYED = {  # what CloudFormation gives the symbolic references at deploy time
    "HubSpotTokenSecret": "arn:aws:secretsmanager:us-east-1:123456789012:secret:HubSpotTokenSecret-AbCdEf",
    "FailureReportQueue": "https://sqs.us-east-1.amazonaws.com/123456789012/payments-drain-FailureReportQueue-X1",
    "LedgerTable": "payments-drain-LedgerTable-1A2B3C4D5E6F",
    "RateSlotsTable": "payments-drain-RateSlotsTable-6F5E4D3C2B1A",
}


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {
            "EnableLedger": "false",
            "HubSpotRateLimitPer10s": 100,
            "HubSpotApiVersion": "v3",
            "HubSpotUniqueProperty": "payment_key",
        },
    ],
)
def test_deployed_environment_passes_the_codes_settings_model(function, evaluate, overrides):
    from payments_drain.orchestration.config import Settings, load_settings

    variables = evaluate(function["Environment"]["Variables"], **overrides)
    environ = {
        name: DEPLOYED[value["Ref"]] if isinstance(value, dict) else str(value)
        for name, value in variables.items()
    }
    settings = load_settings(environ)
    assert settings.ledger_enabled is (overrides.get("EnableLedger", "true") == "true")
    required = {name for name, field in Settings.model_fields.items() if field.is_required()}
    assert required <= set(environ)
    unknown = {name for name in environ if not name.startswith("POWERTOOLS_")} - set(Settings.model_fields)
    assert not unknown, f"the template sets variables the code does not read: {unknown}"


@pytest.mark.parametrize(
    ("url", "accepted"),
    [
        ("https://api.hubapi.com", True),
        ("https://proxy.example.com/hubspot", True),
        ("http://api.hubapi.com", False),
        ("https://api.hubapi.com?x=1", False),
        ("", False),
        ("http://127.0.0.1:8080", True),
        ("http://localhost:1/x", True),
        ("http://127.0.0.1.evil.example", False),
        ("http://10.0.0.1:80", False),
    ],
)
def test_base_url_parameter_accepts_only_https_or_loopback(parameters, url, accepted):
    assert bool(re.fullmatch(parameters["HubSpotBaseUrl"]["AllowedPattern"], url)) is accepted


def test_upsert_mode_cannot_be_deployed_without_the_unique_property(template):
    rule = template["Rules"]["UpsertNeedsTheUniqueProperty"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "HubSpotWriteMode"}, "upsert"]}
    assert rule["Assertions"][0]["Assert"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "HubSpotUniqueProperty"}, ""]}]
    }


# --- the reconcile function -----------------------------------------------------------------------


@pytest.mark.parametrize("ledger", ["true", "false"])
def test_reconcile_function_reads_hubspot_and_the_ledger_with_the_drains_settings_and_nothing_more(
    template, resources, function, evaluate, ledger
):
    from payments_drain.orchestration.config import load_settings

    reconcile = resources["ReconcileFunction"]["Properties"]
    assert reconcile["Handler"] == "app.lambda_handler" and reconcile["CodeUri"] == "functions/reconcile/"
    assert (REPO_ROOT / "functions/reconcile/app.py").is_file()
    assert reconcile["Layers"] == function["Layers"] and reconcile["Runtime"] == function["Runtime"]
    assert reconcile["LoggingConfig"] == {"LogGroup": {"Ref": "ReconcileFunctionLogGroup"}}
    variables = reconcile["Environment"]["Variables"]
    for name in (
        "HUBSPOT_TOKEN_SECRET_ID",
        "HUBSPOT_BASE_URL",
        "HUBSPOT_API_VERSION",
        "HUBSPOT_UNIQUE_PROPERTY",
    ):
        assert variables[name] == EXPECTED_ENVIRONMENT[name], name  # the drain's HubSpot, the same secret
    assert variables["LEDGER_TABLE_NAME"] == EXPECTED_ENVIRONMENT["LEDGER_TABLE_NAME"]
    environ = {
        name: DEPLOYED[value["Ref"]] if isinstance(value, dict) else str(value)
        for name, value in evaluate(variables, EnableLedger=ledger).items()
    }
    assert load_settings(environ).ledger_enabled is (ledger == "true")
    policies = evaluate(reconcile["Policies"], EnableLedger=ledger)
    statements = list(_statements(policies))
    if ledger == "true":
        [read] = statements
        assert sorted(read["Action"]) == ["dynamodb:BatchGetItem", "dynamodb:Scan"]  # reads only
        assert read["Resource"] == {"Fn::GetAtt": ["LedgerTable", "Arn"]}
    else:
        assert statements == []
    templates = [p for p in policies if isinstance(p, dict) and "Statement" not in p]
    assert templates == [
        {"AWSSecretsManagerGetSecretValuePolicy": {"SecretArn": {"Ref": "HubSpotTokenSecret"}}}
    ]
    assert template["Outputs"]["ReconcileFunctionName"]["Value"] == {"Ref": "ReconcileFunction"}
