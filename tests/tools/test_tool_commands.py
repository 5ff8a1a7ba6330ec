"""Each operator tool's command, as docs/tools.md (and the README) show it, run as written through
its make target: against moto for the queues and the HubSpot sandbox for HubSpot, over loopback."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from payments_drain.core.outcomes import Payment

from local.hubspot_sandbox import ALL_SCOPES
from tests.tools.sqs_helpers import counts, new_queue, take_all
from tests.tools.test_replay import mixed_reports, seed
from tests.twins import CANARY_TOKEN

ROOT = Path(__file__).resolve().parents[2]
TOOLS = (ROOT / "docs/tools.md").read_text(encoding="utf-8")
README = (ROOT / "README.md").read_text(encoding="utf-8")


def shown(pattern: str) -> list[str]:
    """Every command docs/tools.md shows that matches, in a table cell, inline or in a code block."""
    found = re.findall(rf"`({pattern}[^`\n]*)`", TOOLS)
    found += [line.split("  #")[0].strip() for line in TOOLS.splitlines() if re.match(rf"^{pattern}", line)]
    assert found, f"docs/tools.md shows no command matching {pattern!r}"
    return found


def shell_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` as a user's shell has it: without what a parent make passes down (under `make test`,
    MAKELEVEL makes the tool's make print "Entering directory" lines around its output)."""
    return {k: v for k, v in env.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}


def run(command: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """A documented command line, through the shell as a user types it, in the repository root."""
    return subprocess.run(
        ["bash", "-c", command],
        cwd=ROOT,
        env=shell_env({**os.environ, **(env or {})}),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_readme_shows_the_same_command_for_each_tool():
    table = re.findall(r"^\|.* \| `((?:HUBSPOT_TOKEN=\S+ )?make (?:setup-hubspot|producer|replay|reconcile)[^`]*)` \|$",
                       TOOLS, re.M)  # fmt: skip
    assert len(table) == 4
    for command in table:
        assert f"`{command}`" in README, command


def test_producer_dry_run_checks_the_sample_file_without_aws():
    [command] = [c for c in shown('make producer ARGS="events/payments.jsonl --dry-run"') if c.endswith('"')][
        :1
    ]
    env = shell_env({k: v for k, v in os.environ.items() if not k.startswith("AWS_")})  # needs no AWS at all
    done = subprocess.run(
        ["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.splitlines()[-1])
    assert (summary["dryRun"], summary["lines"], summary["valid"], summary["sent"]) == (True, 3, 3, 0)


def test_producer_sends_the_sample_file_to_the_queue_the_environment_names(aws_env):
    [command] = shown('make producer ARGS="events/payments.jsonl"')
    url = new_queue("payments")
    done = run(command, {"PAYMENTS_QUEUE_URL": url})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["sent"] == 3
    keys = sorted(json.loads(m["Body"])["paymentKey"] for m in take_all(url))
    assert keys == ["ch_example_0001", "ch_example_0002", "ch_example_0003"]


def test_the_sample_payments_are_payments_the_drain_accepts():
    from payments_drain.core.messages import parse_record

    from tests.twins import sqs_record

    lines = (ROOT / "events/payments.jsonl").read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        assert isinstance(parse_record(sqs_record(json.loads(line), f"m-{i}"), "payments_drain_key"), Payment)


@pytest.fixture
def queues(aws_env):
    reports, payments = new_queue("reports"), new_queue("payments")
    seed(reports, mixed_reports())
    return {"FAILURE_QUEUE_URL": reports, "PAYMENTS_QUEUE_URL": payments}


def test_replay_dry_run_lists_every_report_and_sends_nothing(queues):
    [command] = shown('make replay ARGS="--dry-run"')
    done = run(command, queues)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.splitlines()[-1])
    assert (summary["dryRun"], summary["matched"], summary["replayed"]) == (True, 5, 0)
    assert counts(queues["PAYMENTS_QUEUE_URL"]) == (0, 0) and counts(queues["FAILURE_QUEUE_URL"]) == (5, 0)


def test_replay_by_category_and_code_as_the_example_shows(queues):
    [command] = shown('make replay ARGS="--category VALIDATION_ERROR --code INVALID_OPTION"')
    done = run(command, queues)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["replayed"] == 1
    assert [json.loads(m["Body"])["paymentKey"] for m in take_all(queues["PAYMENTS_QUEUE_URL"])] == [
        "k-option"
    ]


@pytest.fixture
def hubspot(hubspot_sandbox):
    hubspot_sandbox.control.set_config(tokens={CANARY_TOKEN: {"scopes": list(ALL_SCOPES)}})
    return hubspot_sandbox


def test_setup_hubspot_against_the_sandbox_as_documented(hubspot_sandbox):
    """docs/tools.md, "Against the local HubSpot sandbox": its default token, the port it was started on."""
    start, command = shown("python -m local.hubspot_sandbox --port 8765 &")[0], None
    [command] = shown("HUBSPOT_TOKEN=sandbox-token make setup-hubspot")
    assert "--port 8765" in start and "http://127.0.0.1:8765" in command
    done = run(command.replace("http://127.0.0.1:8765", hubspot_sandbox.base_url))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].startswith(
        "ready: deploy with HubSpotUniqueProperty=payments_drain_key"
    )
    assert "sandbox-token" not in done.stdout + done.stderr


def test_setup_hubspot_with_the_token_in_the_environment(hubspot):
    [command] = [
        c for c in shown("HUBSPOT_TOKEN=pat-na1-... make setup-hubspot") if c.endswith("setup-hubspot")
    ][:1]
    done = run(command.replace("pat-na1-...", CANARY_TOKEN), {"HUBSPOT_BASE_URL": hubspot.base_url})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].startswith("ready:")
    assert CANARY_TOKEN not in done.stdout + done.stderr


def test_reconcile_the_sample_file_after_the_drain_created_it(hubspot, aws_env):
    from payments_drain.adapters.hubspot import HubSpotClient
    from payments_drain.core.messages import parse_record

    from tests.twins import sqs_record

    hubspot.control.set_config(unique_property="payments_drain_key")
    lines = (ROOT / "events/payments.jsonl").read_text(encoding="utf-8").splitlines()
    payments = [
        parse_record(sqs_record(json.loads(line), f"m-{i}"), "payments_drain_key")
        for i, line in enumerate(lines)
    ]
    answer = HubSpotClient(hubspot.base_url).write_batch(
        [p.hubspot_input() for p in payments[:2]], CANARY_TOKEN
    )
    assert answer.status == 201  # the third never reached HubSpot
    [command] = [c for c in shown('make reconcile ARGS="--file events/payments.jsonl"') if c.endswith('"')][
        :1
    ]
    env = {"HUBSPOT_TOKEN": CANARY_TOKEN, "HUBSPOT_BASE_URL": hubspot.base_url, "LEDGER_TABLE_NAME": ""}
    done = run(command, env)
    # A payment missing: reconcile's exit code 1, which make reports in its error line and exits 2
    assert done.returncode == 2 and done.stderr.splitlines()[-1].endswith("Error 1"), done.stderr
    findings = [json.loads(line) for line in done.stdout.splitlines()]
    assert findings[-1]["summary"]["expected"] == 2 and findings[-1]["summary"]["missing"] == 1
    assert [f["paymentKey"] for f in findings if f.get("status") == "missing"] == ["ch_example_0003"]
    assert CANARY_TOKEN not in done.stdout + done.stderr
