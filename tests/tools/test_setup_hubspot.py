"""setup_hubspot against the sandbox over loopback HTTP (and the token secret on moto): what it finds,
creates and reports, that a second run creates nothing, and what a token without a scope gets told."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import boto3
import pytest
from payments_drain.adapters.hubspot import HubSpotClient
from payments_drain.core.messages import parse_record
from payments_drain.tools.setup_hubspot import main

from local.hubspot_sandbox import (
    ALL_SCOPES,
    SCHEMA_READ_SCOPE,
    SCHEMA_WRITE_SCOPE,
    WRITE_SCOPE,
    SandboxControl,
)
from tests.twins import CANARY_TOKEN, payment_body, sqs_record

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sandbox(hubspot_sandbox, monkeypatch):
    hubspot_sandbox.control.set_config(tokens={CANARY_TOKEN: {"scopes": list(ALL_SCOPES)}})
    monkeypatch.setenv("HUBSPOT_TOKEN", CANARY_TOKEN)
    monkeypatch.setenv("HUBSPOT_BASE_URL", hubspot_sandbox.base_url)
    monkeypatch.delenv("HUBSPOT_UNIQUE_PROPERTY", raising=False)
    monkeypatch.delenv("HUBSPOT_TOKEN_SECRET_ID", raising=False)
    return hubspot_sandbox


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    assert CANARY_TOKEN not in out.out + out.err
    return code, out.out.splitlines(), out.err.splitlines()


def read_property(sandbox, name="payments_drain_key"):
    request = urllib.request.Request(
        f"{sandbox.base_url}/crm/v3/properties/commerce_payments/{name}",
        headers={"Authorization": f"Bearer {CANARY_TOKEN}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback sandbox
        return json.loads(response.read())


def test_first_run_creates_the_group_and_the_unique_property_and_the_second_finds_them(sandbox, capsys):
    code, lines, err = run(capsys)
    assert code == 0 and err == []
    assert lines[1:] == [
        "token: a legacy private app's; its scopes from HubSpot's token-info route",
        "scope crm.objects.commercepayments.write: granted",
        "scope crm.schemas.commercepayments.write: granted",
        "group payments_drain: created",
        "property payments_drain_key: created (unique values, type string, group payments_drain)",
        "ready: deploy with HubSpotUniqueProperty=payments_drain_key (HUBSPOT_UNIQUE_PROPERTY)",
    ]
    created = read_property(sandbox)
    assert (
        created["hasUniqueValue"] is True
        and created["type"] == "string"
        and created["groupName"] == "payments_drain"
    )

    code, lines, _ = run(capsys)
    assert code == 0
    assert "group payments_drain: found" in lines
    assert "property payments_drain_key: found (unique values, type string, group payments_drain)" in lines
    assert not [line for line in lines if "created" in line]
    assert read_property(sandbox) == created  # the same definition, not made again


def test_the_property_it_creates_makes_hubspot_refuse_a_second_payment_with_the_same_key(sandbox, capsys):
    assert run(capsys, "--property", "order_key", "--group", "drain")[0] == 0
    client = HubSpotClient(sandbox.base_url)
    first, second = (parse_record(sqs_record(payment_body("ch_1"), m), "order_key") for m in ("m-1", "m-2"))
    assert client.write_batch([first.hubspot_input()], CANARY_TOKEN).status == 201
    answer = client.write_batch([second.hubspot_input()], CANARY_TOKEN)
    assert answer.status == 207 and answer.body["errors"][0]["category"] == "CONFLICT"


def test_a_token_without_the_drains_scope_is_told_which_scope_is_missing(sandbox, capsys):
    sandbox.control.set_config(tokens={CANARY_TOKEN: {"scopes": [SCHEMA_READ_SCOPE, SCHEMA_WRITE_SCOPE]}})
    code, lines, _ = run(capsys)
    assert code == 1
    assert "scope crm.objects.commercepayments.write: MISSING (the drain needs it)" in lines
    assert lines[-1].startswith("not ready: the token lacks a scope the drain needs")
    assert read_property(sandbox)["hasUniqueValue"] is True  # what it could do, it did


def test_a_token_that_cannot_create_properties_stops_naming_the_scope_hubspot_wants(sandbox, capsys):
    sandbox.control.set_config(
        tokens={CANARY_TOKEN: {"scopes": [WRITE_SCOPE, SCHEMA_READ_SCOPE], "private_app": False}}
    )
    code, lines, _ = run(capsys)
    assert code == 1
    assert lines[1].startswith("token: a service key or an app's static token (the private-app token-info")
    assert lines[2].startswith(
        "scope crm.objects.commercepayments.write: granted (HubSpot let a batch/create"
    )
    assert lines[-1] == (
        "stopped: creating the property group: HubSpot answered 403, missing scope "
        "crm.schemas.commercepayments.write"
    )


def test_a_token_the_info_route_does_not_know_is_checked_by_the_calls_themselves(sandbox, capsys):
    sandbox.control.set_config(tokens={CANARY_TOKEN: {"scopes": list(ALL_SCOPES), "private_app": False}})
    code, lines, _ = run(capsys)
    assert code == 0 and lines[-1].startswith("ready:")


SERVICE_KEY = "pat-na1-5f0c1e2d-0000-4000-8000-service0key1"  # the shape HubSpot's service keys page shows


def test_a_service_key_is_accepted_its_write_scope_checked_by_a_call_that_writes_nothing(
    sandbox, capsys, monkeypatch
):
    sandbox.control.set_config(tokens={SERVICE_KEY: {"scopes": list(ALL_SCOPES), "kind": "service_key"}})
    monkeypatch.setenv("HUBSPOT_TOKEN", SERVICE_KEY)
    code = main([])
    out = capsys.readouterr()
    assert SERVICE_KEY not in out.out + out.err
    lines = out.out.splitlines()
    assert code == 0 and lines[1:3] == [
        "token: a service key or an app's static token (the private-app token-info route answered 400); "
        "its scopes are checked by a call that writes nothing",
        "scope crm.objects.commercepayments.write: granted (HubSpot let a batch/create with no inputs past "
        "its scope check)",
    ]
    assert (
        lines[-1] == "ready: deploy with HubSpotUniqueProperty=payments_drain_key (HUBSPOT_UNIQUE_PROPERTY)"
    )
    stats = sandbox.control.stats()
    assert (
        stats["requests_by_route"]["create"] == 1 and stats["payments_stored"] == 0
    )  # the probe wrote nothing


def test_a_service_key_without_the_drains_scope_is_told_so_and_the_setup_still_does_what_it_can(
    sandbox, capsys, monkeypatch
):
    scopes = [SCHEMA_READ_SCOPE, SCHEMA_WRITE_SCOPE]
    sandbox.control.set_config(tokens={SERVICE_KEY: {"scopes": scopes, "kind": "service_key"}})
    monkeypatch.setenv("HUBSPOT_TOKEN", SERVICE_KEY)
    code = main([])
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert "scope crm.objects.commercepayments.write: MISSING (the drain needs it)" in lines
    assert lines[-1].startswith(
        "not ready: the token lacks a scope the drain needs (add it to the service key"
    )
    assert read_property(sandbox)["hasUniqueValue"] is True


def test_no_answer_from_hubspot_is_a_report_line_and_exit_code_1_not_a_traceback(
    sandbox, capsys, monkeypatch
):
    with socket.socket() as unused:  # a loopback port nobody listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    monkeypatch.setenv("HUBSPOT_BASE_URL", f"http://127.0.0.1:{port}")
    code, lines, _ = run(capsys)
    assert code == 1
    assert lines[-1].startswith(
        "stopped: POST /oauth/v2/private-apps/get/access-token-info: no answer from HubSpot"
    )


def test_an_existing_property_without_unique_values_is_not_taken(sandbox, capsys):
    sandbox.control.set_config(extra_properties=["payments_drain_key"])
    code, lines, _ = run(capsys)
    assert code == 1
    assert lines[-1].startswith("stopped: property payments_drain_key exists without unique values")


@pytest.mark.parametrize(
    ("argv", "env", "fragment"),
    [
        (["--property", "Payment Key"], {}, "--property must be"),
        (["--group", "9"], {}, "--group must be"),
        (["--base-url", "http://api.example.com"], {}, "--base-url must use https"),
        (["--unknown"], {}, "unrecognized arguments"),
        ([], {"HUBSPOT_TOKEN": ""}, "set HUBSPOT_TOKEN"),
    ],
)
def test_a_command_line_mistake_is_one_line_and_exit_code_2(
    sandbox, capsys, monkeypatch, argv, env, fragment
):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    out = capsys.readouterr()
    assert exit_.value.code == 2 and out.out == ""
    assert len(out.err.splitlines()) == 1 and fragment in out.err


def test_the_token_is_read_from_the_secret_as_the_function_reads_it(sandbox, aws_env, capsys, monkeypatch):
    secret = boto3.client("secretsmanager").create_secret(
        Name="setup-test-token", SecretString='{"token": "%s"}' % CANARY_TOKEN
    )
    monkeypatch.delenv("HUBSPOT_TOKEN")
    code, lines, _ = run(capsys, "--secret-id", secret["ARN"])
    assert code == 0 and lines[-1].startswith("ready:")
    code, _, err = run(capsys, "--secret-id", "no-such-secret")
    assert code == 1
    assert err == [
        "setup_hubspot: cannot read the HubSpot token secret no-such-secret (ResourceNotFoundException)"
    ]


def test_the_documented_command_runs_as_a_process(sandbox):
    """The module as a process, as `make setup-hubspot` runs it (docs/tools.md; its make command: test_tool_commands)."""
    env = {
        **os.environ,
        "PYTHONPATH": "layers/shared",
        "HUBSPOT_TOKEN": CANARY_TOKEN,
        "HUBSPOT_BASE_URL": sandbox.base_url,
    }
    done = subprocess.run(
        [sys.executable, "-m", "payments_drain.tools.setup_hubspot"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout.splitlines()[-1] == "ready: deploy with HubSpotUniqueProperty=payments_drain_key "
        "(HUBSPOT_UNIQUE_PROPERTY)"
    )
    assert CANARY_TOKEN not in done.stdout + done.stderr
    assert (
        SandboxControl(sandbox.base_url).stats()["requests_by_route"]["properties"] == 4
    )  # 2 reads, 2 creates
