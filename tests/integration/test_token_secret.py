"""A malformed token secret is a configuration error that names the secret and never shows its
value: not in an error, a log line, or the batch response (moto Secrets Manager, the sandbox)."""

import json
import uuid
from pathlib import Path

import boto3
import pytest
from payments_drain.adapters.hubspot import HubSpotClient
from payments_drain.adapters.token import SecretToken, TokenUnavailable

from local.hubspot_sandbox import SandboxConfig
from tests.twins import CANARY_TOKEN, LambdaContext, import_app, payment_body, sqs_record

ROOT = Path(__file__).resolve().parents[2]
WRITE = "crm.objects.commercepayments.write"
LEAKY = "pat-na1-LEAKY\nSECRET-7f3a"  # a token pasted with a line break in the middle
PARTS = ("LEAKY", "SECRET-7f3a")


def secret(value):
    client = boto3.client("secretsmanager")
    return client.create_secret(Name=f"tok-{uuid.uuid4().hex[:8]}", SecretString=value)["ARN"]


@pytest.mark.parametrize(
    "value",
    [
        LEAKY,
        json.dumps({"token": LEAKY}),
        "pat-na1 LEAKY SECRET-7f3a",
        "pat-na1-LEAKY\tSECRET-7f3a",
        "pat-na1-LEAKY-SECRET-7f3a\u00e9",
        "LEAKY\x00SECRET-7f3a",
    ],
)
def test_a_token_not_printable_ascii_without_whitespace_names_the_secret_not_its_value(aws_env, value):
    arn = secret(value)
    with pytest.raises(TokenUnavailable) as error:
        SecretToken(arn).get()
    assert arn in str(error.value)
    assert not any(part in str(error.value) for part in PARTS)


def test_the_http_layer_never_puts_a_header_value_in_an_answer_or_a_log(hubspot_sandbox, log_lines, capsys):
    """Even a token that slipped past the check: http.client refuses the header with its value in
    the exception text; the client answers without that text and logs only the error's type."""
    answer = HubSpotClient(hubspot_sandbox.base_url).write_batch([{"properties": {}}], LEAKY)
    assert answer.status is None and answer.error == "client"
    written = "\n".join(log_lines()) + capsys.readouterr().out + repr(answer)
    assert "ValueError" in written
    assert not any(part in written for part in PARTS)
    assert hubspot_sandbox.control.stats()["requests_total"] == 0


@pytest.fixture
def handler_with_leaky_secret(deploy, hubspot_sandbox_factory):
    sandbox = hubspot_sandbox_factory(
        SandboxConfig(tokens={CANARY_TOKEN: {"scopes": [WRITE]}}, unique_property="payments_drain_key")
    )  # the default
    _, environment = deploy(sandbox.base_url, hubspot_token=LEAKY, secret_format="bare")
    return import_app(ROOT / "functions/drain/app.py").lambda_handler, environment, sandbox


def test_a_line_break_in_the_secret_is_logged_as_a_configuration_error_naming_the_secret(
    handler_with_leaky_secret, log_lines, capsys
):
    handler, environment, sandbox = handler_with_leaky_secret
    event = {"Records": [sqs_record(payment_body(f"k{i}"), f"m{i}") for i in range(2)]}
    response = handler(event, LambdaContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": "m0"}, {"itemIdentifier": "m1"}]}
    lines = log_lines()
    written = "\n".join(lines) + capsys.readouterr().out + json.dumps(response)
    assert not any(part in written for part in PARTS)
    errors = [json.loads(line) for line in lines if '"ERROR"' in line]
    assert any(environment["HUBSPOT_TOKEN_SECRET_ID"] in json.dumps(e) for e in errors)
    assert sandbox.control.stats()["requests_total"] == 0  # nothing was sent with a broken header


def test_parallel_chunks_at_a_cold_start_read_the_secret_once(aws_env):
    """The drain's chunks call get() from several threads; with an empty cache each of them used to
    call GetSecretValue (a cold start with 4 parallel calls made 4 reads)."""
    import threading
    import time

    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    arn = secret("pat-na1-0123456789")
    client = boto3.client("secretsmanager")
    reads = []

    def slow_read(**_):  # the secret's round trip, long enough for every thread to meet the empty cache
        reads.append(1)
        time.sleep(0.2)

    client.meta.events.register("before-call.secrets-manager.GetSecretValue", slow_read)
    token = SecretToken(arn, provider=SecretsProvider(boto3_client=client))
    start = threading.Barrier(4)
    got = []

    def chunk():
        start.wait()
        got.append(token.get())

    threads = [threading.Thread(target=chunk) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert got == ["pat-na1-0123456789"] * 4
    assert len(reads) == 1


@pytest.fixture
def claiming_handler(deploy, hubspot_sandbox_factory):
    """The handler with the ledger claiming each payment before it is sent (no unique property)."""
    sandbox = hubspot_sandbox_factory(SandboxConfig(tokens={CANARY_TOKEN: {"scopes": [WRITE]}}))
    _, environment = deploy(sandbox.base_url, parameters={"HubSpotUniqueProperty": ""})
    return import_app(ROOT / "functions/drain/app.py"), environment, sandbox


def test_a_secret_that_cannot_be_read_retries_every_payment_naming_the_secret_and_the_error(
    claiming_handler, log_lines
):
    """GetSecretValue refused (the secret is gone): one error naming the secret and AWS's code,
    every payment retried (TOKEN_UNAVAILABLE), nothing sent to HubSpot, nothing reported."""
    app, environment, sandbox = claiming_handler
    secret_id = environment["HUBSPOT_TOKEN_SECRET_ID"]
    boto3.client("secretsmanager").delete_secret(SecretId=secret_id, ForceDeleteWithoutRecovery=True)
    event = {"Records": [sqs_record(payment_body(f"k{i}-{uuid.uuid4().hex[:6]}"), f"m{i}") for i in range(3)]}
    response = app.lambda_handler(event, LambdaContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": f"m{i}"} for i in range(3)]}
    lines = [json.loads(line) for line in log_lines()]
    errors = [line for line in lines if line["level"] == "ERROR"]
    assert [(e["message"], e["error"]) for e in errors] == [
        (
            "HubSpot token unavailable",
            f"cannot read the HubSpot token secret {secret_id} (ResourceNotFoundException)",
        )
    ]
    (summary,) = [line["summary"] for line in lines if line["message"] == "batch summary"]
    assert summary["retry"] == 3 and summary["hubspotRequests"] == 0
    assert sandbox.control.stats()["requests_total"] == 0
    assert not boto3.client("sqs").receive_message(QueueUrl=environment["FAILURE_QUEUE_URL"]).get("Messages")
