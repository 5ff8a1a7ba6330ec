"""Routes: the create paths, the list with paging, get by id."""

from __future__ import annotations

import json

import pytest
from sandbox_http import CREATE, LIST, batch, payment

CREATE_PATHS = [
    "/crm/v3/objects/commerce_payments/batch/create",
    "/crm/v3/objects/0-101/batch/create",
    "/crm/objects/2026-09/commerce_payments/batch/create",
    "/crm/objects/2026-09/0-101/batch/create",
]


@pytest.mark.parametrize("path", CREATE_PATHS)
def test_every_create_path_creates(api, control, path):
    reply = api.create(batch(3), path=path)
    assert reply.status == 201
    assert len(reply.json["results"]) == 3
    assert len(control.payments()) == 3


def test_unknown_paths_and_methods_are_refused(api, control):
    assert api.create(batch(1), path="/crm/v3/objects/contacts/batch/create").status == 404
    assert api.create(batch(1), path="/crm/objects/2099-01/commerce_payments/batch/create").status == 404
    assert api.get(CREATE).status == 405
    assert control.payments() == []


def _all_pages(api, limit, path=LIST):
    ids, pages, after = [], 0, None
    while True:
        query = f"?limit={limit}" + (f"&after={after}" if after else "")
        reply = api.get(path + query)
        assert reply.status == 200
        body = reply.json
        assert len(body["results"]) <= limit
        ids += [r["id"] for r in body["results"]]
        pages += 1
        nxt = body.get("paging", {}).get("next", {}).get("after")
        if nxt is None:
            return ids, pages
        assert isinstance(nxt, str)
        after = nxt


def test_paging_returns_every_stored_payment_exactly_once(api, control):
    for _ in range(2):
        assert api.create(batch(100)).status == 201
    assert api.create(batch(53)).status == 201
    stored = {p["id"] for p in control.payments()}
    assert len(stored) == 253
    ids, pages = _all_pages(api, 7)
    assert len(ids) == len(set(ids)) == 253
    assert set(ids) == stored
    assert pages == 37
    # the largest page is capped at 100, the date-versioned and 0-101 forms list too
    ids, pages = _all_pages(api, 500, "/crm/objects/2026-09/0-101")
    assert set(ids) == stored and pages == 3


def test_list_default_limit_and_property_selection(api):
    assert api.create(batch(12, hs_latest_status="succeeded")).status == 201
    body = api.get(LIST).json
    assert len(body["results"]) == 10 and body["paging"]["next"]["after"]
    first = body["results"][0]
    assert set(first["properties"]) == {"hs_object_id", "hs_createdate", "hs_lastmodifieddate"}
    assert first["properties"]["hs_object_id"] == first["id"]
    assert first["archived"] is False and first["createdAt"] and first["updatedAt"]
    body = api.get(LIST + "?limit=2&properties=hs_initial_amount,hs_latest_status").json
    props = body["results"][0]["properties"]
    assert props["hs_latest_status"] == "succeeded"
    assert props["hs_initial_amount"].endswith(".50")


def test_list_rejects_a_bad_limit(api):
    assert api.get(LIST + "?limit=abc").status == 400
    assert api.get(LIST + "?limit=0").status == 400


def test_get_by_id_and_unknown_id(api):
    item = payment(hs_reference_number="ref-1")
    created = api.create([item]).json["results"][0]
    reply = api.get(f"{LIST}/{created['id']}?properties=hs_reference_number")
    assert reply.status == 200
    body = reply.json
    assert body["id"] == created["id"]
    assert body["properties"]["hs_reference_number"] == "ref-1"
    assert body["properties"]["hs_object_id"] == created["id"]
    missing = api.get(f"{LIST}/999")
    assert missing.status == 404
    assert missing.json["category"] == "OBJECT_NOT_FOUND"
    assert missing.json["correlationId"] == missing.headers["X-HubSpot-Correlation-Id"]


def test_a_chunked_request_body_is_read(api, control):
    conn = api.connection()
    body = json.dumps({"inputs": batch(2)}).encode()
    conn.putrequest("POST", CREATE)
    for name, value in api.headers().items():
        conn.putheader(name, value)
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    for piece in (body[:10], body[10:]):
        conn.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
    conn.send(b"0\r\n\r\n")
    reply = conn.getresponse()
    assert reply.status == 201
    reply.read()
    conn.close()
    assert len(control.payments()) == 2
