"""The associations API (links from payments), on the date-versioned path and v4's; the date
version's answers to object writes (one success status, errors included) and its account rules."""

from __future__ import annotations

import pytest
from sandbox_http import payment

# (version label, the associations batch create path from payments to contacts, its status with
# per-input errors): the date version declares 200 only; v4 declares 201 and 207.
LINK_PATHS = [
    pytest.param("/crm/associations/2026-09/commerce_payments/contacts/batch/create", 200, id="2026-09"),
    pytest.param("/crm/v4/associations/commerce_payments/contacts/batch/create", 207, id="v4"),
]
CONTACT_TYPE = [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 387}]
OBJECTS = {"2026-09": "/crm/objects/2026-09/commerce_payments", "v3": "/crm/v3/objects/commerce_payments"}


def _stored(api, n=1) -> list[str]:
    reply = api.create([payment() for _ in range(n)])
    assert reply.status == 201
    return [r["id"] for r in reply.json["results"]]


def _link(from_id, to_id, types=CONTACT_TYPE):
    return {"from": {"id": from_id}, "to": {"id": to_id}, "types": types}


@pytest.mark.parametrize(("path", "multi_status"), LINK_PATHS)
def test_links_are_written_and_answered_by_pair_each_once(api, control, path, multi_status):
    a, b = _stored(api, 2)
    reply = api.create([_link(a, "501"), _link(b, "502")], path=path)
    assert reply.status == (200 if multi_status == 200 else 201)
    pairs = {(r["fromObjectId"], r["toObjectId"]) for r in reply.json["results"]}
    assert pairs == {(a, "501"), (b, "502")} and "errors" not in reply.json
    again = api.create([_link(a, "501")], path=path)  # a link written twice is one link
    assert again.status in (200, 201)
    by_id = {p["id"]: p for p in control.payments()}
    assert by_id[a]["associations"] == [
        {"to": {"id": "501"}, "toObjectType": "contacts", "types": CONTACT_TYPE}
    ]
    assert control.stats()["associations_written"] == 2
    assert control.stats()["requests_by_route"]["associations"] == 2


@pytest.mark.parametrize(("path", "multi_status"), LINK_PATHS)
def test_a_link_to_a_missing_record_or_of_an_unknown_type_is_an_error_of_its_own(
    api, control, path, multi_status
):
    a, b, c = _stored(api, 3)
    control.set_config(missing_records={"contacts": ["999"]}, association_labels={"contacts": [4]})
    label = [{"associationCategory": "USER_DEFINED", "associationTypeId": 4}]
    unknown = [{"associationCategory": "USER_DEFINED", "associationTypeId": 5}]
    reply = api.create([_link(a, "999"), _link(b, "501", unknown), _link(c, "502", label)], path=path)
    assert reply.status == multi_status and reply.json["numErrors"] == 2
    assert [(r["fromObjectId"], r["toObjectId"]) for r in reply.json["results"]] == [(c, "502")]
    errors = {e["subCategory"]: e for e in reply.json["errors"]}
    missing = errors["crm.associations.INVALID_OBJECT_IDS"]
    assert missing["category"] == "VALIDATION_ERROR"
    assert missing["context"]["INVALID_OBJECT_IDS"] == ["CONTACT=999 is not valid"]
    wrong_type = errors["crm.associations.INVALID_ASSOCIATION_TYPE"]
    assert wrong_type["context"]["toObjectId"] == ["501"] and wrong_type["context"]["fromObjectId"] == [b]
    assert control.stats()["associations_written"] == 1


@pytest.mark.parametrize(("path", "multi_status"), LINK_PATHS)
def test_a_link_from_a_payment_the_account_does_not_hold_is_refused(api, path, multi_status):
    reply = api.create([_link("424242", "501")], path=path)
    assert reply.status == multi_status
    [error] = reply.json["errors"]
    assert error["context"]["INVALID_OBJECT_IDS"] == ["COMMERCE_PAYMENT=424242 is not valid"]


def test_associate_default_writes_the_default_type_and_an_unknown_target_type_is_refused(api, control):
    [a] = _stored(api)
    path = "/crm/associations/2026-09/commerce_payments/deals/batch/associate/default"
    reply = api.create([{"from": {"id": a}, "to": {"id": "77"}}], path=path)
    assert reply.status == 200
    assert reply.json["results"][0]["associationSpec"]["associationTypeId"] == 391
    bad = api.create([_link(a, "1")], path="/crm/associations/2026-09/commerce_payments/widgets/batch/create")
    assert bad.status == 400 and bad.json["message"] == "Unable to infer object type from: widgets"


def test_link_calls_meet_the_same_faults_and_rate_limit_as_writes(api, control):
    [a] = _stored(api)
    control.set_faults(script=["503"])
    path = "/crm/associations/2026-09/commerce_payments/contacts/batch/create"
    assert api.create([_link(a, "501")], path=path).status == 503
    reply = api.create([_link(a, "501")], path=path)
    assert reply.status == 200 and reply.headers["X-HubSpot-RateLimit-Remaining"] is not None
    assert control.stats()["requests_by_status"]["503"] == 1


@pytest.mark.parametrize(("version", "create", "upsert"), [("2026-09", 201, 200), ("v3", 207, 207)])
def test_the_date_version_answers_input_errors_in_its_one_success_status(api, version, create, upsert):
    bad = payment(hs_currency_code="EURO")
    reply = api.create([payment(), bad], path=OBJECTS[version] + "/batch/create")
    assert reply.status == create and reply.json["numErrors"] == 1
    assert reply.json["errors"][0]["context"]["objectWriteTraceId"] == [bad["objectWriteTraceId"]]


@pytest.mark.parametrize("version", ["2026-09", "v3"])
def test_account_rules_are_enforced_on_the_date_version_only(api, control, version):
    control.set_config(
        write_rules=[{"property": "hs_reference_number", "when": {"hs_latest_status": "refunded"}}]
    )
    breaking = payment(hs_latest_status="refunded")
    fine = [payment(hs_latest_status="refunded", hs_reference_number="INV-1"), payment()]
    reply = api.create([fine[0], breaking, fine[1]], path=OBJECTS[version] + "/batch/create")
    if version == "v3":  # earlier versions ignore the account's rules
        assert reply.status == 201 and len(control.payments()) == 3
        return
    assert reply.status == 400 and reply.json["category"] == "VALIDATION_ERROR"
    [error] = reply.json["errors"]
    assert error["context"]["objectWriteTraceId"] == [breaking["objectWriteTraceId"]]
    assert error["code"] == "CONDITIONAL_REQUIRED_PROPERTY"
    assert (
        error["message"]
        == "hs_reference_number is required when hs_latest_status is refunded (a rule of this account)"
    )
    assert control.payments() == []  # nothing of the request is written
    assert api.create(fine, path=OBJECTS[version] + "/batch/create").status == 201


def test_an_upsert_is_held_to_the_rules_with_the_record_it_updates(api, control):
    control.set_config(unique_property="payment_key")
    control.set_config(
        write_rules=[{"property": "hs_reference_number", "when": {"hs_latest_status": "refunded"}}]
    )
    path = OBJECTS["2026-09"] + "/batch/upsert"
    first = {**payment(hs_reference_number="INV-1"), "id": "k1", "idProperty": "payment_key"}
    assert api.create([first], path=path).status == 200
    update = {**payment(hs_latest_status="refunded"), "id": "k1", "idProperty": "payment_key"}
    assert api.create([update], path=path).status == 200  # the record holds the reference already
    new = {**payment(hs_latest_status="refunded"), "id": "k2", "idProperty": "payment_key"}
    assert api.create([new], path=path).status == 400
