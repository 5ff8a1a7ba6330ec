"""The optional unique-value property: HubSpot refuses a second payment with a stored value."""

from __future__ import annotations

import threading

import pytest
from sandbox_http import LIST, payment

KEY = "payment_key"


def create_unique_property(api, name=KEY):
    """As setup_hubspot does it: through the properties API, with hasUniqueValue."""
    reply = api.request(
        "POST",
        "/crm/v3/properties/commerce_payments",
        {
            "name": name,
            "label": name,
            "type": "string",
            "fieldType": "text",
            "groupName": "paymentinformation",
            "hasUniqueValue": True,
        },
    )
    assert reply.status == 201


@pytest.fixture
def unique(api, control):
    create_unique_property(api)
    return control


def test_the_unique_property_is_unknown_until_created(api, control):
    reply = api.create([payment(**{KEY: "k"})])
    assert reply.status == 207
    assert reply.json["errors"][0]["errors"][0]["code"] == "PROPERTY_DOESNT_EXIST"
    create_unique_property(api)
    assert api.create([payment(**{KEY: "k"})]).status == 201


def test_the_configured_unique_property_is_the_api_created_one(api, control):
    """SandboxConfig.unique_property starts the account with that property, as if created through the API."""
    control.set_config(unique_property=KEY)
    read = api.get(f"/crm/v3/properties/commerce_payments/{KEY}")
    assert read.status == 200 and read.json["hasUniqueValue"] is True
    api.create([payment(**{KEY: "k"})])
    assert api.create([payment(**{KEY: "k"})]).json["errors"][0]["category"] == "CONFLICT"


def test_a_stored_value_is_a_conflict_item_in_a_207(api, unique):
    first = api.create([payment(**{KEY: "ch_1"})]).json["results"][0]
    dup, fresh = payment(**{KEY: "ch_1"}), payment(**{KEY: "ch_2"})
    reply = api.create([dup, fresh])
    assert reply.status == 207
    body = reply.json
    [error] = body["errors"]
    assert error["status"] == "error"
    assert error["category"] == "CONFLICT"
    assert error["message"].endswith(f"already exists. Existing ID: {first['id']}")
    assert error["context"]["objectWriteTraceId"] == [dup["objectWriteTraceId"]]
    assert error["context"]["existingId"] == [first["id"]]
    assert [r["properties"][KEY] for r in body["results"]] == ["ch_2"]
    assert sorted(p["properties"][KEY] for p in unique.payments()) == ["ch_1", "ch_2"]


def test_a_stored_value_without_trace_ids_is_a_whole_request_409(api, unique):
    first = api.create([payment(False, **{KEY: "ch_1"})]).json["results"][0]
    reply = api.create([payment(False, **{KEY: "ch_9"}), payment(False, **{KEY: "ch_1"})])
    assert reply.status == 409
    body = reply.json
    assert body["status"] == "error" and body["category"] == "CONFLICT"
    assert f"already exists. Existing ID: {first['id']}" in body["message"]
    assert body["context"]["existingId"] == [first["id"]]
    assert body["correlationId"] == reply.headers["X-HubSpot-Correlation-Id"]
    assert [p["properties"][KEY] for p in unique.payments()] == ["ch_1"]


def test_twice_in_one_request_the_second_names_the_first(api, unique):
    a, b = payment(**{KEY: "same"}), payment(**{KEY: "same"})
    reply = api.create([a, b])
    assert reply.status == 207
    body = reply.json
    [created] = body["results"]
    [error] = body["errors"]
    assert created["objectWriteTraceId"] == a["objectWriteTraceId"]
    assert error["context"]["objectWriteTraceId"] == [b["objectWriteTraceId"]]
    assert error["context"]["existingId"] == [created["id"]]
    assert error["message"].endswith(f"Existing ID: {created['id']}")


def test_twice_in_one_request_without_trace_ids_is_a_409_and_nothing_is_created(api, unique):
    reply = api.create([payment(False, **{KEY: "same"}), payment(False, **{KEY: "same"})])
    assert reply.status == 409
    assert reply.json["category"] == "CONFLICT"
    assert unique.payments() == []


def test_concurrent_duplicates_store_exactly_one(api, unique):
    statuses = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def client():
        barrier.wait()
        status = api.create([payment(False, **{KEY: "race"})]).status
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [201] + [409] * 7
    assert len(unique.payments()) == 1


def test_get_by_the_unique_property(api, unique):
    created = api.create([payment(**{KEY: "ch_7"})]).json["results"][0]
    reply = api.get(f"{LIST}/ch_7?idProperty={KEY}")
    assert reply.status == 200 and reply.json["id"] == created["id"]
    assert api.get(f"{LIST}/ch_8?idProperty={KEY}").status == 404


def test_configuring_the_property_later_indexes_stored_values(api, control):
    control.set_config(extra_properties=[KEY])
    first = api.create([payment(**{KEY: "old"})]).json["results"][0]
    control.set_config(unique_property=KEY)
    reply = api.create([payment(**{KEY: "old"})])
    assert reply.status == 207
    assert reply.json["errors"][0]["context"]["existingId"] == [first["id"]]
