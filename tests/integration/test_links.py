"""Upsert mode's links and the account's write rules through the real handler, on the date version
and on v3 (the same behaviour): the sandbox over HTTP, moto and DynamoDB Local, resources and
environment from template.yaml."""

import pytest

from local.hubspot_sandbox import SandboxConfig
from tests.integration.test_handler import WRITE, batch_metrics, load_handler, reports
from tests.twins import CANARY_TOKEN, LambdaContext, payment_body, sqs_record

KEY = "payments_drain_key"
VERSIONS = ["2026-09", "v3"]


@pytest.fixture
def sandbox(hubspot_sandbox_factory):
    return hubspot_sandbox_factory(
        SandboxConfig(tokens={CANARY_TOKEN: {"scopes": WRITE}}, unique_property=KEY)
    )


@pytest.fixture(params=VERSIONS)
def upsert_stack(request, deploy, sandbox):
    resources, environment = deploy(
        sandbox.base_url, parameters={"HubSpotWriteMode": "upsert", "HubSpotApiVersion": request.param}
    )
    assert environment["HUBSPOT_API_VERSION"] == request.param
    return environment


def linked(key, message_id, version, *contacts, receive_count=1, **props):
    body = payment_body(key, **props)
    body["version"] = version
    body["associations"] = [
        {"to": {"id": c}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 387}]}
        for c in contacts
    ]
    return sqs_record(body, message_id, receive_count=receive_count)


def stored(sandbox):
    return {p["properties"][KEY]: p for p in sandbox.control.payments()}


def links_of(record):
    return sorted(a["to"]["id"] for a in record["associations"])


def test_upserted_payments_are_linked_by_the_ids_the_upsert_returned(upsert_stack, sandbox, capsys):
    event = {"Records": [linked(f"k{i}", f"m{i}", 1, f"50{i}", f"60{i}") for i in range(3)]}
    assert load_handler().lambda_handler(event, LambdaContext()) == {"batchItemFailures": []}
    records = stored(sandbox)
    assert {k: links_of(r) for k, r in records.items()} == {f"k{i}": [f"50{i}", f"60{i}"] for i in range(3)}
    assert sandbox.control.stats()["requests_by_route"] == {"upsert": 1, "associations": 1}
    (emf,) = batch_metrics(capsys.readouterr().out)
    assert emf["PaymentLinksWritten"] == 6 and emf["HubSpotRequests"] == 2 and emf["PaymentsCreated"] == 3


def test_a_link_that_fails_after_its_record_was_written_is_written_on_redelivery_alone(upsert_stack, sandbox):
    sandbox.control.set_faults(script=["ok", "503", "503", "503"])  # the upsert, then every link try
    first = load_handler().lambda_handler({"Records": [linked("k", "m1", 1, "501")]}, LambdaContext())
    assert first == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    [record] = stored(sandbox).values()
    assert record["associations"] == []  # written, not linked
    assert sandbox.control.stats()["requests_by_route"] == {"upsert": 1, "associations": 3}

    again = {"Records": [linked("k", "m1", 1, "501", receive_count=2)]}
    response = load_handler().lambda_handler(again, LambdaContext(aws_request_id="req-2"))
    assert response == {"batchItemFailures": []}
    [after] = stored(sandbox).values()
    assert links_of(after) == ["501"] and after["id"] == record["id"]
    # the redelivery wrote only the link: the record was not upserted again
    assert sandbox.control.stats()["requests_by_route"] == {"upsert": 1, "associations": 4}
    assert after["updatedAt"] == record["updatedAt"]


def test_a_link_to_a_record_hubspot_does_not_hold_is_reported_and_the_payment_kept(upsert_stack, sandbox):
    sandbox.control.set_config(missing_records={"contacts": ["999"]})
    event = {"Records": [linked("k1", "m1", 1, "999", "501"), linked("k2", "m2", 1, "502")]}
    assert load_handler().lambda_handler(event, LambdaContext()) == {"batchItemFailures": []}
    records = stored(sandbox)
    assert links_of(records["k1"]) == ["501"] and links_of(records["k2"]) == ["502"]
    [report] = reports(upsert_stack)
    assert report["messageId"] == "m1" and report["reason"]["category"] == "LINK_REJECTED"
    assert report["reason"]["code"] == "LINK_TARGET_NOT_FOUND"
    assert records["k1"]["id"] in report["reason"]["message"]  # the record is written: it says which


def test_the_accounts_rule_refuses_one_payment_on_the_date_version_and_its_neighbours_are_written(
    upsert_stack, sandbox, log_lines
):
    sandbox.control.set_config(
        write_rules=[{"property": "hs_reference_number", "when": {"hs_latest_status": "refunded"}}]
    )
    breaking = linked("k1", "m1", 1, hs_latest_status="refunded", hs_customer_email="jane@example.com")
    event = {"Records": [linked("k0", "m0", 1), breaking, linked("k2", "m2", 1)]}
    assert load_handler().lambda_handler(event, LambdaContext()) == {"batchItemFailures": []}
    sent = reports(upsert_stack)
    if upsert_stack["HUBSPOT_API_VERSION"] == "v3":  # earlier versions ignore the account's rules
        assert sent == [] and set(stored(sandbox)) == {"k0", "k1", "k2"}
        return
    assert set(stored(sandbox)) == {"k0", "k2"}
    [report] = sent
    assert report["messageId"] == "m1" and report["reason"]["category"] == "VALIDATION_ERROR"
    assert report["reason"]["message"].startswith("hs_reference_number is required when hs_latest_status")
    assert sandbox.control.stats()["requests_by_status"] == {"400": 1, "200": 1}  # no halving
    assert not any("jane@example.com" in line for line in log_lines())
    assert report["payment"]["paymentKey"] == "k1"
