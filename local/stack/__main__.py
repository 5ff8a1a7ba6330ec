"""``python -m local.stack run [options]``: the whole pipeline locally, with a summary (docs/local.md)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .dynamodb_local import MissingPrerequisite
from .template import DEFAULT_TEMPLATE, TemplateError, parse_overrides
from .workload import PaymentFile, from_file, generate, waves

# The producer's file reader (payments_drain.core.payment_files) comes from the layer, as the tools'
# commands find it (PYTHONPATH=layers/shared); the stack's containers get the layer from the template.
LAYER = Path(__file__).resolve().parents[2] / "layers" / "shared"
if str(LAYER) not in sys.path:
    sys.path.append(str(LAYER))

EMF_METRICS = (
    "PaymentsReceived",
    "PaymentsCreated",
    "PaymentsDuplicate",
    "PaymentsUpdated",
    "PaymentsStale",
    "PaymentsRejected",
    "PaymentsRetried",
    "AmbiguousCreates",
    "PaymentLinksWritten",
    "HubSpotRequests",
    "HubSpotThrottled",
    "HubSpotErrors",
    "HubSpotLatency",
    "BatchDuration",
)
REASONS_SHOWN = 8  # rejection reasons listed in the table; the rest are one "N more" row
NAMES_SHOWN = 10  # rejected payments (and refused lines) named in the table; the JSON summary has all
DEFAULT_REPORT_DIR = "local-runs"


# --- argument types: a mistake is one line on stderr and exit code 2, as argparse does ---------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def _faults(text: str) -> dict[str, Any]:
    """--sandbox-faults: a JSON object of the sandbox's fault options, checked by the sandbox's own rules."""
    from local.hubspot_sandbox.config import normalise_faults

    try:
        value = json.loads(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not JSON ({error}); e.g. '{{\"p_503\": 0.1}}'") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object, e.g. '{\"p_503\": 0.1}'")
    try:
        normalise_faults(value, base={})
    except (TypeError, ValueError) as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return value


def _existing_file(text: str) -> str:
    if not Path(text).is_file():
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m local.stack", description="The payments drain on a local stack."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run", help="start moto + sandbox, enqueue a workload, drain it with the real handler"
    )
    run.add_argument(
        "--template", default=str(DEFAULT_TEMPLATE), help="SAM template (default: template.yaml)"
    )
    run.add_argument(
        "--parameter",
        "-p",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="template parameter override, like sam's --parameter-overrides (repeatable)",
    )
    run.add_argument("--count", type=_positive_int, default=2000, help="payments to generate (default 2000)")
    run.add_argument(
        "--invalid-share", type=_share, default=0.03, help="share of invalid payments (default 0.03)"
    )
    run.add_argument(
        "--lifecycle-share",
        type=_share,
        default=0.1,
        help="share of valid payments that change: status updates with growing versions, some "
        "sent again late (default 0.1; docs/local.md)",
    )
    run.add_argument("--seed", type=int, default=1, help="workload and sandbox seed (default 1)")
    run.add_argument(
        "--file",
        type=_existing_file,
        help="send this file instead of generating: JSON lines or CSV (.csv), read as the producer "
        "reads it; a line that cannot travel on SQS is reported by its number, not sent",
    )
    run.add_argument(
        "--sandbox-faults",
        type=_faults,
        default=None,
        metavar="JSON",
        help='sandbox fault options, e.g. \'{"p_503": 0.05, "latency_ms": 30}\' (docs/sandbox.md)',
    )
    run.add_argument(
        "--rate-limit",
        type=_positive_int,
        default=None,
        help="the sandbox's requests per 10 s (default: the template's HubSpotRateLimitPer10s)",
    )
    run.add_argument(
        "--timeout", type=_positive_float, default=600.0, help="give up draining after this many seconds"
    )
    run.add_argument(
        "--expect-dead-letters",
        action="store_true",
        help="payments ending in the dead-letter queue are what this run is for: exit 0 anyway",
    )
    run.add_argument(
        "--report-dir",
        default=DEFAULT_REPORT_DIR,
        help=f"where the HTML report and the JSON summary go (default {DEFAULT_REPORT_DIR}/)",
    )
    run.add_argument("--no-moto-patch", action="store_true", help="run stock moto (slow; for comparisons)")
    run.add_argument(
        "--keep-running",
        action="store_true",
        help="after the summary, keep the stack up and draining what is sent to its payments queue "
        "until stopped (Ctrl-C); prints how to send to it",
    )
    run.add_argument("--logs", action="store_true", help="echo the function's log lines to stderr")
    run.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    return parser


class Progress:
    """Live progress on stderr, from samples taken while payments settle (not only when an invocation ends).

    On a terminal one line is rewritten in place; elsewhere (CI, a pipe) a line is printed when the
    numbers changed, at most once a second."""

    def __init__(self, total: int, recorder: Any) -> None:
        self.total = total
        self.recorder = recorder
        self.tty = sys.stderr.isatty()
        self.last = 0.0
        self.last_text = ""

    def __call__(self, counts: dict, stats: dict) -> None:
        sample = self.recorder.sample(counts, stats)
        if sample is None:
            return
        now = time.monotonic()
        text = (
            f"created {sample.created}, rejected {sample.reports}, done {sample.deleted}/{self.total}, "
            f"retried {sample.retried} | queue {sample.visible} waiting, {sample.in_flight} in flight, "
            f"DLQ {sample.dead_letters} | invocations {sample.invocations}, "
            f"HubSpot requests {sample.requests}"
        )
        if self.tty:
            sys.stderr.write("\r" + f"[drain {sample.t:5.1f}s] {text}".ljust(150)[:200])
        elif text != self.last_text and now - self.last >= 1.0:
            sys.stderr.write(f"[drain {sample.t:5.1f}s] {text}\n")
            self.last = now
        else:
            return
        self.last_text = text
        sys.stderr.flush()

    def done(self) -> None:
        if self.tty:
            sys.stderr.write("\n")


def _reason(report: dict) -> str:
    reason = report.get("reason") or {}
    return f"{reason.get('category', '?')}/{reason.get('code') or '-'}"


def rejected_payments(reports: list[dict], enq: Any) -> list[dict]:
    """Whom each failure report is about: its paymentKey (as the drain read it), the line of
    ``--file`` it came from, else the SQS messageId (a generated body with no readable key)."""
    out = []
    for report in reports:
        item = enq.by_message_id.get(report.get("messageId"))
        who: dict[str, Any] = {}
        if report.get("paymentKey") not in (None, "", report.get("messageId")):  # no key read: its messageId
            who["paymentKey"] = report["paymentKey"]
        if item is not None and item.line is not None:
            who["line"] = item.line
        if not who:
            who["messageId"] = report.get("messageId")
        out.append({**who, "reason": _reason(report)})
    # by line, else by key; those known only by their messageId last
    return sorted(
        out,
        key=lambda r: ("messageId" in r, r.get("line", 0), r.get("paymentKey", ""), r.get("messageId", "")),
    )


def summarise(
    stack: Any, enq: Any, result: Any, elapsed_total: float, source: PaymentFile | None = None
) -> dict:
    payments = stack.sandbox.control.payments()
    stats = stack.sandbox.control.stats()
    reports = stack.failure_reports()
    dlq = stack.dead_letters()
    reasons: Counter = Counter(_reason(r) for r in reports)
    # A payment is its key (paymentKey, else the messageId, as the ledger keys it); the sandbox
    # stores each create under the messageId it came with, so copies of one payment share a key.
    keys = set()
    for record in payments:
        item = enq.by_message_id.get(record.get("objectWriteTraceId"))
        keys.add((item.payment_key if item is not None else None) or record.get("objectWriteTraceId"))
    by_status = stats.get("requests_by_status", {})
    metrics = stack.sink.metrics()
    invocations = max(1, result.stats["invocations"])
    # A payment's first message stands for the payment; its updates and late copies are more messages.
    firsts = [it for it in enq.by_message_id.values() if it.role == "first"]
    valid = sum(1 for it in firsts if it.kind == "valid")
    invalid = sum(1 for it in firsts if it.kind not in ("valid", "file", "raw"))
    retried_receives = sum(max(0, n - 1) for n in _receive_counts(stack).values())
    emf = {name: metrics[name] for name in EMF_METRICS if name in metrics}

    def total(name: str) -> int:
        return int(emf.get(name, {}).get("sum", 0))

    return {
        "sent": len(firsts),
        "sent_valid": valid,
        "sent_invalid": invalid,
        "messages": len(enq.message_ids),
        "lifecycle": lifecycle(stack, enq, payments, total),
        "settled": {
            "created": total("PaymentsCreated"),
            "duplicate": total("PaymentsDuplicate"),
            "rejected": len(reports),
            "dead_letter_queue": len(dlq),
        },
        "created": len(keys),
        "created_copies": len(payments),
        "extra_copies": len(payments) - len(keys),
        "ambiguous_creates": total("AmbiguousCreates"),
        "rejected": len(reports),
        "rejection_reasons": reasons.most_common(),
        "rejected_payments": rejected_payments(reports, enq),
        **(
            {
                "file": {
                    "lines_sent": len(source.items),
                    "not_sent": [r.as_dict() for r in source.refused],
                    "blank": source.blank,
                }
            }
            if source is not None
            else {}
        ),
        "links": links_summary(enq, payments, total),
        "retried_receives": retried_receives,
        "dead_letter_queue": len(dlq),
        "left_in_queue": stack.queue_counts(),
        "hubspot_requests": stats.get("requests_total", 0),
        "hubspot_429": int(by_status.get("429", 0)),
        "hubspot_faults": stats.get("faults_injected", {}),
        "trace_ids_stored_more_than_once": stats.get("trace_ids_stored_more_than_once", 0),
        "enqueue_s": round(enq.elapsed_s, 2),
        "drain_s": round(result.elapsed_s, 2),
        "elapsed_s": round(elapsed_total, 2),
        "messages_per_s": round(len(enq.message_ids) / result.elapsed_s, 1) if result.elapsed_s else None,
        "drained": result.empty,
        "invocations": result.stats["invocations"],
        "cold_starts": result.stats["cold_starts"],
        "max_concurrent": result.stats["max_concurrent"],
        "whole_batch_failures": result.stats["whole_batch_failures"],
        "timeouts": result.stats["timeouts"],
        "batch_sizes": result.stats["batch_sizes"],
        "emf": emf,
        "emf_per_invocation": {name: round(m["sum"] / invocations, 1) for name, m in emf.items()},
    }


def lifecycle(stack: Any, enq: Any, payments: list[dict], total: Any) -> dict:
    """The payments that changed: what was sent (updates, older versions late), what the drain made of it
    (EMF PaymentsUpdated, PaymentsStale), and how many of them HubSpot holds at their newest status."""
    newest: dict[str, tuple[int, str]] = {}  # paymentKey -> (version, status) of its newest message
    updates = late = 0
    for it in enq.by_message_id.values():
        updates += it.role == "update"
        late += it.role == "late"
        if it.version is not None and it.payment_key and it.version > newest.get(it.payment_key, (-1, ""))[0]:
            newest[it.payment_key] = (it.version, json.loads(it.body)["properties"]["hs_latest_status"])
    changed = {it.payment_key for it in enq.by_message_id.values() if it.role != "first"}
    unique = stack.function.environment.get("HUBSPOT_UNIQUE_PROPERTY") or None
    at_newest = set()
    for record in payments:
        item = enq.by_message_id.get(record.get("objectWriteTraceId"))
        key = record["properties"].get(unique) if unique else None
        key = key or (item.payment_key if item is not None else None)
        if key in changed and record["properties"].get("hs_latest_status") == newest[key][1]:
            at_newest.add(key)
    return {
        "write_mode": stack.function.environment.get("HUBSPOT_WRITE_MODE", "create"),
        "payments_with_updates": len(changed),
        "updates_sent": updates,
        "older_versions_sent_late": late,
        "updated": total("PaymentsUpdated"),
        "stale": total("PaymentsStale"),
        "at_newest_status": len(at_newest),
    }


def _receive_counts(stack: Any) -> dict[str, int]:
    """messageId -> highest ApproximateReceiveCount the function saw (from the invoked events)."""
    counts: dict[str, int] = {}
    for b in stack.batches:
        for mid, n in zip(b["messageIds"], b.get("receiveCounts", [])):
            counts[mid] = max(counts.get(mid, 0), n)
    return counts


def links_summary(enq: Any, payments: list[dict], total: Any) -> dict:
    """The links (associations) the valid messages asked for, by payment and target id, and those
    HubSpot's payments hold at the end (written by batch/create in create mode, by the associations
    API in upsert mode: PaymentLinksWritten)."""
    asked = set()
    for item in enq.by_message_id.values():
        if item.kind != "valid":
            continue
        body = json.loads(item.body)
        for association in body.get("associations") or ():
            asked.add((item.payment_key, str(association["to"]["id"])))
    held = sum(len(p.get("associations") or ()) for p in payments)
    return {"asked": len(asked), "held": held, "written_by_links_api": total("PaymentLinksWritten")}


def _named(who: list[str]) -> str:
    """Up to NAMES_SHOWN of them, then how many more the JSON summary lists."""
    more = len(who) - NAMES_SHOWN
    return ", ".join(who[:NAMES_SHOWN]) + (f", {more} more (the JSON summary lists all)" if more > 0 else "")


def _who(rejected: dict) -> str:
    key, line = rejected.get("paymentKey"), rejected.get("line")
    if key is not None:
        return f"{key} (line {line})" if line is not None else key
    return f"line {line}" if line is not None else f"message {rejected['messageId']}"


def table_rows(s: dict) -> list[tuple[str, Any]]:
    life = s["lifecycle"]
    file = s.get("file")
    sent = (
        f"{s['sent']} lines of the file ({len(file['not_sent'])} more not sent, {file['blank']} blank)"
        if file is not None
        else f"{s['sent']} ({s['sent_valid']} valid, {s['sent_invalid']} invalid)"
    )
    rows: list[tuple[str, Any]] = [
        ("payments sent", sent),
        (
            "messages sent",
            (
                f"{s['messages']}: one per payment, {life['updates_sent']} status updates of "
                f"{life['payments_with_updates']} payments, {life['older_versions_sent_late']} "
                "older versions again, late"
            ),
        ),
        ("payments created in HubSpot (sandbox), distinct", s["created"]),
        ("  extra copies of created payments", s["extra_copies"]),
        ("  creates with an unknown outcome, per answer (AmbiguousCreates)", s["ambiguous_creates"]),
        (
            "links (asked / on HubSpot's payments)",
            f"{s['links']['asked']} / {s['links']['held']}"
            + (
                f" ({s['links']['written_by_links_api']} link writes through the associations API)"
                if s["links"]["written_by_links_api"]
                else ""
            ),
        ),
        ("messages rejected (failure reports)", s["rejected"]),
    ]
    reasons = s["rejection_reasons"]
    for reason, n in reasons[:REASONS_SHOWN]:
        rows.append(("  " + reason, n))
    if len(reasons) > REASONS_SHOWN:
        rest = reasons[REASONS_SHOWN:]
        rows.append((f"  {len(rest)} more reason{'s' if len(rest) > 1 else ''}", sum(n for _, n in rest)))
    if s["rejected_payments"]:
        rows.append(("  rejected", _named([_who(r) for r in s["rejected_payments"]])))
    if file is not None and file["not_sent"]:
        rows.append(
            (
                "lines of the file not sent",
                f"{len(file['not_sent'])}: "
                + _named([f"line {r['line']} {r['code']}" for r in file["not_sent"]]),
            )
        )
    rows += lifecycle_rows(s)
    rows += [
        ("receives beyond a message's first (retries)", s["retried_receives"]),
        ("messages in the dead-letter queue", s["dead_letter_queue"]),
        (
            "left in the payments queue",
            f"{s['left_in_queue']['visible']} waiting, {s['left_in_queue']['in_flight']} in flight",
        ),
        ("HubSpot requests / 429s", f"{s['hubspot_requests']} / {s['hubspot_429']}"),
        ("HubSpot faults injected", json.dumps(s["hubspot_faults"]) if s["hubspot_faults"] else "none"),
        ("messages stored more than once (sandbox)", s["trace_ids_stored_more_than_once"]),
        (
            "invocations (cold starts, max concurrent)",
            f"{s['invocations']} ({s['cold_starts']}, {s['max_concurrent']})",
        ),
        ("invocations failed whole / timed out", f"{s['whole_batch_failures']} / {s['timeouts']}"),
        ("enqueue / drain / total time", f"{s['enqueue_s']} s / {s['drain_s']} s / {s['elapsed_s']} s"),
        ("messages per second (drain)", s["messages_per_s"]),
    ]
    if s["emf"]:
        rows.append(("metrics (EMF)", "sum over the run / avg / max per invocation"))
        for name, m in s["emf"].items():
            unit = " ms" if name in ("HubSpotLatency", "BatchDuration") else ""
            rows.append((f"  {name}", f"{m['sum']:.0f} / {m['avg']:.1f}{unit} / {m['max']:.0f}{unit}"))
    return rows


def lifecycle_rows(s: dict) -> list[tuple[str, Any]]:
    """How every message ended, adding up to the messages sent, and what became of the updates."""
    life, settled = s["lifecycle"], s["settled"]
    done = sum(settled.values())
    left = s["messages"] - done
    upsert = life["write_mode"] == "upsert"
    created = f"{settled['created']} created" + (f" ({life['updated']} of them updates)" if upsert else "")
    rows: list[tuple[str, Any]] = [
        (
            "messages settled",
            (
                f"{s['messages']} = {created} + {settled['duplicate']} duplicate + "
                f"{settled['rejected']} rejected + {settled['dead_letter_queue']} dead-lettered"
                + (f" + {left} unsettled" if left else "")
            ),
        ),
        ("  updates applied (PaymentsUpdated)", life["updated"]),
        ("  older versions refused (PaymentsStale)", life["stale"]),
        (
            "  payments with updates at their newest status",
            f"{life['at_newest_status']} of {life['payments_with_updates']}",
        ),
    ]
    if not upsert and life["updates_sent"] + life["older_versions_sent_late"]:
        rows.append(
            ("  create mode: updates are duplicates", "by design; -p HubSpotWriteMode=upsert applies them")
        )
    return rows


def print_table(s: dict, out: Any = sys.stdout) -> None:
    rows = table_rows(s)
    width = max(len(r[0]) for r in rows) + 2
    out.write("\n" + "-" * (width + 40) + "\n")
    for label, value in rows:
        out.write(f"{label.ljust(width)}{value}\n")
    out.write("-" * (width + 40) + "\n")


def verdict(s: dict, expect_dead_letters: bool) -> tuple[int, list[str]]:
    """The exit code and what went wrong: the queue not drained, payments in the dead-letter queue,
    or lines of ``--file`` that could not be sent (the producer exits 1 for those too)."""
    problems = []
    not_sent = (s.get("file") or {}).get("not_sent") or []
    if not_sent:
        problems.append(
            f"{len(not_sent)} lines of the file were not sent: "
            + _named([f"line {r['line']} {r['code']}" for r in not_sent])
            + " (fix them and send those lines again)"
        )
    if not s["drained"]:
        problems.append("the payments queue was not empty when the drain timed out (--timeout)")
    if s["dead_letter_queue"] and not expect_dead_letters:
        problems.append(
            f"{s['dead_letter_queue']} payments ended in the dead-letter queue: they were received "
            "MaxReceiveCount times without an outcome (with injected faults, keep "
            "QueueVisibilityTimeoutSeconds at least 6 x FunctionTimeoutSeconds, see docs/local.md, "
            '"Faults, and retries that come back quickly"; --expect-dead-letters if this is what the run is for)'
        )
    return (1 if problems else 0), problems


def send_and_drain(
    stack: Any, in_waves: list[list[Any]], recorder: Any, progress: Progress, timeout: float
) -> tuple[Any, Any]:
    """Each wave enqueued once the one before is drained, as a producer sends a payment's changes when
    they happen: two messages of one payment in flight at once would make one of them wait for the
    other's invocation (CLAIMED_ELSEWHERE: back after the queue's visibility timeout)."""
    from .esm import DrainResult
    from .stack import Enqueued

    esm = stack.esm(on_batch=recorder.on_batch)
    enq, drained, started = Enqueued(), 0.0, time.monotonic()
    result = DrainResult(True, 0.0, esm.stats.as_dict())  # nothing to send (a file of unsendable lines)
    try:
        for n, wave in enumerate(in_waves):
            part = stack.enqueue(wave)
            enq.message_ids += part.message_ids
            enq.by_message_id.update(part.by_message_id)
            enq.elapsed_s += part.elapsed_s
            print(
                f"[stack] enqueued {len(part.message_ids)} messages in {part.elapsed_s:.2f}s"
                + (f" (wave {n + 1} of {len(in_waves)})" if len(in_waves) > 1 else ""),
                file=sys.stderr,
            )
            result = esm.drain_until_empty(
                timeout=max(0.0, timeout - (time.monotonic() - started)), progress=progress, stop_after=False
            )
            drained += result.elapsed_s
            if not result.empty:
                break
    finally:
        esm.stop()
        stack.esm_instance = None
    return enq, DrainResult(result.empty, drained, result.stats)


def keep_draining(stack: Any) -> None:
    """--keep-running: the event source mapping keeps polling the payments queue, as Lambda's does,
    until the user stops the run (Ctrl-C, SIGINT or SIGTERM); each invocation is one line on stderr."""

    def said(batch: dict) -> None:
        print(
            f"[stack] drained {batch['size']} messages: {batch['deleted']} settled, "
            f"{batch['retried']} back to the queue"
            + (f" (whole batch failed: {batch['reason']})" if batch["wholeBatchFailed"] else ""),
            file=sys.stderr,
            flush=True,
        )

    endpoints = stack.endpoints()
    aws_env = (
        f"AWS_ENDPOINT_URL={endpoints['aws_endpoint']} AWS_ACCESS_KEY_ID=testing "
        f"AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION={stack.region}"
    )
    stack.esm(on_batch=said).start()
    lines = (
        "[stack] still running (--keep-running): the stack drains what is sent to its payments queue",
        f"[stack] endpoints: {json.dumps(endpoints)}",
        f"[stack] send payments: {aws_env} PYTHONPATH={LAYER} {sys.executable} -m "
        f"payments_drain.tools.producer payments.jsonl --queue-url {stack.queue_url}",
        f"[stack] see them: curl -s {stack.sandbox.base_url}/_sandbox/payments",
        f"[stack] stop: Ctrl-C (or kill -INT {os.getpid()}): the stack stops with the run",
    )
    print("\n".join(lines), file=sys.stderr, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


def run(args: argparse.Namespace) -> int:
    from .run_report import RunRecorder, write_report
    from .stack import LocalStack

    try:
        overrides = parse_overrides(args.parameter)
    except TemplateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    faults = args.sandbox_faults
    from payments_drain.core.payment_files import FileProblem

    try:
        source = from_file(args.file) if args.file else None
    except (OSError, FileProblem) as exc:  # unreadable, or a CSV header that makes no payments
        print(f"error: --file {args.file}: {exc}", file=sys.stderr)
        return 2
    items = source.items if source is not None else None
    for refused in source.refused if source is not None else ():
        where = f"line {refused.line}" + (
            f"-{refused.last}" if refused.last not in (None, refused.line) else ""
        )
        print(f"[stack] --file {where}: not sent, {refused.code}: {refused.message}", file=sys.stderr)
    started = time.monotonic()
    stack = LocalStack(
        args.template,
        overrides,
        sandbox_config={"seed": args.seed},
        sandbox_faults=faults,
        rate_limit=args.rate_limit,
        patched_moto=not args.no_moto_patch,
        log_echo=sys.stderr if args.logs else None,
    )
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        try:
            stack.start()
        except (
            TemplateError,
            MissingPrerequisite,
        ) as exc:  # a -p value the template refuses, or no Java/npm:
            print(f"error: {exc}", file=sys.stderr)  # said before anything starts
            return 2
        f, src = stack.function, stack.source
        print(
            f"[stack] moto {stack.endpoint} (pid {stack.moto.pid}), "
            f"DynamoDB Local {stack.dynamodb_endpoint} (pid {stack.dynamodb.pid}), "
            f"sandbox {stack.sandbox.base_url} (pid {stack.sandbox.pid})",
            file=sys.stderr,
        )
        print(
            f"[stack] from {args.template}: BatchSize {src.batch_size}, window {src.batching_window_s}s, "
            f"MaximumConcurrency {src.maximum_concurrency}, Timeout {f.timeout}s, MemorySize {f.memory_size} MB, "
            f"VisibilityTimeout {stack.queue_settings.visibility_timeout}s, maxReceiveCount "
            f"{stack.queue_settings.max_receive_count}",
            file=sys.stderr,
        )
        if items is None:  # in upsert mode the drain links through the associations API
            items = generate(args.count, args.invalid_share, args.seed, args.lifecycle_share)
        recorder = RunRecorder(stack, rate_limit=int(stack.sandbox.control.config()["rate_limit_per_10s"]))
        progress = Progress(len(items), recorder)
        enq, result = send_and_drain(stack, waves(items), recorder, progress, args.timeout)
        recorder.sample(stack.queue_counts(), result.stats, force=True)
        progress.done()
        summary = summarise(stack, enq, result, time.monotonic() - started, source)
        code, problems = verdict(summary, args.expect_dead_letters)
        summary["problems"] = problems
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        out_dir = Path(args.report_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        summary_path = out_dir / f"run-{stamp}-summary.json"
        summary_path.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
        report_path = write_report(
            out_dir / f"run-{stamp}-report.html",
            recorder,
            stack.sink.emf_documents(),
            args.template,
            table_rows(summary),
            float(f.timeout),
            f"Local run of the payments drain, {stamp} UTC",
        )
        summary["report"] = str(report_path)
        if args.json:
            print(json.dumps(summary, indent=2, default=str))
        else:
            print_table(summary)
        for problem in problems:
            print(f"ERROR: {problem}", file=sys.stderr)
        print(f"[stack] report: {report_path} (summary: {summary_path})", file=sys.stderr)
        if args.keep_running:
            keep_draining(stack)
            print("[stack] stopped", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        print("\n[stack] interrupted", file=sys.stderr)
        return 130
    finally:
        stack.stop()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        return run(args)
    return 2


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
