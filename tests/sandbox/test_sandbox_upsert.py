"""batch/upsert on the unique-value property: create when new, update when the value exists."""

from __future__ import annotations

import pytest
from sandbox_http import payment

KEY = "payment_key"
UPSERT = "/crm/v3/objects/commerce_payments/batch/upsert"


def _input(key, trace=True, **props):
    item = payment(trace, **props)
    item["id"] = key
    item["idProperty"] = KEY
    return item


@pytest.fixture
def unique(api, control):
    reply = api.request(
        "POST",
        "/crm/v3/properties/commerce_payments",
        {
            "name": KEY,
            "label": KEY,
            "type": "string",
            "fieldType": "text",
            "groupName": "paymentinformation",
            "hasUniqueValue": True,
        },
    )
    assert reply.status == 201
    return control


def test_upsert_creates_then_updates_and_says_which(api, unique):
    first = api.create([_input("k1"), _input("k2")], path=UPSERT)
    assert first.status == 200
    assert all(r["new"] is True for r in first.json["results"])
    ids = {r["properties"][KEY]: r["id"] for r in first.json["results"]}
    again = api.create([_input("k1", hs_latest_status="refunded"), _input("k3")], path=UPSERT)
    assert again.status == 200
    by_key = {r["properties"][KEY]: r for r in again.json["results"]}
    assert by_key["k1"]["new"] is False and by_key["k1"]["id"] == ids["k1"]
    assert by_key["k1"]["properties"]["hs_latest_status"] == "refunded"
    assert by_key["k3"]["new"] is True
    assert len(unique.payments()) == 3
    assert unique.stats()["payments_updated"] == 1


def test_upsert_update_needs_no_required_properties_but_a_create_does(api, unique):
    api.create([_input("k1")], path=UPSERT)
    update = {
        "id": "k1",
        "idProperty": KEY,
        "properties": {"hs_internal_comment": "x"},
        "objectWriteTraceId": "u1",
    }
    create = {
        "id": "k9",
        "idProperty": KEY,
        "properties": {"hs_internal_comment": "x"},
        "objectWriteTraceId": "u2",
    }
    reply = api.create([update, create], path=UPSERT)
    assert reply.status == 207
    [error] = reply.json["errors"]
    assert error["context"]["objectWriteTraceId"] == ["u2"]
    assert {e["code"] for e in error["errors"]} == {"MISSING_REQUIRED_PROPERTY"}
    assert [r["new"] for r in reply.json["results"]] == [False]


def test_upsert_refuses_duplicate_ids_and_a_non_unique_id_property(api, unique):
    reply = api.create([_input("k1"), _input("k1")], path=UPSERT)
    assert reply.status == 400 and "Duplicate IDs" in reply.json["message"]
    bad = _input("k2", trace=False)
    bad["idProperty"] = "hs_reference_number"
    reply = api.create([bad], path=UPSERT)
    assert reply.status == 400
    assert "INVALID_ID_PROPERTY" in [e["code"] for e in reply.json["errors"]]
    assert unique.payments() == []


def test_upsert_without_a_unique_property_is_refused(api, control):
    reply = api.create([_input("k1", trace=False)], path=UPSERT)
    assert reply.status == 400
    assert control.payments() == []


def test_an_update_with_an_empty_string_clears_the_property(api, unique):
    """HubSpot: "Properties values can be cleared by passing an empty string". The sandbox stored
    "" as a value, so a read-back compared the drain's "" with a "" HubSpot never holds."""
    api.create([_input("k1", hs_internal_comment="first")], path=UPSERT)
    reply = api.create([_input("k1", hs_internal_comment="")], path=UPSERT)
    assert reply.status == 200 and reply.json["results"][0]["new"] is False
    [stored] = unique.payments()
    assert "hs_internal_comment" not in stored["properties"]
