"""moto lifecycle; the template's resources in moto and DynamoDB Local (Refs, redrive, secret, TTL)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from local.stack.aws import MotoServer, boto3_client, create_resources
from local.stack.template import Template, TemplateError

TOY = Path(__file__).resolve().parent / "template.yaml"


def test_resources_and_physical_mapping(moto_server, dynamodb_endpoint):
    t = Template(TOY, {"MaxReceiveCount": "3", "QueueVisibilityTimeoutSeconds": "9"}, stack_name="awstest1")
    res = create_resources(
        t, moto_server.endpoint, dynamodb_endpoint=dynamodb_endpoint, hubspot_token="tok-1"
    )
    sqs = boto3_client("sqs", moto_server.endpoint, "us-east-1")
    phys = res.physical
    assert res.created.index("PaymentsDeadLetterQueue") < res.created.index("PaymentsQueue")  # redrive target
    assert phys["PaymentsQueue"].ref.startswith(moto_server.endpoint)
    attrs = sqs.get_queue_attributes(QueueUrl=phys["PaymentsQueue"].ref, AttributeNames=["All"])["Attributes"]
    assert attrs["VisibilityTimeout"] == "9"
    assert json.loads(attrs["RedrivePolicy"]) == {
        "deadLetterTargetArn": phys["PaymentsDeadLetterQueue"].attributes["Arn"],
        "maxReceiveCount": 3,
    }
    secrets = boto3_client("secretsmanager", moto_server.endpoint, "us-east-1")
    arn = phys["HubSpotTokenSecret"].ref
    assert arn.startswith("arn:aws:secretsmanager:")
    assert json.loads(secrets.get_secret_value(SecretId=arn)["SecretString"]) == {"token": "tok-1"}
    ddb = boto3_client("dynamodb", dynamodb_endpoint, "us-east-1")
    table = phys["LedgerTable"].ref
    ttl = ddb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expiresAt"}
    assert ddb.describe_table(TableName=table)["Table"]["KeySchema"] == [
        {"AttributeName": "paymentKey", "KeyType": "HASH"}
    ]
    env = t.function("DrainFunction", phys).environment
    assert env["FAILURE_QUEUE_URL"] == phys["FailureReportQueue"].ref
    assert env["LEDGER_TABLE_NAME"] == table and env["HUBSPOT_TOKEN_SECRET_ID"] == arn


def test_bare_secret_and_conditional_resources(moto_server, dynamodb_endpoint):
    t = Template(TOY, {"EnableLedger": "false"}, stack_name="awstest2")
    res = create_resources(
        t,
        moto_server.endpoint,
        dynamodb_endpoint=dynamodb_endpoint,
        hubspot_token="tok-2",
        secret_format="bare",
    )
    assert "LedgerTable" not in res.physical
    secrets = boto3_client("secretsmanager", moto_server.endpoint, "us-east-1")
    assert (
        secrets.get_secret_value(SecretId=res.physical["HubSpotTokenSecret"].ref)["SecretString"] == "tok-2"
    )
    assert t.function("DrainFunction", res.physical).environment["LEDGER_TABLE_NAME"] == ""


def test_a_resource_waiting_for_one_never_created_is_an_error(moto_server, dynamodb_endpoint):
    dlq = "  PaymentsDeadLetterQueue:\n    Type: AWS::SQS::Queue\n"
    text = TOY.read_text().replace(dlq, dlq + "    Condition: LedgerEnabled\n")
    t = Template(TOY, {"EnableLedger": "false"}, text=text, stack_name="awstest3")
    with pytest.raises(
        TemplateError, match="GetAtt PaymentsDeadLetterQueue.Arn: resource has no physical value"
    ):
        create_resources(t, moto_server.endpoint, dynamodb_endpoint=dynamodb_endpoint)


def test_moto_server_starts_on_a_free_port_and_stops_by_pid():
    with MotoServer() as a, MotoServer() as b:
        assert a.endpoint != b.endpoint and a.pid != b.pid
        pid = a.pid
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
