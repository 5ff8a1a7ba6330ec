"""The template reader: SAM's translation, parameters, conditions, intrinsics, the function's settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from local.stack.template import (
    PhysicalResource,
    Template,
    TemplateError,
    _LogicalEcho,
    load_yaml,
    parse_overrides,
)

HERE = Path(__file__).resolve().parent
TOY = HERE / "template.yaml"
REPO = HERE.parents[1]


def physical_for(t: Template) -> dict[str, PhysicalResource]:
    out = {}
    for lid, res in t.resources.items():
        if res["Type"] == "AWS::SQS::Queue":
            out[lid] = PhysicalResource(
                f"http://q/{lid}", {"Arn": f"arn:aws:sqs:us-east-1:123456789012:{lid}", "QueueName": lid}
            )
        else:
            out[lid] = PhysicalResource(f"phys-{lid}", {"Arn": f"arn:{lid}"})
    return out


def test_short_form_tags_become_long_form():
    doc = load_yaml(
        "a: !Ref X\nb: !GetAtt Q.Arn\nc: !Sub '${A}-x'\nd: !If [C, 1, 2]\ne: !Join ['', [a, b]]\n"
    )
    assert doc == {
        "a": {"Ref": "X"},
        "b": {"Fn::GetAtt": ["Q", "Arn"]},
        "c": {"Fn::Sub": "${A}-x"},
        "d": {"Fn::If": ["C", 1, 2]},
        "e": {"Fn::Join": ["", ["a", "b"]]},
    }


def test_defaults_and_function_settings_from_the_toy_template():
    t = Template(TOY)
    f = t.function("DrainFunction", physical_for(t))
    assert f.handler == "app.ok"
    assert f.code_uri == (HERE / "toy").resolve()
    assert f.layer_dirs == ((HERE / "toy_layer").resolve(),)
    assert f.timeout == 10 and f.memory_size == 256 and f.runtime == "python3.13"  # Globals
    ev = f.sqs_event
    assert (
        ev.queue_logical_id,
        ev.batch_size,
        ev.maximum_batching_window_seconds,
        ev.maximum_concurrency,
    ) == ("PaymentsQueue", 10, 0, 2)
    assert ev.function_response_types == ("ReportBatchItemFailures",)
    env = f.environment
    assert env["POWERTOOLS_SERVICE_NAME"] == "toy-drain"  # merged from Globals
    assert env["HUBSPOT_TOKEN_SECRET_ID"] == "phys-HubSpotTokenSecret"
    assert env["HUBSPOT_MAX_PARALLEL_CALLS"] == "4"
    assert env["FAILURE_QUEUE_URL"] == "http://q/FailureReportQueue"
    assert env["LEDGER_TABLE_NAME"] == "phys-LedgerTable"
    assert env["QUEUE_INFO"] == "PaymentsQueue@us-east-1"
    assert env["JOINED"] == "a-123456789012"
    q = t.queue("PaymentsQueue")
    assert (q.visibility_timeout, q.max_receive_count, q.dead_letter_logical_id) == (
        30,
        5,
        "PaymentsDeadLetterQueue",
    )


def test_overrides_and_conditions():
    t = Template(
        TOY,
        {
            "EnableLedger": "false",
            "HubSpotRateLimitPer10s": "250",
            "BatchSize": "500",
            "ExistingTokenSecretArn": "arn:existing",
            "QueueVisibilityTimeoutSeconds": "7",
        },
    )
    assert t.conditions == {"LedgerEnabled": False, "CreateTokenSecret": False, "UseExistingSecret": True}
    assert not t.resource_enabled("LedgerTable") and not t.resource_enabled("HubSpotTokenSecret")
    f = t.function("DrainFunction", physical_for(t))
    assert f.environment["LEDGER_TABLE_NAME"] == ""
    assert f.environment["HUBSPOT_TOKEN_SECRET_ID"] == "arn:existing"
    assert f.sqs_event.maximum_concurrency == 4 and f.sqs_event.batch_size == 500
    assert t.queue("PaymentsQueue").visibility_timeout == 7


def test_sam_rules_come_from_the_translator():
    """SAM's event becomes an AWS::Lambda::EventSourceMapping; the role gets SAM's managed policies
    (the translator's bundled map, offline), the SQS one because of the event."""
    t = Template(TOY, {"HubSpotRateLimitPer10s": "190"})
    [esm] = [lid for lid, r in t.resources.items() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    assert esm == "DrainFunctionPaymentsQueueEvent"
    assert t.function("DrainFunction", physical_for(t)).sqs_event.name == esm
    role = t.resources["DrainFunctionRole"]["Properties"]
    assert role["ManagedPolicyArns"] == [
        f"arn:aws:iam::aws:policy/service-role/{name}"
        for name in ("AWSLambdaBasicExecutionRole", "AWSLambdaSQSQueueExecutionRole")
    ]


EXPLICIT_MAPPING = """
  PaymentsQueueMapping:
    Type: AWS::Lambda::EventSourceMapping
    Properties:
      FunctionName: !Ref DrainFunction
      EventSourceArn: !GetAtt PaymentsQueue.Arn
      BatchSize: 25
      MaximumBatchingWindowInSeconds: 3
      FunctionResponseTypes: [ReportBatchItemFailures]
      ScalingConfig: {MaximumConcurrency: 7}
"""


def test_an_explicit_event_source_mapping_is_found_as_well():
    text = TOY.read_text()
    events = text.index("      Events:")
    text = text[:events] + text[text.index("  SharedLayer:") :]  # no SAM event on the function
    text = text.replace("Resources:\n", "Resources:\n" + EXPLICIT_MAPPING.lstrip("\n") + "\n", 1)
    t = Template(TOY, text=text)
    ev = t.function("DrainFunction", physical_for(t)).sqs_event
    assert (ev.name, ev.queue_logical_id, ev.batch_size) == ("PaymentsQueueMapping", "PaymentsQueue", 25)
    assert (ev.maximum_batching_window_seconds, ev.maximum_concurrency) == (3, 7)
    assert ev.function_response_types == ("ReportBatchItemFailures",)


def test_what_sam_refuses_is_a_template_error():
    text = TOY.read_text().replace("            Queue: !GetAtt PaymentsQueue.Arn\n", "")
    with pytest.raises(TemplateError, match="DrainFunction.*Queue"):
        Template(TOY, text=text)


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"NoSuchParameter": "1"}, "unknown parameter"),
        ({"HubSpotRateLimitPer10s": "999"}, "not one of"),
        ({"BatchSize": "0"}, "below MinValue"),
        ({"BatchSize": "lots"}, "not a number"),
    ],
)
def test_bad_overrides_are_refused(overrides, message):
    with pytest.raises(TemplateError, match=message):
        Template(TOY, overrides)


def test_parse_overrides():
    assert parse_overrides(["A=1", "B=x=y C=3"]) == {"A": "1", "B": "x=y", "C": "3"}
    with pytest.raises(TemplateError):
        parse_overrides(["nope"])


def test_intrinsics():
    t = Template(
        TOY,
        text="""
Parameters: {P: {Type: String, Default: "a,b,c"}, L: {Type: CommaDelimitedList, Default: "x,y"}}
Conditions: {IsOne: !Equals [1, "1"], NotOne: !Not [!Condition IsOne], Both: !And [!Condition IsOne, !Condition NotOne], Any: !Or [!Condition IsOne, !Condition NotOne]}
Resources: {R: {Type: AWS::SNS::Topic, Properties: {
  A: !Select [1, !Split [",", !Ref P]], B: !Select [0, !Ref L], C: !Sub ["${X}-${AWS::Region}-${!Literal}", {X: !Ref P}],
  D: !If [NotOne, 1, !Ref "AWS::NoValue"], E: [1, !If [NotOne, 2, !Ref "AWS::NoValue"], 3], F: !Condition Any}}}
""",
    )
    props = t.properties("R")
    assert props == {"A": "b", "B": "x", "C": "a,b,c-us-east-1-${Literal}", "E": [1, 3], "F": True}
    assert t.conditions["Both"] is False


def test_settings_without_resources_name_them_by_logical_id():
    """What benchmarks read before anything exists: Refs are logical ids, GetAtts "Id.Attr"."""
    t = Template(TOY)
    f = t.function("DrainFunction", _LogicalEcho(t))
    assert f.environment["FAILURE_QUEUE_URL"] == "FailureReportQueue"
    assert f.environment["QUEUE_INFO"] == "PaymentsQueue.QueueName@us-east-1"
    assert f.sqs_event.queue_logical_id == "PaymentsQueue" and f.sqs_event.batch_size == 10


def test_outputs_are_what_describe_stacks_shows():
    t = Template(TOY)
    assert t.outputs(physical_for(t)) == {
        "FailureReportQueueUrl": "http://q/FailureReportQueue",
        "TokenSecret": "phys-HubSpotTokenSecret",
        "LedgerTableName": "phys-LedgerTable",
    }
    t = Template(TOY, {"EnableLedger": "false", "ExistingTokenSecretArn": "arn:existing"})
    assert t.outputs(physical_for(t)) == {  # an output whose condition is false is not there
        "FailureReportQueueUrl": "http://q/FailureReportQueue",
        "TokenSecret": "arn:existing",
    }


def test_unresolvable_refs_are_errors():
    t = Template(TOY)
    with pytest.raises(TemplateError, match="no physical value"):
        t.function("DrainFunction", {})


@pytest.mark.skipif(
    not (REPO / "template.yaml").exists(), reason="the project's template.yaml is not there yet"
)
def test_the_project_template_resolves():
    t = Template(REPO / "template.yaml", {"HubSpotBaseUrl": "http://127.0.0.1:9"})
    f = t.function("DrainFunction", physical_for(t))
    assert f.handler == "app.lambda_handler" and f.code_uri == (REPO / "functions/drain").resolve()
    assert f.layer_dirs == ((REPO / "layers/shared").resolve(),)
    assert f.sqs_event and f.sqs_event.queue_logical_id == "PaymentsQueue"
    assert f.sqs_event.maximum_concurrency and f.sqs_event.maximum_concurrency >= 2
    assert f.environment["HUBSPOT_BASE_URL"] == "http://127.0.0.1:9"
    assert f.environment["FAILURE_QUEUE_URL"] == "http://q/FailureReportQueue"
    q = t.queue("PaymentsQueue")
    assert q.dead_letter_logical_id == "PaymentsDeadLetterQueue" and q.max_receive_count


def test_the_project_template_deployed_on_another_stack_s_slots_table_uses_it():
    """ExistingRateSlotsTableName (docs/deploy.md, "Several stacks on one HubSpot app")."""
    own = Template(REPO / "template.yaml", {"HubSpotBaseUrl": "http://127.0.0.1:9"})
    assert own.resource_enabled("RateSlotsTable")
    assert own.outputs(physical_for(own))["RateSlotsTableName"] == "phys-RateSlotsTable"
    t = Template(
        REPO / "template.yaml",
        {"HubSpotBaseUrl": "http://127.0.0.1:9", "ExistingRateSlotsTableName": "payments-drain-slots"},
    )
    physical = physical_for(t)
    assert not t.resource_enabled("RateSlotsTable")
    assert (
        t.function("DrainFunction", physical).environment["RATE_SLOTS_TABLE_NAME"] == "payments-drain-slots"
    )
    assert t.outputs(physical)["RateSlotsTableName"] == "payments-drain-slots"
    with pytest.raises(TemplateError, match="ExistingRateSlotsTableName"):
        Template(REPO / "template.yaml", {"ExistingRateSlotsTableName": "no spaces"})
