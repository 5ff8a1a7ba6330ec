"""The properties API (definitions and groups of commerce_payments), HubSpot's private-app token info,
and the unknown object type: uniqueness is enforced only for a property created with hasUniqueValue."""

from __future__ import annotations

import pytest
from sandbox_http import payment

from local.hubspot_sandbox import SCHEMA_READ_SCOPE, SCHEMA_WRITE_SCOPE, WRITE_SCOPE

PROPERTIES = "/crm/v3/properties/commerce_payments"
GROUPS = f"{PROPERTIES}/groups"
TOKEN_INFO = "/oauth/v2/private-apps/get/access-token-info"


def definition(name="payments_drain_key", unique=True, group="paymentinformation", **extra):
    return {
        "name": name,
        "label": "Payments drain key",
        "type": "string",
        "fieldType": "text",
        "groupName": group,
        "hasUniqueValue": unique,
        **extra,
    }


def test_a_property_is_created_then_read_and_a_second_create_is_a_conflict(api):
    assert api.get(f"{PROPERTIES}/payments_drain_key").status == 404
    created = api.request("POST", PROPERTIES, definition())
    assert created.status == 201
    assert {k: created.json[k] for k in ("name", "type", "fieldType", "groupName", "hasUniqueValue")} == {
        "name": "payments_drain_key",
        "type": "string",
        "fieldType": "text",
        "groupName": "paymentinformation",
        "hasUniqueValue": True,
    }
    read = api.get(f"{PROPERTIES}/payments_drain_key")
    assert read.status == 200 and read.json == created.json
    assert api.get("/crm/properties/2026-03/commerce_payments/payments_drain_key").json == created.json
    again = api.request("POST", PROPERTIES, definition())
    assert again.status == 409 and again.json["category"] == "CONFLICT"


def test_hubspots_own_properties_are_read_as_not_unique_and_cannot_be_created(api):
    read = api.get(f"{PROPERTIES}/hs_initial_amount")
    assert read.status == 200 and read.json["hasUniqueValue"] is False and read.json["type"] == "number"
    assert api.request("POST", PROPERTIES, definition("hs_reference_number")).status == 400


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (definition(name="Bad Name"), "name"),
        (definition(label=""), "label"),
        (definition(type="bool", fieldType="booleancheckbox"), "hasUniqueValue"),
        (definition(fieldType="select"), "fieldType"),
        (definition(hasUniqueValue="yes"), "hasUniqueValue"),
    ],
)
def test_a_bad_definition_is_a_400_naming_the_field(api, body, where):
    reply = api.request("POST", PROPERTIES, body)
    assert reply.status == 400 and where in [e["in"] for e in reply.json["errors"]]


def test_a_property_needs_an_existing_group_which_the_groups_api_creates(api):
    assert api.request("POST", PROPERTIES, definition(group="payments_drain")).status == 400
    assert api.get(f"{GROUPS}/payments_drain").status == 404
    group = api.request("POST", GROUPS, {"name": "payments_drain", "label": "Payments drain"})
    assert group.status == 201 and group.json["name"] == "payments_drain"
    assert api.get(f"{GROUPS}/payments_drain").json == group.json
    assert api.request("POST", GROUPS, {"name": "payments_drain", "label": "again"}).status == 409
    assert api.request("POST", PROPERTIES, definition(group="payments_drain")).status == 201


def test_uniqueness_is_enforced_only_for_a_property_created_with_unique_values(api, control):
    api.request("POST", PROPERTIES, definition("plain_ref", unique=False))
    api.request("POST", PROPERTIES, definition("payments_drain_key"))
    assert api.create([payment(plain_ref="same"), payment(plain_ref="same")]).status == 201
    first = api.create([payment(payments_drain_key="ch_1")]).json["results"][0]
    reply = api.create([payment(payments_drain_key="ch_1")])
    assert reply.status == 207
    assert reply.json["errors"][0]["category"] == "CONFLICT"
    assert reply.json["errors"][0]["context"]["existingId"] == [first["id"]]
    assert len(control.payments()) == 3


def test_an_api_created_property_survives_a_reset_but_not_a_restore(api, control):
    api.request("POST", PROPERTIES, definition())
    control.reset()
    assert api.get(f"{PROPERTIES}/payments_drain_key").status == 200
    control.reset(restore_config=True)
    assert api.get(f"{PROPERTIES}/payments_drain_key").status == 404


def test_at_most_ten_unique_properties(api):
    for i in range(10):
        assert api.request("POST", PROPERTIES, definition(f"key_{i}")).status == 201
    reply = api.request("POST", PROPERTIES, definition("key_10"))
    assert reply.status == 400 and "10" in reply.json["message"]
    assert api.request("POST", PROPERTIES, definition("key_10", unique=False)).status == 201


def test_the_properties_api_needs_the_schema_scopes(api, control):
    control.set_config(
        tokens={"writer": {"scopes": [WRITE_SCOPE]}, "reader": {"scopes": [SCHEMA_READ_SCOPE]}}
    )
    denied = api.request("POST", PROPERTIES, definition(), token="writer")
    assert denied.status == 403 and denied.json["category"] == "MISSING_SCOPES"
    assert denied.json["errors"][0]["context"]["requiredGranularScopes"] == [SCHEMA_WRITE_SCOPE]
    assert api.get(f"{PROPERTIES}/payments_drain_key", token="writer").status == 403
    assert api.get(f"{PROPERTIES}/payments_drain_key", token="reader").status == 404
    assert api.request("POST", PROPERTIES, definition(), token="reader").status == 403


def test_token_info_tells_a_private_app_token_its_scopes(api, control):
    control.set_config(
        tokens={"pat": {"scopes": [WRITE_SCOPE]}, "oauth": {"scopes": [WRITE_SCOPE], "private_app": False}}
    )
    reply = api.request("POST", TOKEN_INFO, {"tokenKey": "pat"}, token="pat")
    assert reply.status == 200 and reply.json["scopes"] == [WRITE_SCOPE]
    assert api.request("POST", TOKEN_INFO, {"tokenKey": "oauth"}, token="oauth").status == 400
    assert api.request("POST", TOKEN_INFO, {"tokenKey": "unknown"}, token=None).status == 400


@pytest.mark.parametrize("kind", ["commerce_payment", "payments"])
def test_a_batch_call_to_an_object_type_hubspot_does_not_know_is_a_400(api, control, kind):
    for action in ("create", "upsert"):
        reply = api.create([payment()], path=f"/crm/v3/objects/{kind}/batch/{action}")
        assert reply.status == 400
        assert reply.json["message"] == f"Unable to infer object type from: {kind}"
    assert control.payments() == []
