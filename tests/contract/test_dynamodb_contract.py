"""simulation.dynamodb.SimDynamoDB held to AWS's DynamoDB Local (3.3.1, the local stack's).

The ``dynamodb`` fixture runs a test against both: DynamoDB Local through boto3 and the
simulation (a VirtualClock that does not move unless told). The ledger and the rate slots are
exercised through their real adapters (``client=``), the error codes and request limits through
the raw client. Rules DynamoDB Local does not enforce (throughput per item) are tested on the
simulation alone, each citing the AWS document (the limits table's ``source``); so are the faults.
"""

from __future__ import annotations

import random
import re
import uuid

import pytest
from botocore.exceptions import ClientError
from payments_drain.adapters.ledger import (
    AMBIGUOUS,
    BUSY,
    CLAIMED,
    CREATED,
    STALE,
    DynamoLedger,
    Entry,
    LedgerUnavailable,
    entry_or_claim,
)
from payments_drain.adapters.rate_slots import TICKET_LEAD_MS, DynamoRateSlots, _decode
from payments_drain.core import clock, limits

from local.stack.aws import boto3_client
from simulation.clock import VirtualClock
from simulation.dynamodb import STATEMENT_THROTTLES, DynamoFaults, SimDynamoDB, Units

STATEMENTS = limits.DDB_BATCH_STATEMENTS.value
WRITES = limits.DDB_BATCH_WRITE_ITEMS.value
KEYS = limits.DDB_BATCH_GET_KEYS.value
EXPRESSION = limits.DDB_EXPRESSION_BYTES.value


def now_ms() -> int:
    return clock.wall_ms()  # the adapters' clock: real, or the simulation's (installed by the fixture)


def sim(
    faults: DynamoFaults | None = None, seed: int = 20261201, on: VirtualClock | None = None
) -> SimDynamoDB:
    return SimDynamoDB(on or VirtualClock(), random.Random(seed), faults)


@pytest.fixture(params=["dynamodb-local", "sim"])
def dynamodb(request):
    """DynamoDB Local, or the simulation with its VirtualClock installed as the adapters' clock
    (as the simulation runs them)."""
    if request.param == "dynamodb-local":
        yield boto3_client("dynamodb", request.getfixturevalue("dynamodb_endpoint"), "us-east-1")
        return
    virtual = VirtualClock()
    previous = clock.install(virtual)
    try:
        yield sim(on=virtual)
    finally:
        clock.install(previous)


def new_table(client, key: str = "pk") -> str:
    name = f"contract-{uuid.uuid4().hex[:12]}"
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


@pytest.fixture
def table(dynamodb) -> str:
    return new_table(dynamodb)


@pytest.fixture
def ledger(dynamodb) -> DynamoLedger:
    return DynamoLedger(new_table(dynamodb, "paymentKey"), client=dynamodb, parallelism=4)


def stored(client, table: str, key: str, key_name: str = "pk") -> dict | None:
    """The item as plain values (None: no item)."""
    answer = client.get_item(TableName=table, Key={key_name: {"S": key}}, ConsistentRead=True)
    return {k: next(iter(v.values())) for k, v in answer["Item"].items()} if "Item" in answer else None


def codes(answer: dict) -> list[str | None]:
    return [r.get("Error", {}).get("Code") for r in answer["Responses"]]


def refused(call, *args, **kwargs) -> ClientError:
    with pytest.raises(ClientError) as error:
        call(*args, **kwargs)
    return error.value


def refusal(call, *args, **kwargs) -> tuple[str, str]:
    error = refused(call, *args, **kwargs).response["Error"]
    return error["Code"], error["Message"]


# -- the ledger, through DynamoLedger -------------------------------------------------------------
def test_new_keys_are_claimed_and_another_claimant_finds_them_busy(ledger):
    until = now_ms() + 60_000
    assert ledger.claim(["a", "b"], "A", until) == {"a": Entry(CLAIMED), "b": Entry(CLAIMED)}
    busy = Entry(BUSY, until_ms=until)
    assert ledger.claim(["a", "b", "c"], "B", until) == {"a": busy, "b": busy, "c": Entry(CLAIMED)}
    assert ledger.claim(["a"], "A", until) == {"a": Entry(CLAIMED)}  # our own live claim


def test_a_hundred_keys_are_claimed_then_found_created(ledger):
    keys = [f"p{i}" for i in range(100)]
    until = now_ms() + 60_000
    assert ledger.claim(keys, "A", until) == dict.fromkeys(keys, Entry(CLAIMED))
    ledger.record_created({k: f"h-{k}" for k in keys[:50]} | dict.fromkeys(keys[50:]))
    expected = {k: Entry(CREATED, f"h-{k}") for k in keys[:50]} | dict.fromkeys(keys[50:], Entry(CREATED))
    assert ledger.claim(keys, "B", until) == expected


def test_release_drops_our_claims_only(ledger, dynamodb):
    until = now_ms() + 60_000
    ledger.claim(["mine", "theirs"], "A", until)
    ledger.release(["mine", "theirs", "never-claimed"], "B")  # not B's claims: nothing changes
    assert stored(dynamodb, ledger.table, "mine", "paymentKey")["claimant"] == "A"
    ledger.release(["mine"], "A")
    assert stored(dynamodb, ledger.table, "mine", "paymentKey") is None
    assert stored(dynamodb, ledger.table, "theirs", "paymentKey")["claimant"] == "A"
    assert ledger.claim(["mine"], "B", until) == {"mine": Entry(CLAIMED)}  # released: not a take-over


def test_the_release_statement_fails_alone_where_its_where_does_not_hold(ledger, dynamodb):
    ledger.claim(["mine"], "A", now_ms() + 60_000)
    ledger.claim(["theirs"], "B", now_ms() + 60_000)
    answer = dynamodb.batch_execute_statement(
        Statements=[
            {"Statement": ledger.delete_claim, "Parameters": [{"S": k}, {"S": CLAIMED}, {"S": "A"}]}
            for k in ("mine", "theirs", "missing")
        ]
    )
    assert codes(answer) == [None, "ConditionalCheckFailed", None]
    assert [r["TableName"] for r in answer["Responses"]] == [ledger.table] * 3
    assert stored(dynamodb, ledger.table, "mine", "paymentKey") is None
    assert stored(dynamodb, ledger.table, "theirs", "paymentKey")["claimant"] == "B"


def test_an_ambiguous_key_is_taken_over_at_once(ledger, dynamodb):
    until = now_ms() + 60_000
    ledger.claim(["k"], "A", until)
    ledger.mark_ambiguous({"k": Entry(CLAIMED)})
    item = stored(dynamodb, ledger.table, "k", "paymentKey")
    assert item["status"] == AMBIGUOUS and "claimant" not in item
    assert ledger.claim(["k"], "B", until) == {"k": Entry(CLAIMED, reclaimed=True)}
    assert stored(dynamodb, ledger.table, "k", "paymentKey")["claimant"] == "B"


def test_an_expired_claim_is_taken_over_and_the_new_one_is_busy(ledger):
    ledger.claim(["k"], "A", now_ms() - 1)  # its invocation has ended
    until = now_ms() + 60_000
    assert ledger.claim(["k"], "B", until) == {"k": Entry(CLAIMED, reclaimed=True)}
    assert ledger.claim(["k"], "C", until + 1) == {"k": Entry(BUSY, until_ms=until)}


def test_a_take_over_decided_on_a_stale_read_is_refused(ledger, dynamodb):
    until = now_ms() + 60_000
    ledger.claim(["k"], "A", now_ms() - 1)
    seen = ledger.requests.read(["k"])["k"]  # C reads the expired claim...
    assert ledger.claim(["k"], "B", until)["k"].state == CLAIMED  # ...B takes it over first
    entry = entry_or_claim(seen, "C", now_ms())
    assert (
        entry.state == CLAIMED and ledger.claims._take_over("k", "C", now_ms(), until, seen, entry) is False
    )
    assert stored(dynamodb, ledger.table, "k", "paymentKey")["claimant"] == "B"


def test_upsert_versions_stale_newer_and_restored(ledger, dynamodb):
    until = now_ms() + 60_000
    ledger.record_created({"k": "h1"}, versions={"k": 3})
    for version in (2, 3):
        assert ledger.claim(["k"], "A", until, versions={"k": version}) == {
            "k": Entry(STALE, "h1", version=3)
        }
    newer = ledger.claim(["k"], "A", until, versions={"k": 4})
    assert newer == {"k": Entry(CLAIMED, "h1", applied=True, version=3)}
    assert ledger.claim(["k"], "B", until, versions={"k": 5}) == {"k": Entry(BUSY, until_ms=until)}
    ledger.restore(newer)
    item = stored(dynamodb, ledger.table, "k", "paymentKey")
    assert (item["status"], item["version"], item["hubspotId"], item["applied"]) == (CREATED, "3", "h1", True)
    ledger.record_created({"u": None})  # created with no version: attribute_not_exists(version)
    assert ledger.claim(["u"], "A", until, versions={"u": 1}) == {"u": Entry(CLAIMED, applied=True)}


# -- the rate slots, through DynamoRateSlots ------------------------------------------------------
@pytest.fixture
def slots_table(dynamodb) -> str:
    return new_table(dynamodb, "name")


def timeline(client, table: str) -> dict:
    item = stored(client, table, "hubspot-rate-timeline", "name") or {}
    return {k: int(v) if k == "queue" else v for k, v in item.items() if k != "name"}


def test_containers_claiming_in_turn_never_get_the_same_slot(dynamodb, slots_table):
    containers = [DynamoRateSlots(slots_table, 20, client=dynamodb, parallel=5) for _ in range(6)]
    t0 = -(-now_ms() // 50) * 50  # on the slots' grid
    got = [start for _ in range(3) for c in containers for start in c.claim(5, t0, t0 + 60_000).starts_ms]
    gap = containers[0].gap_ms
    # a window of 20 at once, then each slot a window and the margin after the one 20 before it
    assert got == [t0 + (i // 20) * gap for i in range(90)]
    assert _decode({"S": timeline(dynamodb, slots_table)["log"]}) == got  # none older than a window yet


def test_a_stale_view_is_refused_and_replaced_by_the_item_as_it_stands(dynamodb, slots_table):
    a = DynamoRateSlots(slots_table, 20, client=dynamodb, parallel=5)
    b = DynamoRateSlots(slots_table, 20, client=dynamodb, parallel=5)
    t0 = -(-now_ms() // 50) * 50  # on the slots' grid
    a.claim(3, t0 + 100, t0 + 60_000)
    b.item.seen = {}  # b believes the item empty
    assert b.claim(2, t0, t0 + 60_000).starts_ms == [t0, t0]  # refused, told, then written beside a's
    assert _decode(b.item.seen["log"]) == [t0, t0] + [t0 + 100] * 3


def test_tickets_line_up_after_the_slots_held(dynamodb, slots_table):
    slots = DynamoRateSlots(slots_table, 20, client=dynamodb, parallel=20)
    t0 = -(-now_ms() // 50) * 50  # on the slots' grid
    slots.claim(20, t0, t0 + 60_000)
    first, second = (DynamoRateSlots(slots_table, 20, client=dynamodb).claim(3, t0, t0) for _ in range(2))
    assert first.retry_at_ms == t0 + slots.gap_ms - TICKET_LEAD_MS
    assert second.retry_at_ms == t0 + slots.gap_ms + 3 * slots.spacing_ms - TICKET_LEAD_MS
    stored_now = timeline(dynamodb, slots_table)
    assert _decode({"S": stored_now["log"]}) == [t0] * 20
    assert stored_now["queue"] == t0 + slots.gap_ms + 6 * slots.spacing_ms


def test_a_refused_update_returns_the_old_item_only_when_asked_and_only_if_there(dynamodb, table):
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "a"}, "n": {"N": "5"}})
    update = {
        "TableName": table,
        "UpdateExpression": "SET #x = :v",
        "ConditionExpression": "attribute_not_exists(#x) AND n > :v",
        "ExpressionAttributeNames": {"#x": "x"},
        "ExpressionAttributeValues": {":v": {"N": "7"}},
    }
    error = refused(
        dynamodb.update_item, Key={"pk": {"S": "a"}}, ReturnValuesOnConditionCheckFailure="ALL_OLD", **update
    )
    assert isinstance(error, dynamodb.exceptions.ConditionalCheckFailedException)
    assert error.operation_name == "UpdateItem"
    assert error.response["Item"] == {"pk": {"S": "a"}, "n": {"N": "5"}}
    assert "Item" not in refused(dynamodb.update_item, Key={"pk": {"S": "a"}}, **update).response
    update["ConditionExpression"] = "attribute_exists(#x) OR n > :v"
    error = refused(
        dynamodb.update_item, Key={"pk": {"S": "b"}}, ReturnValuesOnConditionCheckFailure="ALL_OLD", **update
    )
    assert "Item" not in error.response  # no item there
    update["ConditionExpression"] = "attribute_not_exists(#x)"
    dynamodb.update_item(Key={"pk": {"S": "b"}}, **update)  # a missing item is created
    assert stored(dynamodb, table, "b") == {"pk": "b", "x": "7"}


# -- the raw client: statements -------------------------------------------------------------------
def test_an_insert_of_an_existing_key_fails_alone(dynamodb, table):
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "old"}, "v": {"S": "kept"}})
    insert = f"INSERT INTO \"{table}\" VALUE {{'pk': ?, 'v': ?}}"
    answer = dynamodb.batch_execute_statement(
        Statements=[
            {"Statement": insert, "Parameters": [{"S": "old"}, {"S": "overwritten?"}]},
            {"Statement": insert, "Parameters": [{"S": "new"}, {"S": "inserted"}]},
            {"Statement": "INSERT INTO \"no-such-table\" VALUE {'pk': ?}", "Parameters": [{"S": "x"}]},
            {"Statement": insert, "Parameters": [{"S": "few"}]},
            {"Statement": insert, "Parameters": [{"N": "1"}, {"S": "v"}]},
            {"Statement": f"INSERT INTO \"{table}\" VALUE {{'v': ?}}", "Parameters": [{"S": "no key"}]},
        ]
    )
    assert codes(answer) == ["DuplicateItem", None, "ResourceNotFound"] + ["ValidationError"] * 3
    assert [r.get("TableName") for r in answer["Responses"]] == [table, table] + [None] * 4
    assert stored(dynamodb, table, "old") == {"pk": "old", "v": "kept"}
    assert stored(dynamodb, table, "new") == {"pk": "new", "v": "inserted"}


def test_a_delete_without_the_key_in_its_where_fails_alone(dynamodb, table):
    answer = dynamodb.batch_execute_statement(
        Statements=[{"Statement": f'DELETE FROM "{table}" WHERE "v" = ?', "Parameters": [{"S": "x"}]}]
    )
    assert codes(answer) == ["ValidationError"]
    assert "mandatory equality on all key attributes" in answer["Responses"][0]["Error"]["Message"]


def test_a_delete_compares_numbers_as_numbers(dynamodb, table):
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "a"}, "n": {"N": "5"}})
    delete = f'DELETE FROM "{table}" WHERE "pk" = ? AND "n" = ?'
    answer = dynamodb.batch_execute_statement(
        Statements=[{"Statement": delete, "Parameters": [{"S": "a"}, {"N": "5.0"}]}]
    )
    assert codes(answer) == [None] and stored(dynamodb, table, "a") is None


def test_more_statements_than_the_limit_are_refused_whole(dynamodb, table):
    insert = f"INSERT INTO \"{table}\" VALUE {{'pk': ?}}"
    many = [{"Statement": insert, "Parameters": [{"S": f"k{i}"}]} for i in range(STATEMENTS + 1)]
    assert refusal(dynamodb.batch_execute_statement, Statements=many)[0] == "ValidationException"
    assert stored(dynamodb, table, "k0") is None
    assert codes(dynamodb.batch_execute_statement(Statements=many[:STATEMENTS])) == [None] * STATEMENTS


def test_one_key_twice_in_a_batch_of_statements_is_refused(dynamodb, table):
    """DynamoDB Local 3.3.1 has executed the first statement by then (not asserted); the
    simulation executes none (a refused request applies nothing)."""
    for statement in (
        f"INSERT INTO \"{table}\" VALUE {{'pk': ?}}",
        f'DELETE FROM "{table}" WHERE "pk" = ?',
    ):
        twice = [{"Statement": statement, "Parameters": [{"S": "k"}]}] * 2
        assert refusal(dynamodb.batch_execute_statement, Statements=twice) == (
            "ValidationException",
            "Provided list of item keys contains duplicates",
        )


# -- the raw client: batches ----------------------------------------------------------------------
def test_batch_get_item_limits_keys_and_projects(dynamodb, table):
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "a"}, "status": {"S": "x"}, "n": {"N": "1"}})
    keys = [{"pk": {"S": f"k{i}"}} for i in range(KEYS + 1)]
    get = lambda keys, **spec: dynamodb.batch_get_item(  # noqa: E731
        RequestItems={table: {"Keys": keys, "ConsistentRead": True, **spec}}
    )
    assert refusal(get, keys)[0] == "ValidationException"
    assert get(keys[:KEYS])["Responses"] == {table: []}
    assert refusal(get, [{"pk": {"S": "a"}}] * 2)[1] == "Provided list of item keys contains duplicates"
    answer = get(
        [{"pk": {"S": "a"}}, {"pk": {"S": "none"}}],
        ProjectionExpression="pk, #s, absent",
        ExpressionAttributeNames={"#s": "status"},
    )
    assert answer["Responses"] == {table: [{"pk": {"S": "a"}, "status": {"S": "x"}}]}
    assert answer["UnprocessedKeys"] == {}
    assert (
        "reserved keyword; reserved keyword: status"
        in refusal(get, keys[:1], ProjectionExpression="status")[1]
    )
    assert (
        "unused in expressions"
        in refusal(get, keys[:1], ProjectionExpression="pk", ExpressionAttributeNames={"#s": "s"})[1]
    )
    assert (
        "overlap"
        in refusal(get, keys[:1], ProjectionExpression="n, #n", ExpressionAttributeNames={"#n": "n"})[1]
    )
    assert (
        refusal(get, [{"pk": {"S": "a"}, "n": {"N": "1"}}])[1]
        == "The number of conditions on the keys is invalid"
    )
    assert "Type mismatch for key" in refusal(get, [{"pk": {"N": "1"}}])[1]


def test_batch_write_item_limits_writes(dynamodb, table):
    puts = [{"PutRequest": {"Item": {"pk": {"S": f"w{i}"}}}} for i in range(WRITES + 1)]
    write = lambda requests: dynamodb.batch_write_item(RequestItems={table: requests})  # noqa: E731
    assert refusal(write, puts)[0] == "ValidationException"
    assert stored(dynamodb, table, "w0") is None
    assert write(puts[:WRITES])["UnprocessedItems"] == {}
    assert stored(dynamodb, table, "w0") == {"pk": "w0"}
    assert refusal(write, puts[:1] * 2)[1] == "Provided list of item keys contains duplicates"
    no_key = [{"PutRequest": {"Item": {"x": {"S": "1"}}}}]
    assert refusal(write, no_key)[1] == "One of the required keys was not given a value"


def test_a_missing_table_is_resource_not_found_everywhere(dynamodb):
    key = {"pk": {"S": "k"}}
    for call, args in (
        (dynamodb.get_item, {"TableName": "no-such-table", "Key": key, "ConsistentRead": True}),
        (dynamodb.put_item, {"TableName": "no-such-table", "Item": key}),
        (
            dynamodb.update_item,
            {
                "TableName": "no-such-table",
                "Key": key,
                "UpdateExpression": "SET a = :a",
                "ExpressionAttributeValues": {":a": {"S": "x"}},
            },
        ),
        (
            dynamodb.batch_get_item,
            {"RequestItems": {"no-such-table": {"Keys": [key], "ConsistentRead": True}}},
        ),
        (dynamodb.batch_write_item, {"RequestItems": {"no-such-table": [{"PutRequest": {"Item": key}}]}}),
    ):
        error = refused(call, **args)
        assert isinstance(error, dynamodb.exceptions.ResourceNotFoundException)


def test_a_table_cannot_be_created_twice(dynamodb, table):
    error = refused(
        dynamodb.create_table,
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    assert isinstance(error, dynamodb.exceptions.ResourceInUseException)


# -- the raw client: items and expressions --------------------------------------------------------
def test_numbers_are_stored_normalized_and_missing_items_have_no_item(dynamodb, table):
    numbers = {"a": "012", "b": "1.50", "c": "1e3", "d": "-0", "e": "-0.250"}
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "n"}, **{k: {"N": v} for k, v in numbers.items()}})
    assert stored(dynamodb, table, "n") == {
        "pk": "n",
        "a": "12",
        "b": "1.5",
        "c": "1000",
        "d": "0",
        "e": "-0.25",
    }
    answer = dynamodb.get_item(TableName=table, Key={"pk": {"S": "none"}}, ConsistentRead=True)
    assert "Item" not in answer
    assert refusal(dynamodb.put_item, TableName=table, Item={"pk": {"S": "x"}, "v": {"N": "x1"}})[1] == (
        "A value provided cannot be converted into a number"
    )


def test_a_refused_put_returns_the_old_item_only_when_asked(dynamodb, table):
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "a"}, "b": {"BOOL": True}})
    put = {"TableName": table, "Item": {"pk": {"S": "a"}}, "ConditionExpression": "attribute_not_exists(pk)"}
    error = refused(dynamodb.put_item, **put)
    assert isinstance(error, dynamodb.exceptions.ConditionalCheckFailedException)
    assert (
        "Item" not in error.response
        and error.response["Error"]["Message"] == "The conditional request failed"
    )
    error = refused(dynamodb.put_item, ReturnValuesOnConditionCheckFailure="ALL_OLD", **put)
    assert error.response["Item"] == {"pk": {"S": "a"}, "b": {"BOOL": True}}


VALUES = {
    ":one": {"N": "1"},
    ":five": {"N": "5.0"},
    ":s5": {"S": "5"},
    ":b": {"S": "b"},
    ":c": {"S": "c"},
    ":B": {"S": "B"},
    ":z": {"S": "z"},
    ":t": {"BOOL": True},
}
CONDITIONS = [
    ("n = :five", True),  # numbers compare as numbers
    ("n < :one", False),
    ("n >= :five AND n <= :five", True),
    ("n > :one AND s = :b", True),
    ("n = :one OR n = :five AND s = :z", False),  # AND binds tighter than OR
    ("n = :five OR n = :one AND s = :z", True),
    ("(n = :five OR n = :one) AND s = :z", False),
    ("NOT n = :one", True),
    ("not attribute_exists(absent) and attribute_exists(#s)", True),  # keywords in any case
    ("attribute_not_exists(pk)", False),
    ("s < :c", True),
    ("s < :B", False),  # strings compare by UTF-8 bytes
    ("n = :s5", False),  # another type: not equal...
    ("n <> :s5", True),  # ...and different
    ("n < :s5", False),
    ("absent < :one", False),  # a missing attribute compares false...
    ("absent <> :one", True),  # ...except with <>
    ("b = :t", True),
    (":one = :one", True),
]


def test_conditions_evaluate_as_dynamodb_does(dynamodb, table):
    item = {"pk": {"S": "a"}, "n": {"N": "5"}, "s": {"S": "b"}, "b": {"BOOL": True}}
    dynamodb.put_item(TableName=table, Item=item)
    outcomes = []
    for condition, _ in CONDITIONS:
        used = {k: v for k, v in VALUES.items() if re.search(re.escape(k) + r"(?![A-Za-z0-9_])", condition)}
        names = {"#s": "s"} if "#s" in condition else {}
        try:
            dynamodb.put_item(
                TableName=table,
                Item=item,
                ConditionExpression=condition,
                **({"ExpressionAttributeValues": used} if used else {}),
                **({"ExpressionAttributeNames": names} if names else {}),
            )
            outcomes.append((condition, True))
        except dynamodb.exceptions.ConditionalCheckFailedException:
            outcomes.append((condition, False))
    assert outcomes == CONDITIONS


def test_expressions_dynamodb_refuses(dynamodb, table):
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "a"}})
    key = {"pk": {"S": "a"}}

    def update(expression, condition=None, names=None, values=None):
        args = {"TableName": table, "Key": key, "UpdateExpression": expression}
        args |= {"ConditionExpression": condition} if condition else {}
        args |= {"ExpressionAttributeNames": names} if names is not None else {}
        args |= {"ExpressionAttributeValues": values} if values is not None else {}
        return refusal(dynamodb.update_item, **args)

    one = {":v": {"N": "1"}}
    for args, message in (
        (("SET #x = :v, #x = :w", None, {"#x": "x"}, one | {":w": {"N": "2"}}), "Two document paths overlap"),
        (
            ("SET pk = :v", None, None, {":v": {"S": "b"}}),
            "Cannot update attribute pk. This attribute is part of the key",
        ),
        (("SET #k = :v", None, {"#k": "pk"}, {":v": {"S": "b"}}), "This attribute is part of the key"),
        (
            ("SET x = :v", None, None, one | {":w": {"N": "2"}}),
            "ExpressionAttributeValues unused in expressions: keys: {:w}",
        ),
        (
            ("SET x = :q", None, None, one),
            "attribute value used in expression is not defined; attribute value: :q",
        ),
        (
            ("SET #q = :v", None, {"#x": "x"}, one),
            "attribute name used in the document path is not defined; attribute name: #q",
        ),
        (("SET x = :v", None, {}, one), "ExpressionAttributeNames must not be empty"),
        (("SET missing = :v", None, None, one), "reserved keyword; reserved keyword: missing"),
        (
            ("SET x = :v", "status = :v", None, one),
            "Invalid ConditionExpression: Attribute name is a reserved keyword",
        ),
        (
            ("SET x = :v", "x < :t", None, one | {":t": {"BOOL": True}}),
            "Incorrect operand type for operator or function",
        ),
        (("SET x = :v", "attribute_exists(:v)", None, one), "requires a document path"),
        (("SET x = :v", "x = = :v", None, one), "Invalid ConditionExpression: Syntax error"),
    ):
        error_code, said = update(*args)
        assert error_code == "ValidationException" and message in said, (args, said)
    error = refusal(
        dynamodb.get_item, TableName=table, Key=key, ConsistentRead=True, ExpressionAttributeNames={"#x": "x"}
    )
    assert error == (
        "ValidationException",
        "ExpressionAttributeNames can only be specified when using expressions",
    )
    error = refusal(dynamodb.put_item, TableName=table, Item=key, ExpressionAttributeValues=one)
    assert error[1].startswith("ExpressionAttributeValues can only be specified when using expressions")


@pytest.mark.parametrize("kind", ["ConditionExpression", "UpdateExpression", "ProjectionExpression"])
def test_an_expression_longer_than_the_limit_is_refused(dynamodb, table, kind):
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "a"}})

    def call(length: int):
        if kind == "ProjectionExpression":
            text = "pk".ljust(length)
            return dynamodb.get_item(
                TableName=table, Key={"pk": {"S": "a"}}, ConsistentRead=True, ProjectionExpression=text
            )
        condition = "attribute_not_exists(#x)".ljust(length) if kind == "ConditionExpression" else None
        update = "SET #y = :v".ljust(length) if kind == "UpdateExpression" else "SET #y = :v"
        return dynamodb.update_item(
            TableName=table,
            Key={"pk": {"S": "a"}},
            UpdateExpression=update,
            **({"ConditionExpression": condition} if condition else {}),
            ExpressionAttributeNames={"#y": "y", **({"#x": "x"} if condition else {})},
            ExpressionAttributeValues={":v": {"N": "1"}},
        )

    call(EXPRESSION)
    error_code, message = refusal(call, EXPRESSION + 1)
    assert error_code == "ValidationException"
    assert message.startswith(f"Invalid {kind}: Expression size has exceeded the maximum allowed size;")


# -- the simulation alone: throughput per item (DynamoDB Local does not enforce it) ---------------
@pytest.fixture
def virtual() -> VirtualClock:
    return VirtualClock()


def big(key: str, size: int) -> dict:
    """An item of ``size`` bytes as DynamoDB counts them (names and values)."""
    return {"pk": {"S": key}, "v": {"S": "x" * (size - len("pk") - len(key) - len("v"))}}


def test_an_item_takes_at_most_its_write_units_per_second(virtual):
    """A partition (here: an item) takes at most 1,000 write units per second, also on demand;
    past that a write is refused with ProvisionedThroughputExceededException and costs nothing.
    A write costs ceil(size / 1 KB) units.
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html"""
    assert limits.DDB_ITEM_WCU_PER_S.source.endswith("bp-partition-key-design.html")
    db = sim(on=virtual)
    t = new_table(db)
    limit = limits.DDB_ITEM_WCU_PER_S.value
    db.put_item(TableName=t, Item=big("hot", 1025))  # 2 units
    for _ in range(limit // 5 - 1):
        db.put_item(TableName=t, Item=big("hot", 5 * 1024))  # 5 units each (5 KB before and after)
    second = int(virtual.wall())
    assert db.units[(t, "hot", second)] == Units(write=limit - 3)
    with pytest.raises(db.exceptions.ProvisionedThroughputExceededException):
        db.put_item(TableName=t, Item=big("hot", 5 * 1024))
    assert db.units[(t, "hot", second)] == Units(write=limit - 3)  # refused: not charged
    with pytest.raises(db.exceptions.ProvisionedThroughputExceededException):
        db.put_item(TableName=t, Item=big("hot", 1024))  # 5 units still: the larger of before and after
    db.put_item(TableName=t, Item=big("other", 5 * 1024))  # another item has its own budget
    virtual.sleep(1)
    db.put_item(TableName=t, Item=big("hot", 5 * 1024))  # the next second
    assert db.totals.write == limit - 3 + 5 + 5


def test_a_write_refused_by_its_condition_still_costs_its_units(virtual):
    """A conditional write whose condition fails is refused (ConditionalCheckFailedException) and
    consumes write units all the same, at least 1, per the existing item's size.
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/WorkingWithItems.html#WorkingWithItems.ConditionalUpdate"""
    assert limits.DDB_CONDITIONAL_WRITE_COST.source.endswith("#WorkingWithItems.ConditionalUpdate")
    db = sim(on=virtual)
    t = new_table(db)
    db.put_item(TableName=t, Item=big("k", 3000))  # 3 units
    for _ in range(2):
        with pytest.raises(db.exceptions.ConditionalCheckFailedException):
            db.put_item(TableName=t, Item={"pk": {"S": "k"}}, ConditionExpression="attribute_not_exists(pk)")
    with pytest.raises(db.exceptions.ConditionalCheckFailedException):
        db.update_item(
            TableName=t,
            Key={"pk": {"S": "none"}},
            UpdateExpression="SET #a = :a",
            ConditionExpression="attribute_exists(#a)",
            ExpressionAttributeNames={"#a": "a"},
            ExpressionAttributeValues={":a": {"N": "1"}},
        )
    second = int(virtual.wall())
    assert db.units[(t, "k", second)].write == 3 + 3 + 3
    assert db.units[(t, "none", second)].write == limits.DDB_CONDITIONAL_WRITE_COST.value
    assert db.get_item(TableName=t, Key={"pk": {"S": "none"}}, ConsistentRead=True).get("Item") is None


def test_an_item_takes_at_most_its_read_units_per_second(virtual):
    """A partition takes at most 3,000 strongly consistent read units per second; a read costs
    ceil(size / 4 KB) units, a missing item 1.
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html"""
    assert limits.DDB_ITEM_RCU_PER_S.source.endswith("bp-partition-key-design.html")
    db = sim(on=virtual)
    t = new_table(db)
    db.put_item(TableName=t, Item=big("hot", 4097))
    limit = limits.DDB_ITEM_RCU_PER_S.value
    for _ in range(limit // 2):
        db.get_item(TableName=t, Key={"pk": {"S": "hot"}}, ConsistentRead=True)
    with pytest.raises(db.exceptions.ProvisionedThroughputExceededException):
        db.get_item(TableName=t, Key={"pk": {"S": "hot"}}, ConsistentRead=True)
    keys = [{"pk": {"S": "hot"}}, {"pk": {"S": "missing"}}]
    answer = db.batch_get_item(RequestItems={t: {"Keys": keys, "ConsistentRead": True}})
    assert answer["Responses"] == {t: []}  # the missing one was read (1 unit): no item
    assert answer["UnprocessedKeys"] == {t: {"Keys": keys[:1], "ConsistentRead": True}}
    with pytest.raises(db.exceptions.ProvisionedThroughputExceededException):  # none processed
        db.batch_get_item(RequestItems={t: {"Keys": keys[:1], "ConsistentRead": True}})
    assert db.units[(t, "missing", int(virtual.wall()))] == Units(read=1)
    virtual.sleep(1)
    assert db.get_item(TableName=t, Key={"pk": {"S": "hot"}}, ConsistentRead=True)["Item"]["pk"] == {
        "S": "hot"
    }


def test_batches_past_an_item_s_write_units_are_refused_per_item(virtual):
    """Past an item's write units a statement fails alone (ProvisionedThroughputExceeded), a
    batch write leaves the item unprocessed, and a batch none of whose items can be written fails
    whole. https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html
    and the BatchWriteItem reference (ProvisionedThroughputExceededException)."""
    db = sim(on=virtual)
    t = new_table(db)
    for _ in range(limits.DDB_ITEM_WCU_PER_S.value // 10):
        db.put_item(TableName=t, Item=big("hot", 10 * 1024))
    insert = f"INSERT INTO \"{t}\" VALUE {{'pk': ?}}"
    answer = db.batch_execute_statement(
        Statements=[{"Statement": insert, "Parameters": [{"S": k}]} for k in ("hot", "cold")]
    )
    assert codes(answer) == ["ProvisionedThroughputExceeded", None]
    puts = [{"PutRequest": {"Item": {"pk": {"S": k}}}} for k in ("hot", "new")]
    assert db.batch_write_item(RequestItems={t: puts})["UnprocessedItems"] == {t: puts[:1]}
    with pytest.raises(db.exceptions.ProvisionedThroughputExceededException):
        db.batch_write_item(RequestItems={t: puts[:1]})
    assert db.get_item(TableName=t, Key={"pk": {"S": "hot"}}, ConsistentRead=True)["Item"] == big(
        "hot", 10 * 1024
    )


def test_the_ledger_s_documented_costs_hold(virtual):
    """ledger.py: per new payment 2 write units and no read, 8 requests per 100; a redelivered
    duplicate costs 1 write unit (the refused INSERT) and 1 read unit."""
    db = sim(on=virtual)
    previous = clock.install(virtual)
    try:
        ledger = DynamoLedger(new_table(db, "paymentKey"), client=db, parallelism=1)
        keys = [f"pay-{i:04}" for i in range(100)]
        ledger.claim(keys, "A", virtual.wall_ms() + 60_000)
        ledger.record_created(dict.fromkeys(keys, "h-123"))
        assert (db.totals, db.calls["BatchExecuteStatement"] + db.calls["BatchWriteItem"]) == (
            Units(200, 0),
            8,
        )
        ledger.claim(keys, "B", virtual.wall_ms() + 60_000)
        assert db.totals == Units(300, 100)
    finally:
        clock.install(previous)


def test_what_is_not_simulated_is_refused_loudly(virtual):
    db = sim(on=virtual)
    t = new_table(db)
    key = {"pk": {"S": "k"}}
    for call, args in (
        (db.get_item, {"TableName": t, "Key": key}),  # eventually consistent
        (
            db.get_item,
            {"TableName": t, "Key": key, "ConsistentRead": True, "ReturnConsumedCapacity": "TOTAL"},
        ),
        (db.batch_write_item, {"RequestItems": {t: [{"DeleteRequest": {"Key": key}}]}}),
        (db.put_item, {"TableName": t, "Item": {**key, "l": {"L": []}}}),
        (
            db.put_item,
            {
                "TableName": t,
                "Item": key,
                "ConditionExpression": "a.b = :v",
                "ExpressionAttributeValues": {":v": {"N": "1"}},
            },
        ),
        (
            db.put_item,
            {
                "TableName": t,
                "Item": key,
                "ConditionExpression": "a BETWEEN :v AND :v",
                "ExpressionAttributeValues": {":v": {"N": "1"}},
            },
        ),
        (
            db.put_item,
            {
                "TableName": t,
                "Item": key,
                "ConditionExpression": "begins_with(a, :v)",
                "ExpressionAttributeValues": {":v": {"S": "1"}},
            },
        ),
        (db.update_item, {"TableName": t, "Key": key, "UpdateExpression": "REMOVE a"}),
        (
            db.update_item,
            {
                "TableName": t,
                "Key": key,
                "UpdateExpression": "SET a = a + :v",
                "ExpressionAttributeValues": {":v": {"N": "1"}},
            },
        ),
        (
            db.update_item,
            {
                "TableName": t,
                "Key": key,
                "UpdateExpression": "SET a = :v",
                "ExpressionAttributeValues": {":v": {"N": "1"}},
                "ReturnValues": "ALL_NEW",
            },
        ),
        (db.batch_execute_statement, {"Statements": [{"Statement": f'SELECT * FROM "{t}"'}]}),
        (
            db.create_table,
            {
                "TableName": "x",
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            },
        ),
    ):
        with pytest.raises(NotImplementedError):
            call(**args)
    assert db.get_item(TableName=t, Key=key, ConsistentRead=True).get("Item") is None  # nothing written


# -- the simulation alone: faults ----------------------------------------------------------------
class WatchedClock(VirtualClock):
    """A VirtualClock that notes, at each sleep, what the table holds."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[float, object]] = []
        self.look = lambda: None

    def sleep(self, seconds: float) -> None:
        self.seen.append((seconds, self.look()))
        super().sleep(seconds)


def test_latency_passes_on_the_clock_before_the_request_applies():
    watched = WatchedClock()
    db = sim(DynamoFaults(latency_s=0.008, jitter_s=0.004), on=watched)
    t = new_table(db)
    watched.look = lambda: db.tables[t].items.get("k")
    start = watched.wall()
    db.put_item(TableName=t, Item={"pk": {"S": "k"}})
    db.put_item(TableName=t, Item={"pk": {"S": "k"}, "v": {"S": "2"}})
    assert [item for _, item in watched.seen] == [None, {"pk": {"S": "k"}}]  # slept, then applied
    assert all(0.008 <= s <= 0.012 for s, _ in watched.seen) and len({s for s, _ in watched.seen}) == 2
    assert watched.wall() - start == pytest.approx(sum(s for s, _ in watched.seen), abs=1e-6)


@pytest.mark.parametrize(
    "faults, error_code, status",
    [
        (DynamoFaults(p_request_error=1.0), "InternalServerError", 500),
        (DynamoFaults(p_throttle_request=1.0), "ProvisionedThroughputExceededException", 400),
    ],
)
def test_a_failed_request_applies_nothing(virtual, faults, error_code, status):
    db = sim(faults, on=virtual)
    t = new_table(db)
    insert = f"INSERT INTO \"{t}\" VALUE {{'pk': ?}}"
    calls = [
        lambda: db.put_item(TableName=t, Item={"pk": {"S": "k"}}),
        lambda: db.update_item(
            TableName=t,
            Key={"pk": {"S": "k"}},
            UpdateExpression="SET a = :a",
            ExpressionAttributeValues={":a": {"S": "x"}},
        ),
        lambda: db.batch_write_item(RequestItems={t: [{"PutRequest": {"Item": {"pk": {"S": "k"}}}}]}),
        lambda: db.batch_execute_statement(Statements=[{"Statement": insert, "Parameters": [{"S": "k"}]}]),
        lambda: db.get_item(TableName=t, Key={"pk": {"S": "k"}}, ConsistentRead=True),
        lambda: db.batch_get_item(RequestItems={t: {"Keys": [{"pk": {"S": "k"}}], "ConsistentRead": True}}),
    ]
    for call in calls:
        error = refused(call)
        assert isinstance(error, getattr(db.exceptions, error_code))  # botocore's modelled class
        assert (error.response["Error"]["Code"], error.response["ResponseMetadata"]["HTTPStatusCode"]) == (
            error_code,
            status,
        )
    assert db.tables[t].items == {} and db.totals == Units()
    assert sum(db.calls.values()) == len(calls) + 1  # every request counted (and the CreateTable)


def test_the_ledger_sees_a_failed_request_as_unavailable(virtual):
    db = sim(DynamoFaults(p_request_error=1.0), on=virtual)
    ledger = DynamoLedger(new_table(db, "paymentKey"), client=db, parallelism=1)
    with pytest.raises(LedgerUnavailable, match=r"InternalServerError"):
        ledger.claim(["k"], "A", virtual.wall_ms() + 60_000)


def test_throttled_statements_fail_alone_with_dynamodb_s_codes(virtual):
    db = sim(DynamoFaults(p_statement_throttle=0.5), on=virtual)
    t = new_table(db)
    insert = f"INSERT INTO \"{t}\" VALUE {{'pk': ?}}"
    keys = [f"k{i}" for i in range(STATEMENTS)]
    answer = db.batch_execute_statement(
        Statements=[{"Statement": insert, "Parameters": [{"S": k}]} for k in keys]
    )
    failed = {k for k, c in zip(keys, codes(answer)) if c is not None}
    assert set(codes(answer)) == {None, *STATEMENT_THROTTLES}  # both codes, and successes
    assert set(db.tables[t].items) == set(keys) - failed  # a throttled statement applies nothing


def test_batches_leave_items_unprocessed(virtual):
    db = sim(DynamoFaults(p_unprocessed=0.5), on=virtual)
    t = new_table(db)
    puts = [{"PutRequest": {"Item": {"pk": {"S": f"k{i}"}}}} for i in range(WRITES)]
    left = db.batch_write_item(RequestItems={t: puts})["UnprocessedItems"][t]
    assert 0 < len(left) < WRITES
    assert set(db.tables[t].items) == {p["PutRequest"]["Item"]["pk"]["S"] for p in puts if p not in left}
    spec = {"ConsistentRead": True, "ProjectionExpression": "#k", "ExpressionAttributeNames": {"#k": "pk"}}
    keys = [p["PutRequest"]["Item"] for p in puts]
    answer = db.batch_get_item(RequestItems={t: {"Keys": keys, **spec}})
    unread = answer["UnprocessedKeys"][t]
    assert unread["Keys"] and {k: v for k, v in unread.items() if k != "Keys"} == spec  # as asked
    read = {item["pk"]["S"] for item in answer["Responses"][t]}
    assert read == set(db.tables[t].items) - {k["pk"]["S"] for k in unread["Keys"]}
    db.faults = DynamoFaults(p_unprocessed=1.0)  # all of them left over: still an answer
    assert db.batch_write_item(RequestItems={t: left})["UnprocessedItems"] == {t: left}


def test_the_ledger_gets_through_throttles_and_unprocessed_items(virtual):
    db = sim(DynamoFaults(p_statement_throttle=0.15, p_unprocessed=0.15, latency_s=0.005), on=virtual)
    previous = clock.install(virtual)  # the ledger's backoff sleeps on the virtual clock
    try:
        ledger = DynamoLedger(new_table(db, "paymentKey"), client=db, parallelism=1)
        keys = [f"pay-{i}" for i in range(60)]
        assert ledger.claim(keys, "A", virtual.wall_ms() + 60_000) == dict.fromkeys(keys, Entry(CLAIMED))
        ledger.record_created(dict.fromkeys(keys, "h"))
        assert ledger.claim(keys, "B", virtual.wall_ms() + 60_000) == dict.fromkeys(keys, Entry(CREATED, "h"))
    finally:
        clock.install(previous)


def replay(seed: int) -> list:
    """A fixed series of requests under every fault: when each answered, and what."""
    virtual = VirtualClock()
    faults = DynamoFaults(0.003, 0.002, 0.1, 0.1, 0.3, 0.3)
    db = sim(faults, seed=seed, on=virtual)
    t = "replayed"
    db.create_table(
        TableName=t,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    insert = f"INSERT INTO \"{t}\" VALUE {{'pk': ?}}"
    seen: list = []

    def note(name: str, request, argument) -> None:
        try:
            seen.append((virtual.wall(), name, request(argument)))
        except ClientError as error:
            seen.append((virtual.wall(), name, error.response["Error"]["Code"]))

    for round_ in range(20):
        keys = [f"k{round_}-{i}" for i in range(10)]
        note(
            "statements",
            lambda statements: codes(db.batch_execute_statement(Statements=statements)),
            [{"Statement": insert, "Parameters": [{"S": k}]} for k in keys],
        )
        note(
            "write",
            lambda puts: len(db.batch_write_item(RequestItems={t: puts})["UnprocessedItems"].get(t, [])),
            [{"PutRequest": {"Item": {"pk": {"S": k}}}} for k in keys],
        )
        note(
            "get",
            lambda spec: len(
                db.batch_get_item(RequestItems={t: spec})["UnprocessedKeys"].get(t, {}).get("Keys", [])
            ),
            {"Keys": [{"pk": {"S": k}} for k in keys], "ConsistentRead": True},
        )
    return seen


def test_the_same_seed_replays_the_same_faults():
    seen = replay(7)
    assert seen == replay(7)
    assert seen != replay(8)
    outcomes = [outcome for _, _, outcome in seen]
    assert {"InternalServerError", "ProvisionedThroughputExceededException"} <= set(map(str, outcomes))
    assert {c for o in outcomes if isinstance(o, list) for c in o} >= {None, *STATEMENT_THROTTLES}
    assert any(o for _, name, o in seen if name == "write" and isinstance(o, int))  # items left over
    assert any(o for _, name, o in seen if name == "get" and isinstance(o, int))  # keys left over
