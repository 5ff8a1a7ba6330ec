"""The AWS adapters against moto in server mode, through AWS_ENDPOINT_URL (as boto3 in Lambda)."""

import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
from payments_drain.adapters.ledger import (
    BUSY,
    CLAIMED,
    CREATED,
    STALE,
    DynamoLedger,
    Entry,
    LedgerUnavailable,
)
from payments_drain.adapters.reports import SqsReporter
from payments_drain.adapters.token import SecretToken, TokenUnavailable

from tests.twins import CANARY_TOKEN


def name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize("value", [CANARY_TOKEN, json.dumps({"token": CANARY_TOKEN}), f"  {CANARY_TOKEN}\n"])
def test_token_from_a_bare_or_json_secret(aws_env, value):
    secret = boto3.client("secretsmanager").create_secret(Name=name("tok"), SecretString=value)["ARN"]
    assert SecretToken(secret).get() == CANARY_TOKEN


def test_token_is_cached_until_forced_past_the_cache(aws_env):
    client = boto3.client("secretsmanager")
    secret = client.create_secret(Name=name("tok"), SecretString="old-token")["ARN"]
    token = SecretToken(secret, max_age_s=300)
    assert token.get() == "old-token"
    client.put_secret_value(SecretId=secret, SecretString="new-token")
    assert token.get() == "old-token"
    assert token.get(force=True) == "new-token"


@pytest.mark.parametrize("value", ['{"token": ""}', '{"placeholder": "x"}', "{not json"])
def test_unusable_secret_is_unavailable_without_echoing_it(aws_env, value):
    secret = boto3.client("secretsmanager").create_secret(Name=name("tok"), SecretString=value)["ARN"]
    with pytest.raises(TokenUnavailable) as error:
        SecretToken(secret).get()
    assert value not in str(error.value)


def test_missing_secret_is_unavailable(aws_env):
    with pytest.raises(TokenUnavailable, match="ResourceNotFoundException"):
        SecretToken("arn:aws:secretsmanager:us-east-1:123456789012:secret:nope").get()


def test_reports_arrive_on_the_queue_one_message_each(aws_env):
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName=name("reports"))["QueueUrl"]
    reports = [
        {
            "messageId": f"m{i}",
            "paymentKey": f"k{i}",
            "payment": "x" * 60_000,
            "reason": {"category": "INVALID_MESSAGE", "message": "m", "code": "INVALID_JSON"},
        }
        for i in range(12)
    ]
    assert SqsReporter(url).send(reports) == set()
    got = []
    while len(got) < 12:
        answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
        got.extend(answer.get("Messages", []))
    assert sorted(json.loads(m["Body"])["messageId"] for m in got) == sorted(f"m{i}" for i in range(12))
    assert got[0]["MessageAttributes"]["reasonCode"]["StringValue"] == "INVALID_JSON"


def test_reports_that_sqs_refuses_are_returned(aws_env):
    missing = aws_env + "/123456789012/no-such-queue"
    assert SqsReporter(missing).send([{"messageId": "m1", "reason": {"category": "X", "message": "y"}}]) == {
        "m1"
    }


@pytest.fixture
def ledger_table(aws_env):
    table = name("ledger")
    client = boto3.client("dynamodb")
    client.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "paymentKey", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "paymentKey", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return table


def test_ledger_claims_once_records_created_and_lets_expired_claims_go(ledger_table):
    ledger = DynamoLedger(ledger_table)
    later = int((time.time() + 60) * 1000)
    keys = [f"k{i}" for i in range(130)]  # more than one BatchGetItem page
    assert {e.state for e in ledger.claim(keys, "req-a", later).values()} == {CLAIMED}
    assert {e.state for e in ledger.claim(keys[:3], "req-b", later).values()} == {BUSY}
    ledger.record_created({"k0": "901", "k1": None})
    entries = ledger.claim(["k0", "k1", "k2"], "req-b", later)
    assert entries["k0"].state == CREATED and entries["k0"].hubspot_id == "901"
    assert entries["k1"].state == CREATED and entries["k1"].hubspot_id is None
    assert entries["k2"].state == BUSY
    expired = DynamoLedger(ledger_table)
    expired.claim(["gone"], "req-crashed", int(time.time() * 1000) - 1)
    assert expired.claim(["gone"], "req-c", later)["gone"].state == CLAIMED


def test_a_key_given_twice_is_claimed_and_released_once(ledger_table):
    """DynamoDB refuses a whole BatchExecuteStatement that names one key twice: each key goes once."""
    ledger = DynamoLedger(ledger_table)
    later = int((time.time() + 60) * 1000)
    entries = ledger.claim(["a", "b", "a"], "req", later)
    assert {k: e.state for k, e in entries.items()} == {"a": CLAIMED, "b": CLAIMED}
    ledger.release(["a", "a"], "req")
    assert ledger.claim(["a"], "req-2", later)["a"] == Entry(CLAIMED)


def test_ledger_writes_ttl_on_every_item(ledger_table):
    ledger = DynamoLedger(ledger_table, retention_days=90)
    ledger.claim(["a"], "req", int((time.time() + 60) * 1000))
    ledger.record_created({"b": "1"})
    items = {i["paymentKey"]["S"]: i for i in boto3.client("dynamodb").scan(TableName=ledger_table)["Items"]}
    assert int(items["b"]["expiresAt"]["N"]) > time.time() + 89 * 86_400
    assert int(items["a"]["expiresAt"]["N"]) > time.time()


def test_ledger_unreachable_raises_ledger_unavailable(aws_env):
    ledger = DynamoLedger("no-such-table")
    with pytest.raises(LedgerUnavailable, match=r"ledger .* failed \(ResourceNotFound"):
        ledger.claim(["k"], "req", int(time.time() * 1000))


def test_ledger_releases_only_its_own_claims_and_flags_reclaimed_expired_ones(ledger_table):
    ledger = DynamoLedger(ledger_table)
    later = int((time.time() + 60) * 1000)
    ledger.claim(["mine", "theirs"], "req-a", later)
    ledger.release(["mine", "theirs"], "req-b")  # not req-b's claims: nothing happens
    assert {e.state for e in ledger.claim(["mine", "theirs"], "req-c", later).values()} == {BUSY}
    ledger.release(["mine"], "req-a")
    released = ledger.claim(["mine"], "req-c", later)["mine"]
    assert released.state == CLAIMED and released.reclaimed is False
    ledger.claim(["died"], "req-crashed", int(time.time() * 1000) - 1)
    assert ledger.claim(["died"], "req-e", later)["died"].reclaimed is True


def test_own_claim_is_kept_and_concurrent_claims_are_won_once_each(ledger_table):
    later = int((time.time() + 60) * 1000)
    keys = [f"race{i}" for i in range(120)]
    ledgers = [DynamoLedger(ledger_table) for _ in range(3)]
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda i: ledgers[i].claim(keys, f"req-{i}", later), range(3)))
    assert all(sum(r[key].state == CLAIMED for r in results) == 1 for key in keys)
    winner = next(i for i, r in enumerate(results) if r["race0"].state == CLAIMED)
    assert ledgers[0].claim(["race0"], f"req-{winner}", later)["race0"].state == CLAIMED  # still ours


def test_an_expired_claim_is_taken_over_by_one_invocation_only(ledger_table):
    """Ours was refused (the key exists) and read an expired claim; another invocation took it
    over before our conditional put: ours is busy, theirs holds it."""
    later = int((time.time() + 60) * 1000)
    ours, theirs = DynamoLedger(ledger_table), DynamoLedger(ledger_table)
    ours.claim(["k1", "k2"], "req-crashed", int(time.time() * 1000) - 1)
    ours.client.meta.events.register(
        "after-call.dynamodb.BatchGetItem", lambda **_: theirs.claim(["k1"], "req-theirs", later)
    )
    entries = ours.claim(["k1", "k2", "k3"], "req-ours", later)
    assert {k: e.state for k, e in entries.items()} == {"k1": BUSY, "k2": CLAIMED, "k3": CLAIMED}
    assert entries["k2"].reclaimed and not entries["k3"].reclaimed
    item = boto3.client("dynamodb").get_item(TableName=ledger_table, Key={"paymentKey": {"S": "k1"}})["Item"]
    assert item["claimant"]["S"] == "req-theirs"


def test_ledger_uses_exactly_the_actions_the_template_grants(ledger_table):
    from local.stack.template import load_yaml

    called: set[str] = set()
    ledger = DynamoLedger(ledger_table)

    def record(model, params, **_):  # a PartiQL statement is authorised by its verb
        if model.name == "BatchExecuteStatement":
            called.update(s["Statement"] for s in params["Statements"])
        else:
            called.add(model.name)

    ledger.client.meta.events.register("before-parameter-build.dynamodb", record)
    later = int((time.time() + 60) * 1000)
    ledger.claim(["new", "expired"], "req-a", int(time.time() * 1000) - 1)
    ledger.claim(["new2", "expired"], "req-b", later)  # INSERT, and a takeover of an expired claim
    ledger.record_created({"new": "1"})
    ledger.mark_ambiguous({"expired": Entry(CLAIMED)})
    ledger.restore({"new": Entry(CLAIMED, "1", applied=True, version=3)})
    ledger.release(["new2"], "req-b")
    iam = {"INSERT": "dynamodb:PartiQLInsert", "DELETE": "dynamodb:PartiQLDelete"}
    used = {iam[op.split()[0]] if " " in op else f"dynamodb:{op}" for op in called}

    def statements(node):
        if isinstance(node, dict):
            if node.get("Sid") == "LedgerReadWrite":
                yield node
            for value in node.values():
                yield from statements(value)
        elif isinstance(node, list):
            for value in node:
                yield from statements(value)

    template = load_yaml((Path(__file__).parents[2] / "template.yaml").read_text())
    [granted] = statements(template["Resources"]["DrainFunction"]["Properties"]["Policies"])
    assert used == set(granted["Action"])


class _ScriptedDynamo(BaseHTTPRequestHandler):
    """DynamoDB over loopback answering BatchExecuteStatement from a script, to reach the
    per-statement errors moto never gives (throttling, access denied)."""

    protocol_version = "HTTP/1.1"
    script: list = []
    seen: list = []
    statements: list = []
    stored = [{"paymentKey": {"S": "c"}, "status": {"S": "created"}, "hubspotId": {"S": "77"}}]

    def do_POST(self):  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        operation = self.headers["X-Amz-Target"].rsplit(".", 1)[-1]
        if operation == "BatchGetItem":
            answer = {"Responses": {"tbl": self.stored}, "UnprocessedKeys": {}}
        else:
            self.seen.append([s["Parameters"][0]["S"] for s in body["Statements"]])
            self.statements.append(body["Statements"][0]["Statement"])
            codes = self.script.pop(0)
            answer = {"Responses": [{"Error": {"Code": c, "Message": c}} if c else {} for c in codes]}
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def scripted_dynamo(aws_env):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ScriptedDynamo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _ScriptedDynamo.seen = []
    _ScriptedDynamo.statements = []
    client = boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{server.server_address[1]}")
    yield client
    server.shutdown()
    server.server_close()


def test_throttled_claims_go_again_alone_and_refused_ones_are_read(scripted_dynamo):
    _ScriptedDynamo.script = [["ThrottlingError", None, "DuplicateItem"], [None]]
    entries = DynamoLedger("tbl", client=scripted_dynamo).claim(
        ["a", "b", "c"], "req", int(time.time() * 1000) + 60_000
    )
    assert {k: e.state for k, e in entries.items()} == {"a": CLAIMED, "b": CLAIMED, "c": CREATED}
    assert entries["c"].hubspot_id == "77"
    assert _ScriptedDynamo.seen == [["a", "b", "c"], ["a"]]


def test_a_statement_error_that_is_not_a_race_makes_the_ledger_unavailable(scripted_dynamo):
    _ScriptedDynamo.script = [[None, "AccessDenied"], [None]]
    with pytest.raises(LedgerUnavailable, match="AccessDenied"):
        DynamoLedger("tbl", client=scripted_dynamo).claim(["a", "b"], "req", int(time.time() * 1000) + 60_000)


def test_upsert_mode_claims_newer_versions_refuses_stale_ones_and_keeps_the_applied_version(ledger_table):
    ledger = DynamoLedger(ledger_table)
    later = int((time.time() + 600) * 1000)
    assert ledger.claim(["p"], "req-a", later, {"p": 5})["p"].state == CLAIMED  # new: an INSERT
    ledger.record_created({"p": "901"}, {"p": 5})
    assert ledger.claim(["p"], "req-b", later, {"p": 5})["p"] == Entry(STALE, "901", version=5)
    assert ledger.claim(["p"], "req-b", later, {"p": 4})["p"].state == STALE  # older: refused, no request
    newer = ledger.claim(["p"], "req-b", later, {"p": 7})["p"]
    assert (newer.state, newer.applied, newer.version, newer.hubspot_id) == (CLAIMED, True, 5, "901")
    assert ledger.claim(["p"], "req-c", later, {"p": 8})["p"].state == BUSY  # req-b sends 7 first
    ledger.restore({"p": newer})  # 7 surely not written: the record of 5 comes back, not a deletion
    assert ledger.claim(["p"], "req-c", later, {"p": 5})["p"].state == STALE
    ledger.mark_ambiguous({"p": newer})  # as if req-c had sent 6 and not learned the outcome
    assert ledger.claim(["p"], "req-d", later, {"p": 4})["p"].state == STALE  # still 5 applied at least
    again = ledger.claim(["p"], "req-d", later, {"p": None})["p"]  # no version: the last write wins
    assert (again.state, again.reclaimed, again.version) == (CLAIMED, True, 5)


def test_a_claim_that_fails_part_way_releases_the_claims_it_made(scripted_dynamo):
    # 60 keys, 3 requests one after the other: the first two claim, the third is refused.
    _ScriptedDynamo.script = [[None] * 25, [None] * 25, ["AccessDenied"] * 10, [None] * 25, [None] * 25]
    keys = [f"k{i}" for i in range(60)]
    with pytest.raises(LedgerUnavailable, match="AccessDenied"):
        DynamoLedger("tbl", client=scripted_dynamo, parallelism=1).claim(
            keys, "req", int(time.time() * 1000) + 60_000
        )
    released = [statement for statement in _ScriptedDynamo.statements[3:]]
    assert all(s.startswith("DELETE") for s in released) and len(released) == 2
    assert sorted(sum(_ScriptedDynamo.seen[3:], [])) == sorted(keys[:50])  # exactly the claims it made


def test_an_ambiguous_payment_is_taken_over_at_once_by_its_next_delivery(ledger_table):
    ledger = DynamoLedger(ledger_table)
    later = int((time.time() + 600) * 1000)
    ledger.claim(["amb", "live"], "req-a", later)
    ledger.mark_ambiguous({"amb": Entry(CLAIMED)})  # req-a finished not knowing whether HubSpot stored it
    entries = ledger.claim(["amb", "live"], "req-b", later)
    assert (entries["amb"].state, entries["amb"].reclaimed) == (
        CLAIMED,
        True,
    )  # not busy until req-a's expiry
    assert entries["live"].state == BUSY
    assert ledger.claim(["amb"], "req-c", later)["amb"].state == BUSY  # req-b holds it now


def test_a_table_name_that_could_leave_its_quotes_in_a_statement_is_refused():
    with pytest.raises(ValueError, match="table name"):
        DynamoLedger('ledger" WHERE 1=1 --')
