"""Upsert mode's links, the pure core: planning the associations API calls, settling their answers,
folding the links' outcomes into the payment's."""

from payments_drain.core import batching, links
from payments_drain.core.batching import Answer
from payments_drain.core.links import Link, calls_needed, fold, plan, settle_links, target_type
from payments_drain.core.messages import parse_record
from payments_drain.core.outcomes import Outcome, Reason, State, Wait

from tests.twins import payment_body, sqs_record

CONTACT = {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 387}


def payment(message_id, *associations):
    body = payment_body(f"key-{message_id}")
    body["associations"] = list(associations)
    return parse_record(sqs_record(body, message_id), "payments_drain_key", upsert=True)


def to(to_id, *types, **extra):
    return {"to": {"id": to_id}, "types": list(types) or [CONTACT], **extra}


def link(key, hubspot_id, to_id):
    return Link(key, hubspot_id, to_id, (CONTACT,))


def test_the_target_type_is_toObjectType_else_the_one_hubspots_default_type_id_names():
    assert target_type(to("1")) == "contacts"
    assert (
        target_type(to("1", {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1354}))
        == "tickets"
    )
    label = {"associationCategory": "USER_DEFINED", "associationTypeId": 387}  # a label's id, not HubSpot's
    assert target_type(to("1", label)) is None
    assert target_type(to("1", label, toObjectType="deals")) == "deals"


def test_links_are_planned_per_target_type_at_most_100_per_call_from_each_payments_id():
    many = [
        payment(f"m{i}", to(str(1000 + i)), to(str(i), toObjectType="deals", types=[CONTACT]))
        for i in range(150)
    ]
    calls = plan((p, f"h{i}") for i, p in enumerate(many))
    assert [(c.to_type, len(c.links)) for c in calls] == [
        ("contacts", 100),
        ("contacts", 50),
        ("deals", 100),
        ("deals", 50),
    ]
    first = calls[0].links[0]
    assert first.key == "m0#0" and first.hubspot_input() == {
        "from": {"id": "h0"},
        "to": {"id": "1000"},
        "types": [CONTACT],
    }
    assert calls_needed(many) == 4 and calls_needed([payment("x")]) == 0


def test_an_error_names_the_links_of_its_target_narrowed_by_the_payment_when_both_are_there():
    part = [link("a#0", "11", "501"), link("b#0", "12", "501"), link("b#1", "12", "502")]
    wrong_type = {
        "category": "VALIDATION_ERROR",
        "subCategory": "crm.associations.INVALID_ASSOCIATION_TYPE",
        "message": "type 4 is not defined",
        "context": {"fromObjectId": ["12"], "toObjectId": ["501"]},
    }
    body = {"results": [{"fromObjectId": "11", "toObjectId": "501"}], "errors": [wrong_type], "numErrors": 1}
    verdict = settle_links(part, Answer(200, body))
    assert verdict.outcomes["a#0"].state is State.CREATED
    assert verdict.outcomes["b#0"].state is State.REJECTED
    assert verdict.outcomes["b#0"].reason.code == links.LINK_TYPE_INVALID
    assert verdict.outcomes["b#1"].state is State.RETRY  # neither proven nor refused: sent again


def test_an_error_of_another_category_and_a_throttle_keep_the_link_for_later():
    part = [link("a#0", "11", "501")]
    internal = {"category": "INTERNAL_ERROR", "message": "x", "context": {"toObjectId": ["501"]}}
    verdict = settle_links(part, Answer(207, {"results": [], "errors": [internal]}))
    assert verdict.outcomes["a#0"].state is State.RETRY
    assert settle_links(part, Answer(429, {"errorType": "RATE_LIMIT"})).action == batching.TRANSIENT
    assert settle_links(part, Answer(200, "<html>")).action == batching.TRANSIENT  # a resend is harmless


def test_a_whole_request_400_refuses_the_links_it_names_and_the_others_go_again_else_it_is_halved():
    part = [link("a#0", "11", "501"), link("b#0", "12", "502")]
    named = {
        "category": "VALIDATION_ERROR",
        "message": "One or more associations are invalid",
        "context": {"INVALID_OBJECT_IDS": ["CONTACT=502 is not valid"]},
    }
    verdict = settle_links(part, Answer(400, named))
    assert set(verdict.outcomes) == {"b#0"} and verdict.resend_rest
    assert verdict.outcomes["b#0"].reason.code == links.LINK_TARGET_NOT_FOUND
    anonymous = {"category": "VALIDATION_ERROR", "message": "Invalid input JSON"}
    assert settle_links(part, Answer(400, anonymous)).action == batching.SPLIT
    unknown = {"category": "VALIDATION_ERROR", "message": "Unable to infer object type from: widgets"}
    verdict = settle_links(part, Answer(400, unknown))  # the message's toObjectType: not halved
    assert {o.reason.code for o in verdict.outcomes.values()} == {links.LINK_TYPE_INVALID}
    assert set(verdict.outcomes) == {"a#0", "b#0"} and not verdict.resend_rest


def test_a_payment_is_created_once_every_link_is_retried_while_one_is_pending_and_rejected_after():
    record = Outcome(State.CREATED, hubspot_id="11", updated=True)
    written = Outcome(State.CREATED, hubspot_id="11")
    pending = Outcome(State.RETRY, Reason("HUBSPOT_UNREACHABLE", "no answer (timeout)"))
    refused = Outcome(
        State.REJECTED,
        Reason(links.LINK_REJECTED, "One or more associations are invalid", 200, links.LINK_TARGET_NOT_FOUND),
    )
    p = payment("m")
    assert fold(p, record, [written, written]) is record
    retry = fold(p, record, [written, pending, refused])
    assert retry.state is State.RETRY and retry.record_written and retry.hubspot_id == "11"
    assert retry.reason.category == links.LINKS_PENDING and retry.reason.code == "HUBSPOT_UNREACHABLE"
    no_slot = Outcome(State.RETRY, Reason("TIME_BUDGET", "no time"), wait=Wait.NO_SLOT_YET, until_ms=123)
    held = fold(p, record, [written, no_slot])  # held until the rate limit has a slot for its links
    assert (held.wait, held.until_ms) == (Wait.NO_SLOT_YET, 123)
    rejected = fold(p, record, [written, refused])
    assert rejected.state is State.REJECTED and rejected.record_written
    assert rejected.reason.code == links.LINK_TARGET_NOT_FOUND
    assert rejected.reason.message.startswith(
        "record written (HubSpot id 11); a link can never be written: One"
    )


def test_the_associations_answer_shape_check():
    assert links.unexpected_shape(Answer(200, {"results": []})) is None
    assert links.unexpected_shape(Answer(201, {"status": "COMPLETE"})) == "results cannot be read"
    assert links.unexpected_shape(Answer(503, None)) is None


def test_create_mode_takes_the_same_associations_and_never_sends_the_drains_own_field():
    body = payment_body("k")
    label = {"associationCategory": "USER_DEFINED", "associationTypeId": 4}
    body["associations"] = [to("7", label, toObjectType="contacts"), to(8)]
    created = parse_record(sqs_record(body, "m"))
    assert created.hubspot_input()["associations"] == [to("7", label), to("8")]
    assert created.associations[0]["toObjectType"] == "contacts"  # kept for upsert mode's links
    body["associations"][0]["toObjectType"] = "Contacts!"
    rejected = parse_record(sqs_record(body, "m"))
    assert rejected.reason.code == "STRING_PATTERN_MISMATCH"
