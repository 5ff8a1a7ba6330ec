"""``python -m local.stack run [options]``: the whole pipeline locally, with a summary (docs/local.md)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections import Counter
from typing import Any

from .dynamodb_local import MissingPrerequisite
from .template import DEFAULT_TEMPLATE, TemplateError, parse_overrides
from .workload import from_file, generate

EMF_METRICS = (
    "PaymentsReceived", "PaymentsCreated", "PaymentsDuplicate", "PaymentsRejected", "PaymentsRetried",
    "HubSpotRequests", "HubSpotThrottled", "HubSpotErrors", "HubSpotLatency", "BatchDuration",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m local.stack", description="The payments drain on a local stack.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start moto + sandbox, enqueue a workload, drain it with the real handler")
    run.add_argument("--template", default=str(DEFAULT_TEMPLATE), help="SAM template (default: template.yaml)")
    run.add_argument("--parameter", "-p", action="append", default=[], metavar="NAME=VALUE",
                     help="template parameter override, like sam's --parameter-overrides (repeatable)")
    run.add_argument("--count", type=int, default=2000, help="payments to generate (default 2000)")
    run.add_argument("--invalid-share", type=float, default=0.03, help="share of invalid payments (default 0.03)")
    run.add_argument("--seed", type=int, default=1, help="workload and sandbox seed (default 1)")
    run.add_argument("--file", help="send this JSON Lines file (one message body per line) instead of generating")
    run.add_argument("--sandbox-faults", default=None, metavar="JSON",
                     help='sandbox fault options, e.g. \'{"p_503": 0.05, "latency_ms": 30}\' (docs/sandbox.md)')
    run.add_argument("--rate-limit", type=int, default=None,
                     help="the sandbox's requests per 10 s (default: the template's HubSpotRateLimitPer10s)")
    run.add_argument("--timeout", type=float, default=600.0, help="give up draining after this many seconds")
    run.add_argument("--no-moto-patch", action="store_true", help="run stock moto (slow; for comparisons)")
    run.add_argument("--keep-running", action="store_true", help="leave moto and the sandbox running at the end")
    run.add_argument("--logs", action="store_true", help="echo the function's log lines to stderr")
    run.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    return parser


class Progress:
    def __init__(self, total: int) -> None:
        self.total = total
        self.tty = sys.stderr.isatty()
        self.started = time.monotonic()
        self.last = 0.0

    def __call__(self, counts: dict, stats: dict) -> None:
        now = time.monotonic()
        if not self.tty and now - self.last < 2.0:
            return
        self.last = now
        line = (f"[drain {now - self.started:5.1f}s] queue: {counts['visible']} waiting, {counts['in_flight']} in flight"
                f" | invocations {stats['invocations']} ({stats['cold_starts']} cold), records done "
                f"{stats['records_deleted']}/{self.total}, retried {stats['records_retried']}")
        if self.tty:
            sys.stderr.write("\r" + line.ljust(120)[:160])
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def done(self) -> None:
        if self.tty:
            sys.stderr.write("\n")


def summarise(stack: Any, enq: Any, result: Any, elapsed_total: float) -> dict:
    payments = stack.sandbox.control.payments()
    stats = stack.sandbox.control.stats()
    reports = stack.failure_reports()
    dlq = stack.dead_letters()
    reasons = Counter()
    for r in reports:
        reason = r.get("reason") or {}
        reasons[f"{reason.get('category', '?')}/{reason.get('code') or '-'}"] += 1
    by_status = stats.get("requests_by_status", {})
    metrics = stack.sink.metrics()
    invocations = max(1, result.stats["invocations"])
    valid = sum(1 for it in enq.by_message_id.values() if it.kind == "valid")
    invalid = sum(1 for it in enq.by_message_id.values() if it.kind not in ("valid", "file", "raw"))
    retried_receives = sum(max(0, n - 1) for n in _receive_counts(stack).values())
    return {
        "sent": len(enq.message_ids),
        "sent_valid": valid,
        "sent_invalid": invalid,
        "created": len(payments),
        "rejected": len(reports),
        "top_rejection_reasons": reasons.most_common(5),
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
        "payments_per_s": round(len(enq.message_ids) / result.elapsed_s, 1) if result.elapsed_s else None,
        "drained": result.empty,
        "invocations": result.stats["invocations"],
        "cold_starts": result.stats["cold_starts"],
        "max_concurrent": result.stats["max_concurrent"],
        "whole_batch_failures": result.stats["whole_batch_failures"],
        "timeouts": result.stats["timeouts"],
        "batch_sizes": result.stats["batch_sizes"],
        "emf": {name: metrics[name] for name in EMF_METRICS if name in metrics},
        "emf_per_invocation": {name: round(metrics[name]["sum"] / invocations, 1) for name in EMF_METRICS if name in metrics},
    }


def _receive_counts(stack: Any) -> dict[str, int]:
    """messageId -> highest ApproximateReceiveCount the function saw (from the invoked events)."""
    counts: dict[str, int] = {}
    for b in stack.batches:
        for mid, n in zip(b["messageIds"], b.get("receiveCounts", [])):
            counts[mid] = max(counts.get(mid, 0), n)
    return counts


def print_table(s: dict, out: Any = sys.stdout) -> None:
    rows = [
        ("payments sent", f"{s['sent']} ({s['sent_valid']} valid, {s['sent_invalid']} invalid)"),
        ("created in HubSpot (sandbox)", s["created"]),
        ("rejected (failure reports)", s["rejected"]),
    ]
    for reason, n in s["top_rejection_reasons"]:
        rows.append(("  " + reason, n))
    rows += [
        ("retried (receives beyond first)", s["retried_receives"]),
        ("in the dead-letter queue", s["dead_letter_queue"]),
        ("left in the payments queue", f"{s['left_in_queue']['visible']} waiting, {s['left_in_queue']['in_flight']} in flight"),
        ("HubSpot requests / 429s", f"{s['hubspot_requests']} / {s['hubspot_429']}"),
        ("HubSpot faults injected", json.dumps(s["hubspot_faults"]) if s["hubspot_faults"] else "none"),
        ("duplicate writes (sandbox)", s["trace_ids_stored_more_than_once"]),
        ("invocations (cold starts, max concurrent)", f"{s['invocations']} ({s['cold_starts']}, {s['max_concurrent']})"),
        ("failed invocations / timeouts", f"{s['whole_batch_failures']} / {s['timeouts']}"),
        ("enqueue / drain / total time", f"{s['enqueue_s']} s / {s['drain_s']} s / {s['elapsed_s']} s"),
        ("payments per second (drain)", s["payments_per_s"]),
    ]
    if s["emf"]:
        rows.append(("per-batch metrics (EMF)", "sum / avg / max per invocation"))
        for name, m in s["emf"].items():
            unit = " ms" if name in ("HubSpotLatency", "BatchDuration") else ""
            rows.append((f"  {name}", f"{m['sum']:.0f} / {m['avg']:.1f}{unit} / {m['max']:.0f}{unit}"))
    width = max(len(r[0]) for r in rows) + 2
    out.write("\n" + "-" * (width + 40) + "\n")
    for label, value in rows:
        out.write(f"{label.ljust(width)}{value}\n")
    out.write("-" * (width + 40) + "\n")
    if not s["drained"]:
        out.write("WARNING: the queue was not empty when the drain timed out\n")


def run(args: argparse.Namespace) -> int:
    from .stack import LocalStack

    try:
        overrides = parse_overrides(args.parameter)
    except TemplateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    faults = json.loads(args.sandbox_faults) if args.sandbox_faults else None
    items = from_file(args.file) if args.file else generate(args.count, args.invalid_share, args.seed)
    started = time.monotonic()
    stack = LocalStack(
        args.template, overrides, sandbox_config={"seed": args.seed}, sandbox_faults=faults,
        rate_limit=args.rate_limit, patched_moto=not args.no_moto_patch,
        log_echo=sys.stderr if args.logs else None,
    )
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    detached = None
    try:
        try:
            stack.start()
        except MissingPrerequisite as missing:
            print(f"error: {missing}", file=sys.stderr)
            return 2
        f, src = stack.function, stack.source
        print(f"[stack] moto {stack.endpoint} (pid {stack.moto.pid}), "
              f"DynamoDB Local {stack.dynamodb_endpoint} (pid {stack.dynamodb.pid}), "
              f"sandbox {stack.sandbox.base_url} (pid {stack.sandbox.pid})",
              file=sys.stderr)
        print(f"[stack] from {args.template}: BatchSize {src.batch_size}, window {src.batching_window_s}s, "
              f"MaximumConcurrency {src.maximum_concurrency}, Timeout {f.timeout}s, MemorySize {f.memory_size} MB, "
              f"VisibilityTimeout {stack.queue_settings.visibility_timeout}s, maxReceiveCount "
              f"{stack.queue_settings.max_receive_count}", file=sys.stderr)
        enq = stack.enqueue(items)
        print(f"[stack] enqueued {len(enq.message_ids)} messages in {enq.elapsed_s:.2f}s", file=sys.stderr)
        progress = Progress(len(enq.message_ids))
        result = stack.drain(timeout=args.timeout, progress=progress)
        progress.done()
        summary = summarise(stack, enq, result, time.monotonic() - started)
        if args.json:
            print(json.dumps(summary, indent=2, default=str))
        else:
            print_table(summary)
        if args.keep_running:
            detached = stack.detach()
        return 0 if result.empty else 1
    except KeyboardInterrupt:
        print("\n[stack] interrupted", file=sys.stderr)
        return 130
    finally:
        stack.stop()
        if detached:
            print("[stack] still running (--keep-running):", file=sys.stderr)
            print(json.dumps(detached, indent=2), file=sys.stderr)
            print(f"[stack] stop them with: kill {detached['moto_pid']} "
                  f"{detached['dynamodb_local_pid']} {detached['sandbox_pid']}", file=sys.stderr)
            print(f"[stack] e.g. AWS_ENDPOINT_URL={detached['aws_endpoint']} AWS_ACCESS_KEY_ID=testing "
                  f"AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1 aws sqs list-queues", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        return run(args)
    return 2


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
