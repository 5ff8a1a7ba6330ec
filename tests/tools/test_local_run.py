"""``make run`` as a new user meets it: `python -m local.stack run` in a subprocess, its summary, its
live progress, its CLI errors, and the HTML report it writes, opened in a real headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from local.stack.__main__ import table_rows, verdict
from local.stack.run_report import dashboard_titles
from local.stack.workload import generate, waves

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"


def local_run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run(
        [sys.executable, "-m", "local.stack", "run", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


# --- CLI mistakes: one line, exit code 2, nothing started ----------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sandbox-faults", "p_503=0.5"], "argument --sandbox-faults: not JSON"),
        (["--sandbox-faults", '{"p_5003": 0.5}'], "argument --sandbox-faults: unknown fault option 'p_5003'"),
        (["--sandbox-faults", "[1]"], "argument --sandbox-faults: must be a JSON object"),
        (["--file", "no-such-payments.jsonl"], "argument --file: no such file: no-such-payments.jsonl"),
        (["--count", "-5"], "argument --count: -5 is not a positive number"),
        (["--invalid-share", "3"], "argument --invalid-share: 3 is not between 0 and 1"),
        (["-p", "QueueVisibilityTimeout=10"], "error: unknown parameter(s) ['QueueVisibilityTimeout']"),
        (["-p", "MaximumConcurrency=1"], "error: parameter MaximumConcurrency='1' does not match"),
        (["-p", "HubSpotRateLimitPer10s=120"], "error: parameter HubSpotRateLimitPer10s"),
        (["-p", "BatchSize"], "error: parameter override 'BatchSize' is not NAME=VALUE"),
    ],
)
def test_a_cli_mistake_is_one_error_line_and_exit_code_2(args, message):
    result = local_run(*args, timeout=120)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert "Traceback" not in result.stderr and "[stack] moto" not in result.stderr


# --- --file: read as the producer reads it, every line sent or reported -----------------------------


def _payment(key: str, seed: int = 5) -> dict:
    body = json.loads(generate(1, invalid_share=0, seed=seed)[0].body)
    return {**body, "paymentKey": key}


def test_a_file_with_a_non_utf8_byte_sends_every_other_line_and_names_what_was_rejected(tmp_path):
    """One byte that is not UTF-8 used to refuse the whole file (exit 2, a position and no line):
    the run reads the file with the producer's reader, so the line is reported by its number and
    every other line is sent; rejected payments are named by paymentKey, or line where none is read."""
    no_amount = _payment("file-no-amount")
    del no_amount["properties"]["hs_initial_amount"]
    lines = [
        json.dumps(_payment("file-ok-1")).encode(),
        json.dumps(_payment("file-bad-utf8")).encode().replace(b'"paymentKey"', b'"paym\xffentKey"'),
        b"",
        json.dumps(no_amount).encode(),
        b"not json at all",
        json.dumps(_payment("file-ok-2", seed=6)).encode(),
    ]
    path = tmp_path / "payments.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = local_run("--file", str(path), "--report-dir", str(tmp_path), "--json", timeout=240)
    # A line that never reached the queue fails the run, as it fails the producer (it exited 0).
    assert result.returncode == 1, result.stderr[-3000:]
    assert (
        "ERROR: 1 lines of the file were not sent: line 2 INVALID_UTF8 (fix them and send those lines again)"
        in result.stderr
    )
    s = json.loads(result.stdout)
    assert s["problems"] == [
        "1 lines of the file were not sent: line 2 INVALID_UTF8 (fix them and send those lines again)"
    ]
    assert s["file"] == {
        "lines_sent": 4,
        "not_sent": [
            {
                "line": 2,
                "code": "INVALID_UTF8",
                "message": "byte 0xff at character 7 is not UTF-8; nothing of the line was sent",
            }
        ],
        "blank": 1,
    }
    assert "[stack] --file line 2: not sent, INVALID_UTF8: byte 0xff at character 7" in result.stderr
    assert s["created"] == 2 and s["rejected"] == 2
    assert s["rejected_payments"] == [
        {"paymentKey": "file-no-amount", "line": 4, "reason": "INVALID_MESSAGE/REQUIRED_PROPERTY"},
        {"line": 5, "reason": "INVALID_MESSAGE/INVALID_JSON"},
    ]
    rows = dict(table_rows(s))
    assert rows["payments sent"] == "4 lines of the file (1 more not sent, 1 blank)"
    assert rows["  rejected"] == "file-no-amount (line 4), line 5"
    assert rows["lines of the file not sent"] == "1: line 2 INVALID_UTF8"


def test_a_csv_file_is_read_as_the_producer_reads_it_header_and_all(tmp_path):
    from local.stack.workload import from_file

    path = tmp_path / "payments.csv"
    path.write_bytes(
        b"paymentKey,hs_initial_amount,hs_currency_code\r\n"
        b"csv-1,10.00,EUR\r\n"
        b"\r\n"
        b'csv-2,"1\xff2",EUR\r\n'
        b"csv-3,12.50,USD\r\n"
    )
    source = from_file(path)
    assert [(it.line, it.payment_key) for it in source.items] == [(2, "csv-1"), (5, "csv-3")]
    assert json.loads(source.items[0].body) == {
        "paymentKey": "csv-1",
        "properties": {"hs_initial_amount": "10.00", "hs_currency_code": "EUR"},
    }
    assert [(r.line, r.code) for r in source.refused] == [(4, "INVALID_UTF8")] and source.blank == 1


# --- --keep-running: the stack keeps draining until the user stops it -------------------------------


def test_keep_running_drains_what_is_sent_after_the_run_until_stopped(tmp_path):
    """--keep-running used to leave the processes up with nothing polling the queue: a payment sent
    afterwards stayed there. The run keeps draining, prints how to send to it (the producer's
    command, run here as printed) and how to stop it, and stops everything when told."""
    import queue
    import signal
    import threading
    import time

    from local.hubspot_sandbox.control import SandboxControl

    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    args = ["--count", "5", "--invalid-share", "0", "--lifecycle-share", "0", "--keep-running"]
    process = subprocess.Popen(
        [sys.executable, "-m", "local.stack", "run", *args, "--report-dir", str(tmp_path), "--json"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stderr], daemon=True).start()

    def wait_for(prefix: str, timeout: float = 180) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                assert process.poll() is None, f"the run ended ({process.returncode}) before {prefix!r}"
                continue
            if line.startswith(prefix):
                return line.rstrip("\n")
        raise AssertionError(f"no line starting {prefix!r}")

    try:
        endpoints = json.loads(wait_for("[stack] endpoints: ").split(": ", 1)[1])
        send = wait_for("[stack] send payments: ").split(": ", 1)[1]
        stop = wait_for("[stack] stop: ")
        assert f"kill -INT {process.pid}" in stop and "Ctrl-C" in stop
        sandbox = SandboxControl(endpoints["hubspot_sandbox"])
        assert len(sandbox.payments()) == 5  # the run's own payments

        payment = {**json.loads(generate(1, invalid_share=0, seed=11)[0].body), "paymentKey": "after-the-run"}
        (tmp_path / "payments.jsonl").write_text(json.dumps(payment) + "\n", encoding="utf-8")
        words = shlex.split(send)
        assignments = dict(w.split("=", 1) for w in words if re.fullmatch(r"[A-Z_]+=.*", w))
        command = [w for w in words if w not in {f"{k}={v}" for k, v in assignments.items()}]
        sent = subprocess.run(
            command, cwd=tmp_path, env={**env, **assignments}, capture_output=True, text=True
        )
        assert sent.returncode == 0 and json.loads(sent.stdout)["sent"] == 1, sent.stderr

        drained = wait_for("[stack] drained 1 messages: ", timeout=60)
        assert drained == "[stack] drained 1 messages: 1 settled, 0 back to the queue"
        stored = [p for p in sandbox.payments() if p["properties"].get("hs_reference_number")]
        assert len(stored) == 6 and payment["properties"]["hs_reference_number"] in {
            p["properties"]["hs_reference_number"] for p in stored
        }
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=120) == 0
        assert wait_for("[stack] stopped", timeout=10) == "[stack] stopped"
        for pid in (endpoints["moto_pid"], endpoints["dynamodb_local_pid"], endpoints["sandbox_pid"]):
            assert (
                not Path(f"/proc/{pid}").exists()
                or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
            )
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


# --- a run with faults: summary, progress, report ----------------------------------------------------

# Two invocations of 1,000 payments (tier 100: MaximumConcurrency 2, 3 calls at once), each HubSpot
# call taking 1 s: an invocation settles its 10 chunks over 4 rounds, so payments are created
# seconds before any invocation ends. 5 % of the calls answer 503 (retried, ambiguous; a payment
# whose chunk got three in a row is held 1 s, not the template's 600).
FAULTS = '{"latency_ms": 1000, "p_503": 0.05}'


@pytest.fixture(scope="module")
def faulty_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("local-run")
    result = local_run(
        "--count",
        "2000",
        "--invalid-share",
        "0.05",
        "--seed",
        "3",
        "-p",
        "HubSpotRateLimitPer10s=100",
        "-p",
        "HubSpotUnavailableHoldSeconds=1",
        "--sandbox-faults",
        FAULTS,
        "--report-dir",
        str(out),
        "--json",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    return summary, result.stderr, out


def test_the_summary_separates_distinct_payments_from_copies_and_its_rows_add_up(faulty_run):
    s, _, out = faulty_run
    assert s["sent"] == 2000 and s["sent_valid"] == 1900 and s["sent_invalid"] == 100
    assert s["created"] == s["sent_valid"]  # every valid payment, once
    assert s["created_copies"] == s["created"] + s["extra_copies"]
    assert s["ambiguous_creates"] == s["emf"]["AmbiguousCreates"]["sum"] > 0  # 503s are ambiguous
    assert sum(n for _, n in s["rejection_reasons"]) == s["rejected"] == 100
    assert s["dead_letter_queue"] == 0 and s["problems"] == []
    assert (
        json.loads(
            Path(s["report"])
            .with_name(Path(s["report"]).name.replace("report.html", "summary.json"))
            .read_text()
        )["created"]
        == s["created"]
    )


def test_every_message_is_counted_once_and_create_mode_says_its_updates_are_duplicates(faulty_run):
    s, _, _ = faulty_run
    life, settled = s["lifecycle"], s["settled"]
    assert life["write_mode"] == "create"
    assert life["payments_with_updates"] == round(1900 * 0.1)  # the default share
    assert s["messages"] == s["sent"] + life["updates_sent"] + life["older_versions_sent_late"]
    assert life["updates_sent"] > life["payments_with_updates"] > life["older_versions_sent_late"] > 0
    assert sum(settled.values()) == s["messages"]  # created + duplicate + rejected + dead-lettered
    assert settled["created"] == s["emf"]["PaymentsCreated"]["sum"] and settled["rejected"] == s["rejected"]
    # create mode: a payment is written once, its later messages are duplicates (an ambiguous 503 adds some)
    assert life["updated"] == 0 and life["at_newest_status"] < life["payments_with_updates"]
    assert settled["duplicate"] >= life["updates_sent"] + life["older_versions_sent_late"]
    rows = dict(table_rows(s))
    assert rows["messages settled"] == (
        f"{s['messages']} = {settled['created']} created + "
        f"{settled['duplicate']} duplicate + "
        f"{settled['rejected']} rejected + 0 dead-lettered"
    )
    assert rows["  create mode: updates are duplicates"] == (
        "by design; -p HubSpotWriteMode=upsert applies them"
    )
    report = Path(s["report"]).read_text(encoding="utf-8")  # the HTML report's summary has the same rows
    assert "<td>  updates applied (PaymentsUpdated)</td><td>0</td>" in report
    assert "-p HubSpotWriteMode=upsert applies them" in report


def test_the_readme_upsert_run_applies_every_update_once_and_refuses_every_late_older_version(tmp_path):
    """docs/local.md, "A payment's lifecycle": the lifecycle in upsert mode, run as written (fewer payments)."""
    page = (ROOT / "docs/local.md").read_text(encoding="utf-8")
    command = re.search(r'^ *\$ make run ARGS="(-p HubSpotWriteMode=upsert[^"]*)"$', page, re.M)
    assert command, "docs/local.md's upsert run"
    result = local_run(
        *shlex.split(command.group(1)),
        "--count",
        "300",
        "--lifecycle-share",
        "0.3",
        "--report-dir",
        str(tmp_path),
        "--json",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    s = json.loads(result.stdout)
    life, settled = s["lifecycle"], s["settled"]
    assert life["write_mode"] == "upsert"
    assert life["payments_with_updates"] == round(s["sent_valid"] * 0.3) > 0
    # sent in waves (updates after their payment, the late copies last): each update is applied, each
    # late older version refused, and every payment that changed ends at its newest status
    assert life["updated"] == life["updates_sent"] > 0
    assert life["stale"] == life["older_versions_sent_late"] > 0
    assert life["at_newest_status"] == life["payments_with_updates"]
    assert s["created"] == s["sent_valid"] and s["extra_copies"] == 0  # an update is no new payment
    assert settled == {
        "created": s["sent_valid"] + life["updated"],
        "duplicate": life["stale"],
        "rejected": s["sent_invalid"],
        "dead_letter_queue": 0,
    }
    assert sum(settled.values()) == s["messages"]
    # the payments' links, written through the associations API after each upsert (again with
    # each update of a linked payment: a link written twice is one link)
    links = s["links"]
    assert links["asked"] > 0 and links["held"] == links["asked"]
    assert links["written_by_links_api"] >= links["asked"]
    rows = dict(table_rows(s))
    assert rows["links (asked / on HubSpot's payments)"] == (
        f"{links['asked']} / {links['asked']} ({links['written_by_links_api']} link writes through the associations API)"
    )
    assert rows["  updates applied (PaymentsUpdated)"] == life["updated"]
    assert rows["  older versions refused (PaymentsStale)"] == life["stale"]
    assert "  create mode: updates are duplicates" not in rows
    waves = re.findall(r"enqueued (\d+) messages in [\d.]+s \(wave (\d) of 4\)", result.stderr)
    assert [int(n) for n, _ in waves] == [
        s["sent"],
        life["payments_with_updates"],
        life["updates_sent"] - life["payments_with_updates"],
        life["older_versions_sent_late"],
    ]


def test_a_payments_lifecycle_grows_its_version_and_its_late_copy_is_older_than_the_newest():
    items = generate(400, invalid_share=0.05, seed=9, lifecycle_share=0.2)
    assert [it.body for it in items if it.role == "first"] != [it.body for it in generate(400, 0.05, 9)]
    by_key: dict[str, list] = {}
    for it in items:
        by_key.setdefault(it.payment_key, []).append(it)
    changing = {k: its for k, its in by_key.items() if len(its) > 1 and k is not None}  # None: malformed JSON
    assert len(changing) == round(380 * 0.2) and all(its[0].kind == "valid" for its in changing.values())
    for its in changing.values():
        sent = [it for it in its if it.role != "late"]
        statuses = [json.loads(it.body)["properties"]["hs_latest_status"] for it in sent]
        assert statuses in (["processing", "succeeded"], ["processing", "succeeded", "refunded"])
        versions = [json.loads(it.body)["version"] for it in sent]
        assert versions == [it.version for it in sent] == sorted(set(versions))
        for late in (it for it in its if it.role == "late"):
            assert late.version < versions[-1] and late.body in {it.body for it in sent}
    late_ones = [it for it in items if it.role == "late"]
    assert late_ones and items[-len(late_ones) :] == late_ones  # after every newer version
    rounds = waves(items)
    assert [{it.role for it in w} for w in rounds] == [{"first"}, {"update"}, {"update"}, {"late"}]
    for w in rounds:  # no payment twice in a wave
        keys = [it.payment_key for it in w if it.payment_key is not None]
        assert len(set(keys)) == len(keys)
    assert sorted(id(it) for w in rounds for it in w) == sorted(map(id, items))


def test_without_a_lifecycle_the_workload_is_what_it_was():
    plain = generate(300, invalid_share=0.05, seed=7)
    assert plain == generate(300, invalid_share=0.05, seed=7, lifecycle_share=0.0)
    assert len(plain) == 300 and {it.role for it in plain} == {"first"} and waves(plain) == [plain]
    assert any('"associations"' in it.body for it in plain if it.valid)


def test_live_progress_moves_as_payments_are_created_not_only_when_an_invocation_ends(faulty_run):
    s, stderr, _ = faulty_run
    progress = re.findall(rf"created (\d+), rejected (\d+), done (\d+)/{s['messages']}", stderr)  # messages
    assert progress, stderr[-2000:]
    assert any(int(created) > 0 and int(done) == 0 for created, _, done in progress), progress


def test_the_table_lists_every_rejection_reason_or_how_many_more(faulty_run):
    from local.stack.__main__ import REASONS_SHOWN, table_rows

    s, _, _ = faulty_run
    rows = dict(table_rows(s))
    assert rows["payments created in HubSpot (sandbox), distinct"] == s["created"]
    assert rows["  extra copies of created payments"] == s["extra_copies"]
    assert rows["  creates with an unknown outcome, per answer (AmbiguousCreates)"] == s["ambiguous_creates"]
    shown = [(label, n) for label, n in table_rows(s) if label.startswith("  INVALID_MESSAGE/")]
    more = [(label, n) for label, n in table_rows(s) if re.fullmatch(r"  \d+ more reasons?", label)]
    assert len(shown) == min(REASONS_SHOWN, len(s["rejection_reasons"]))
    assert sum(n for _, n in shown + more) == s["rejected"]
    # which payments: the generated invalid ones by paymentKey, malformed JSON (no key) by messageId
    named = rows["  rejected"].split(", ")
    assert len(s["rejected_payments"]) == s["rejected"] == 100 and len(named) == 11
    assert named[-1] == "90 more (the JSON summary lists all)"
    assert all(re.fullmatch(r"pay_3_\d{6}|message [0-9a-f-]{36}", who) for who in named[:-1]), named
    assert {r["reason"] for r in s["rejected_payments"]} == {reason for reason, _ in s["rejection_reasons"]}


def test_the_ambiguous_figure_counts_creates_per_answer_and_is_named_so_in_the_docs(faulty_run):
    """2,000 payments gave "payments with an unknown outcome 3630": it counts creates per ambiguous
    answer, not payments. The label and the metric say what they count, and docs/local.md says it."""
    s, _, _ = faulty_run
    labels = [label for label, _ in table_rows(s)]
    assert not any("payments with an unknown outcome" in label for label in labels)
    # every figure but the per-reason and per-metric rows (which name their reason or metric)
    figures = labels[: labels.index("metrics (EMF)") + 1]
    figures = [
        label.strip() for label in figures if not re.match(r"  (INVALID_MESSAGE/|\d+ more reason)", label)
    ]
    documented = re.findall(
        r"^\| `([^`]+)` \|", (ROOT / "docs" / "local.md").read_text(encoding="utf-8"), re.M
    )
    assert [f for f in figures if f not in documented] == [], "docs/local.md: what each figure counts"


def test_the_report_path_is_printed_and_the_report_is_self_contained(faulty_run):
    s, stderr, out = faulty_run
    report = Path(s["report"])
    assert report.parent == out and report.is_file()
    assert f"[stack] report: {report}" in stderr
    text = report.read_text(encoding="utf-8")
    assert "<script" not in text and " src=" not in text and " href=" not in text
    assert set(re.findall(r"https?://[^\s\"'<>]+", text)) == {"http://www.w3.org/2000/svg"}


# --- the report in a real browser -------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium():
    """Debian's chromium; installed here when missing (CI runs as root on a fresh machine)."""
    if not Path(CHROMIUM).exists():
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (`make chromium` as root)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env, timeout=900)
    return CHROMIUM


def open_in_chromium(chromium: str, page: Path, tmp_path: Path) -> tuple[str, list[str]]:
    """The page's DOM after loading, and the console messages Chromium logged for it."""
    result = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    console = [line for line in result.stderr.splitlines() if "CONSOLE" in line or "Refused to" in line]
    return result.stdout, console


class Panels(HTMLParser):
    """Each panel's title and its series: label -> number of points and largest value."""

    def __init__(self) -> None:
        super().__init__()
        self.panels: dict[str, dict[str, tuple[int, float]]] = {}
        self._title: str | None = None
        self._in_h2 = False
        self._series: str | None = None
        self._points = 0
        self._in_series_title = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "h2":
            self._in_h2 = True
        elif tag == "polyline" and "series" in (a.get("class") or ""):
            self._series, self._points = a["data-label"], len(a["points"].split())
        elif tag == "title" and self._series:
            self._in_series_title = True

    def handle_endtag(self, tag):
        if tag == "h2":
            self._in_h2 = False
        elif tag == "title":
            self._in_series_title = False
        elif tag == "polyline":
            self._series = None

    def handle_data(self, data):
        if self._in_h2:
            self._title = data
            self.panels[data] = {}
        elif self._in_series_title and self._series and self._title:
            self.panels[self._title][self._series] = (
                self._points,
                float(re.search(r"max ([\d.e+-]+)", data)[1]),
            )


def test_chromium_console_messages_are_caught(chromium, tmp_path):
    """The check below could fail: a page that logs a console error is seen to."""
    page = tmp_path / "canary.html"
    page.write_text("<!DOCTYPE html><html><body><script>console.error('canary-error')</script></body></html>")
    _, console = open_in_chromium(chromium, page, tmp_path)
    assert any("canary-error" in line for line in console)


def test_the_report_renders_every_dashboard_panel_with_data_and_no_console_errors(
    faulty_run, chromium, tmp_path
):
    s, _, _ = faulty_run
    dom, console = open_in_chromium(chromium, Path(s["report"]), tmp_path)
    assert console == []
    parser = Panels()
    parser.feed(dom)
    panels = parser.panels
    titles = dashboard_titles(ROOT / "template.yaml")
    assert len(titles) == 8 and all(title in panels for title in titles)  # the deployed dashboard's widgets
    for title in titles:
        assert panels[title], f"{title}: no series"
        assert any(n >= 2 or peak > 0 for n, peak in panels[title].values()), f"{title}: no data"

    def peak(title_start: str, label: str) -> float:
        title = next(t for t in panels if t.startswith(title_start))
        return panels[title][label][1]

    assert (
        peak("Payments per outcome", "created") > 0
        and peak("Payments per outcome", "rejected (reported)") > 0
    )
    assert peak("HubSpot requests", "requests per 10 s") > 0 and peak("HubSpot requests", "rate limit") == 100
    assert peak("HubSpot requests", "Remaining") <= 100
    assert peak("HubSpot latency", "HubSpot p50") >= 1000  # the sandbox's injected latency
    assert peak("HubSpot latency", "HubSpot p99") >= peak("HubSpot latency", "HubSpot p50")
    assert (
        peak("Payments queue", "in flight") >= 1000
        and peak("Dead-letter queue", "failure-report queue depth") == 100
    )
    assert (
        peak("Function errors", "invocations") >= 1
        and peak("Function concurrency", "concurrent executions") == 2
    )
    assert peak("Faults injected by the HubSpot sandbox", "503") == s["hubspot_faults"]["503"] > 0


def test_every_dashboard_metric_widget_has_a_local_panel():
    from local.stack.run_report import build_panels

    with pytest.raises(ValueError, match="has no local panel"):
        build_panels_for(["A widget the report does not know"], build_panels)
    titles = dashboard_titles(ROOT / "template.yaml")
    assert [p.title for p in build_panels_for(titles, build_panels)][: len(titles)] == titles


def build_panels_for(titles, build_panels):
    from local.stack.run_report import RunRecorder

    return build_panels(RunRecorder(stack=None, rate_limit=190), [], titles, 60.0)


# --- payments in the dead-letter queue are an error unless asked for ---------------------------------


def test_a_run_that_ends_with_payments_in_the_dead_letter_queue_says_so_and_exits_1(tmp_path):
    # HubSpot down for the whole run, every payment received once at most (no hold beyond the 1 s
    # visibility timeout): all of them end in the DLQ.
    result = local_run(
        "--count",
        "20",
        "--invalid-share",
        "0",
        "--lifecycle-share",
        "0",
        "-p",
        "MaxReceiveCount=1",
        "-p",
        "QueueVisibilityTimeoutSeconds=1",
        "-p",
        "BatchingWindowSeconds=0",
        "-p",
        "HubSpotUnavailableHoldSeconds=0",
        "--sandbox-faults",
        '{"outage": true}',
        "--report-dir",
        str(tmp_path),
        "--json",
    )
    summary = json.loads(result.stdout)
    assert summary["dead_letter_queue"] == 20 and summary["created"] == 0
    assert result.returncode == 1
    assert any(
        line.startswith("ERROR: 20 payments ended in the dead-letter queue")
        for line in result.stderr.splitlines()
    )


def test_expect_dead_letters_makes_them_the_expected_outcome():
    s = {"drained": True, "dead_letter_queue": 3}
    assert verdict(s, expect_dead_letters=True) == (0, [])
    code, problems = verdict(s, expect_dead_letters=False)
    assert code == 1 and problems[0].startswith("3 payments ended in the dead-letter queue")
    assert verdict({"drained": False, "dead_letter_queue": 0}, expect_dead_letters=True)[0] == 1


def test_the_readme_fault_injection_command_keeps_every_payment_out_of_the_dead_letter_queue(tmp_path):
    """docs/local.md, "Faults, and retries that come back quickly": run as written (fewer payments)."""
    page = (ROOT / "docs/local.md").read_text(encoding="utf-8")
    command = re.search(r"^\.venv/bin/python -m local\.stack run (--sandbox-faults .*)$", page, re.M)
    assert command, "docs/local.md's fault-injection command"
    args = shlex.split(command.group(1))
    assert "FunctionTimeoutSeconds=10" in args and "QueueVisibilityTimeoutSeconds=70" in args
    result = local_run(*args, "--count", "200", "--report-dir", str(tmp_path), "--json", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["dead_letter_queue"] == 0 and summary["hubspot_faults"].get("503", 0) > 0
    assert summary["created"] == summary["sent_valid"] and summary["rejected"] == summary["sent_invalid"]


def test_a_sample_that_cannot_be_taken_is_skipped_not_raised_into_the_drain():
    """The sandbox gone (a refused connection): progress keeps the last sample, the drain goes on."""
    import socket
    from types import SimpleNamespace

    from local.hubspot_sandbox.control import SandboxControl
    from local.stack.run_report import RunRecorder

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    stack = SimpleNamespace(
        sandbox=SimpleNamespace(control=SandboxControl(f"http://127.0.0.1:{port}", timeout=2))
    )
    recorder = RunRecorder(stack, rate_limit=190)
    assert recorder.sample({"visible": 1, "in_flight": 0}, {}, force=True) is None
    assert recorder.samples == []
