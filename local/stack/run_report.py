"""A picture of a local run: what ``make run`` samples while it drains, and the HTML report it writes.

:class:`RunRecorder` samples the run while it drains (queue depths, the sandbox's counters, the
event-source mapping's counters) and keeps every invocation; :func:`write_report` turns that and
the function's EMF documents into one self-contained HTML file: inline SVG, no script, no network.

Its panels carry the titles of the deployed CloudWatch dashboard's metric widgets (read from
``template.yaml`` at run time, so a renamed widget fails the test rather than drifting), each
showing what the local run knows of the same thing; the local stack's own extras (the sandbox's
injected faults) come after, marked as local. Plotting is written here by hand: a dozen
polylines per file do not need a charting library, and a library would mean a script or a CDN.
"""

from __future__ import annotations

import html
import json
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

SAMPLE_EVERY_S = 0.5
WINDOW_S = 10.0  # HubSpot's rolling rate-limit window


# --------------------------------------------------------------------------- recording
@dataclass
class Sample:
    t: float  # seconds since the drain started
    visible: int
    in_flight: int
    dead_letters: int
    reports: int  # failure reports written (the report queue is not read during the run)
    created: int  # payments the sandbox stored
    requests: int  # HubSpot requests the sandbox received
    throttled: int  # of them answered 429
    errors: int  # of them answered 4xx/5xx (429 included) or cut off by a fault
    faults: dict[str, int]  # faults injected so far, by kind
    invocations: int
    received: int  # records handed to the function
    retried: int  # records left for redelivery
    deleted: int  # records settled and deleted


@dataclass
class Invocation:
    start: float
    end: float
    size: int
    duration_ms: float
    failed: bool
    timed_out: bool


@dataclass
class RunRecorder:
    """Samples a :class:`~local.stack.stack.LocalStack` while it drains (call :meth:`sample` often)."""

    stack: Any
    rate_limit: int
    started: float = field(default_factory=time.monotonic)
    started_wall: float = field(default_factory=time.time)
    samples: list[Sample] = field(default_factory=list)
    invocations: list[Invocation] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> float:
        return time.monotonic() - self.started

    def sample(self, counts: dict[str, int], esm_stats: dict[str, Any], force: bool = False) -> Sample | None:
        """Record one sample (at most every SAMPLE_EVERY_S unless ``force``); the latest one, None before
        the first. A sample that cannot be taken (the sandbox or moto gone) is skipped, never raised
        into the drain."""
        t = self.now()
        if self.samples and not force and t - self.samples[-1].t < SAMPLE_EVERY_S:
            return self.samples[-1]
        try:
            sample = self._take(t, counts, esm_stats)
        except (OSError, ValueError, RuntimeError, BotoCoreError, ClientError):
            return self.samples[-1] if self.samples else None
        with self._lock:
            self.samples.append(sample)
        return sample

    def _take(self, t: float, counts: dict[str, int], esm_stats: dict[str, Any]) -> Sample:
        stack = self.stack
        stats = stack.sandbox.control.stats()
        by_status = stats.get("requests_by_status", {})
        errors = sum(int(n) for status, n in by_status.items() if not str(status).startswith("2"))
        return Sample(
            t=t,
            visible=counts.get("visible", 0),
            in_flight=counts.get("in_flight", 0),
            dead_letters=stack.queue_counts(stack.dlq_url)["visible"],
            reports=stack.queue_counts(stack.failure_queue_url)["visible"],
            created=int(stats.get("payments_stored", 0)),
            requests=int(stats.get("requests_total", 0)),
            throttled=int(by_status.get("429", 0)),
            errors=errors,
            faults={k: int(v) for k, v in (stats.get("faults_injected") or {}).items()},
            invocations=int(esm_stats.get("invocations", 0)),
            received=int(esm_stats.get("records_invoked", 0)),
            retried=int(esm_stats.get("records_retried", 0)),
            deleted=int(esm_stats.get("records_deleted", 0)),
        )

    def on_batch(self, batch: dict[str, Any]) -> None:
        """The ESM's ``on_batch`` callback: one finished invocation."""
        end = self.now()
        with self._lock:
            self.invocations.append(
                Invocation(
                    start=max(0.0, end - float(batch.get("elapsedS") or 0.0)),
                    end=end,
                    size=int(batch.get("size", 0)),
                    duration_ms=float(batch.get("durationMs") or 0.0),
                    failed=bool(batch.get("wholeBatchFailed")),
                    timed_out=bool(batch.get("timedOut")),
                )
            )


# --------------------------------------------------------------------------- series
Point = tuple[float, float]


@dataclass
class Series:
    label: str
    points: list[Point]
    color: str
    dashed: bool = False
    right: bool = False  # on the right-hand axis
    markers: bool = False  # a dot on every point (one point per invocation)


@dataclass
class Panel:
    title: str
    note: str
    series: list[Series]
    y_label: str = ""
    right_label: str = ""
    local_only: bool = False


PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def _per_second(samples: list[Sample], attr: str, end: float) -> list[Point]:
    """A counter's increase in each whole second of the run."""
    seconds = int(end) + 1
    out = [0.0] * seconds
    prev_t, prev_v = 0.0, 0
    for s in samples:
        value = getattr(s, attr)
        delta = value - prev_v
        if delta > 0:
            # spread the increase over the seconds between the two samples
            lo, hi = prev_t, max(s.t, prev_t + 1e-9)
            for sec in range(int(lo), min(seconds, int(hi) + 1)):
                overlap = min(hi, sec + 1) - max(lo, sec)
                if overlap > 0:
                    out[sec] += delta * overlap / (hi - lo)
        prev_t, prev_v = s.t, value
    return [(float(sec), round(v, 2)) for sec, v in enumerate(out)]


def _in_window(samples: list[Sample], attr: str) -> list[Point]:
    """A counter's increase over the rolling WINDOW_S before each sample."""
    out: list[Point] = []
    j = 0
    for s in samples:
        while j < len(samples) and samples[j].t < s.t - WINDOW_S:
            j += 1
        base = getattr(samples[j - 1], attr) if j > 0 else 0
        out.append((s.t, float(getattr(s, attr) - base)))
    return out


def _values(value: Any) -> list[float]:
    """An EMF metric's value in a document: one number or a list of them."""
    values = value if isinstance(value, list) else [value]
    return [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _concurrency(invocations: list[Invocation], end: float) -> list[Point]:
    events = sorted([(i.start, 1) for i in invocations] + [(i.end, -1) for i in invocations])
    points: list[Point] = [(0.0, 0.0)]
    level = 0
    for t, step in events:
        points.append((t, float(level)))
        level += step
        points.append((t, float(level)))
    points.append((end, float(level)))
    return points


def build_panels(
    recorder: RunRecorder, emf_documents: list[dict], titles: list[str], timeout_s: float
) -> list[Panel]:
    """The report's panels: one per dashboard metric widget title (in the dashboard's order), then
    the local ones."""
    samples = list(recorder.samples)
    end = max([s.t for s in samples] + [i.end for i in recorder.invocations] + [1.0])
    lat_p50: list[Point] = []
    lat_p99: list[Point] = []
    batch_ms: list[Point] = []
    ambiguous: list[Point] = []
    for doc in emf_documents:
        stamp = doc.get("_aws", {}).get("Timestamp")
        if not isinstance(stamp, (int, float)):
            continue
        t = stamp / 1000.0 - recorder.started_wall
        latencies = _values(doc.get("HubSpotLatency"))
        if latencies:
            lat_p50.append((t, _quantile(latencies, 0.50)))
            lat_p99.append((t, _quantile(latencies, 0.99)))
        if durations := _values(doc.get("BatchDuration")):
            batch_ms.append((t, max(durations)))
        if counts := _values(doc.get("AmbiguousCreates")):
            ambiguous.append((t, sum(counts)))
    invocation_ends = sorted(recorder.invocations, key=lambda i: i.end)
    per_second_invocations = [0.0] * (int(end) + 1)
    per_second_errors = [0.0] * (int(end) + 1)
    for inv in invocation_ends:
        per_second_invocations[min(int(inv.end), int(end))] += 1
        if inv.failed:
            per_second_errors[min(int(inv.end), int(end))] += 1
    limit = float(recorder.rate_limit)
    in_window = _in_window(samples, "requests")

    def ts(attr: str) -> list[Point]:
        return [(s.t, float(getattr(s, attr))) for s in samples]

    local: dict[str, Panel] = {
        "payments per outcome": Panel(
            "",
            "per second of the run: created = stored by the sandbox, rejected = failure reports written, "
            "retried = records the function sent back, received = records handed to the function",
            [
                Series("created", _per_second(samples, "created", end), PALETTE[2]),
                Series("rejected (reported)", _per_second(samples, "reports", end), PALETTE[1]),
                Series("retried (back to the queue)", _per_second(samples, "retried", end), PALETTE[3]),
                Series(
                    "received (counted as invocations end)",
                    _per_second(samples, "received", end),
                    PALETTE[0],
                    dashed=True,
                ),
            ],
            "payments / s",
        ),
        "hubspot requests": Panel(
            "",
            "HubSpot requests in the rolling 10 s window against the rate limit "
            f"({recorder.rate_limit} per 10 s) and what is left of it (Remaining); 429s, errors, and on "
            "the right axis the creates with an unknown outcome (EMF AmbiguousCreates: one per payment "
            "and ambiguous answer, per invocation)",
            [
                Series("requests per 10 s", in_window, PALETTE[0]),
                Series("rate limit", [(0.0, limit), (end, limit)], PALETTE[1], dashed=True),
                Series(
                    "Remaining", [(t, max(0.0, limit - v)) for t, v in in_window], PALETTE[2], dashed=True
                ),
                Series("429 throttled per 10 s", _in_window(samples, "throttled"), PALETTE[3]),
                Series("errors per 10 s (429 included)", _in_window(samples, "errors"), PALETTE[4]),
                Series("creates with an unknown outcome", ambiguous, PALETTE[5], right=True, markers=True),
            ],
            "requests",
            "creates",
        ),
        "hubspot latency": Panel(
            "",
            "HubSpot latency p50 and p99 (as the dashboard) of each invocation's requests (EMF "
            "HubSpotLatency), and each "
            "invocation's duration (EMF BatchDuration, right axis), at the end of the invocation",
            [
                Series("HubSpot p50", lat_p50, PALETTE[0], markers=True),
                Series("HubSpot p99", lat_p99, PALETTE[1], markers=True),
                Series("batch duration", batch_ms, PALETTE[4], right=True, markers=True),
            ],
            "ms",
            "batch ms",
        ),
        "payments queue": Panel(
            "",
            "the payments queue, sampled every 0.5 s (the age of the oldest payment is not sampled locally)",
            [Series("waiting", ts("visible"), PALETTE[0]), Series("in flight", ts("in_flight"), PALETTE[3])],
            "messages",
        ),
        "dead-letter queue": Panel(
            "",
            "the dead-letter queue and the failure-report queue, sampled every 0.5 s",
            [
                Series("dead-letter queue depth", ts("dead_letters"), PALETTE[1]),
                Series("failure-report queue depth", ts("reports"), PALETTE[3]),
            ],
            "messages",
        ),
        "function errors": Panel(
            "",
            "invocations ending in each second, and those that failed as a whole (error or timeout); "
            "the emulator never throttles",
            [
                Series(
                    "invocations", [(float(i), v) for i, v in enumerate(per_second_invocations)], PALETTE[0]
                ),
                Series("errors", [(float(i), v) for i, v in enumerate(per_second_errors)], PALETTE[1]),
            ],
            "invocations / s",
        ),
        "function duration": Panel(
            "",
            f"each invocation's duration, at its end, against the function's timeout ({timeout_s:g} s)",
            [
                Series(
                    "duration", [(i.end, i.duration_ms) for i in invocation_ends], PALETTE[0], markers=True
                ),
                Series(
                    "timeout", [(0.0, timeout_s * 1000), (end, timeout_s * 1000)], PALETTE[1], dashed=True
                ),
            ],
            "ms",
        ),
        "function concurrency": Panel(
            "",
            "invocations running at once",
            [Series("concurrent executions", _concurrency(recorder.invocations, end), PALETTE[0])],
            "invocations",
        ),
    }
    panels = []
    for title in titles:
        key = next((k for k in local if title.lower().startswith(k)), None)
        if key is None:
            raise ValueError(
                f"the dashboard widget {title!r} has no local panel in local/stack/run_report.py"
            )
        panel = local[key]
        panel.title = title
        panels.append(panel)
    kinds = sorted({k for s in samples for k in s.faults})
    panels.append(
        Panel(
            "Faults injected by the HubSpot sandbox (local only)",
            "cumulative, by kind (--sandbox-faults)",
            [
                Series(
                    kind, [(s.t, float(s.faults.get(kind, 0))) for s in samples], PALETTE[n % len(PALETTE)]
                )
                for n, kind in enumerate(kinds)
            ]
            or [Series("none injected", [(0.0, 0.0), (end, 0.0)], PALETTE[7])],
            "faults",
            local_only=True,
        )
    )
    return panels


# --------------------------------------------------------------------------- the dashboard's titles
def dashboard_titles(template_path: str | Path) -> list[str]:
    """The titles of the metric widgets of the template's CloudWatch dashboard, in its order."""
    from .template import load_yaml

    template = load_yaml(Path(template_path).read_text(encoding="utf-8"))
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::CloudWatch::Dashboard":
            body = resource["Properties"]["DashboardBody"]
            text = body.get("Fn::Sub") if isinstance(body, dict) else body
            text = text[0] if isinstance(text, list) else text
            # ${...} substitutions stand in strings and as numbers (${FunctionTimeoutSeconds}000): a digit
            # fits both, and the body parses as the JSON it becomes.
            widgets = json.loads(re.sub(r"\$\{[^}]+\}", "1", text))["widgets"]
            return [w["properties"]["title"] for w in widgets if w.get("type") == "metric"]
    return []


# --------------------------------------------------------------------------- rendering
W, H = 560, 240
LEFT, RIGHT, TOP, BOTTOM = 56, 56, 12, 34
RIGHT_BARE = 16  # the right margin of a chart without a right axis


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    exp = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exp:
            return float(step * exp)
    return float(10 * exp)


def _x_step(end: float) -> float:
    """The smallest round step (1, 2, 2.5 or 5 times a power of ten) giving at most six ticks after 0."""
    return _nice_max(end / 6)


def _svg(panel: Panel, end: float) -> str:
    x_max = max(1.0, end)  # the axis ends with the run (its ticks are round, its end need not be)
    left_max = _nice_max(max([y for s in panel.series if not s.right for _, y in s.points] + [0.0]))
    right_max = _nice_max(max([y for s in panel.series if s.right for _, y in s.points] + [0.0]))
    has_right = any(s.right for s in panel.series)
    pw, ph = W - LEFT - (RIGHT if has_right else RIGHT_BARE), H - TOP - BOTTOM

    def x(t: float) -> float:
        return LEFT + pw * min(max(t, 0.0), x_max) / x_max

    def y(v: float, right: bool) -> float:
        return TOP + ph - ph * v / (right_max if right else left_max)

    parts = [  # as wide as its panel (the viewBox keeps the proportions)
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" class="chart" '
        f'role="img" aria-label="{html.escape(panel.title)}">',
        f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="#fff" stroke="#ccc"/>',
    ]
    for k in range(5):
        value = left_max * k / 4
        yy = y(value, False)
        parts.append(f'<line x1="{LEFT}" x2="{LEFT + pw}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{LEFT - 4}" y="{yy + 4:.1f}" text-anchor="end" class="tick">{value:g}</text>')
        if has_right:
            rv = right_max * k / 4
            parts.append(f'<text x="{LEFT + pw + 4}" y="{yy + 4:.1f}" class="tick">{rv:g}</text>')
    step = _x_step(x_max)
    for k in range(int(x_max / step + 1e-9) + 1):
        t = step * k
        parts.append(
            f'<text x="{x(t):.1f}" y="{TOP + ph + 14}" text-anchor="middle" class="tick">{t:g}</text>'
        )
    parts.append(
        f'<text x="{LEFT + pw / 2}" y="{H - 4}" text-anchor="middle" class="tick">seconds since the '
        f"drain started</text>"
    )
    if panel.y_label:
        parts.append(
            f'<text x="12" y="{TOP + ph / 2}" transform="rotate(-90 12 {TOP + ph / 2})" '
            f'text-anchor="middle" class="tick">{html.escape(panel.y_label)}</text>'
        )
    if panel.right_label:
        xr = W - 10
        parts.append(
            f'<text x="{xr}" y="{TOP + ph / 2}" transform="rotate(90 {xr} {TOP + ph / 2})" '
            f'text-anchor="middle" class="tick">{html.escape(panel.right_label)}</text>'
        )
    for s in panel.series:
        if not s.points:
            continue
        coords = " ".join(f"{x(t):.1f},{y(v, s.right):.1f}" for t, v in s.points)
        dash = ' stroke-dasharray="5 3"' if s.dashed else ""
        peak = max(v for _, v in s.points)
        parts.append(
            f'<polyline class="series" data-label="{html.escape(s.label)}" '
            f'data-points="{len(s.points)}" points="{coords}" fill="none" stroke="{s.color}" '
            f'stroke-width="1.6"{dash}>'
            f"<title>{html.escape(s.label)} (max {peak:g})</title></polyline>"
        )
        if s.markers:  # sparse series (one point per invocation): each point shows
            parts.extend(
                f'<circle cx="{x(t):.1f}" cy="{y(v, s.right):.1f}" r="3" fill="{s.color}"/>'
                for t, v in s.points
            )
    parts.append("</svg>")
    return "".join(parts)


def _legend(panel: Panel) -> str:
    items = []
    for s in panel.series:
        style = "dashed" if s.dashed else "solid"
        side = " (right axis)" if s.right else ""
        items.append(
            f'<li><span class="swatch" style="border-top: 3px {style} {s.color}"></span>'
            f"{html.escape(s.label)}{side}</li>"
        )
    return '<ul class="legend">' + "".join(items) + "</ul>"


# Nothing may load from anywhere: a stray external reference is a console error in the browser test.
CSP = "default-src 'none'; style-src 'unsafe-inline'"
CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; background: #fafafa; }
h1 { font-size: 20px; margin: 0 0 4px; } .sub { color: #555; margin: 0 0 16px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(580px, 1fr)); gap: 16px; }
section.panel { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 10px 12px; }
section.panel h2 { font-size: 15px; margin: 0 0 2px; }
.note { color: #666; font-size: 12px; margin: 0 0 6px; }
.local { border-style: dashed; } .tick { font-size: 10px; fill: #666; }
svg.chart { display: block; width: 100%; height: auto; }
.legend { list-style: none; padding: 0; margin: 4px 0 0; display: flex; flex-wrap: wrap; gap: 4px 14px;
          font-size: 12px; }
.swatch { display: inline-block; width: 18px; margin-right: 5px; vertical-align: middle; }
table.summary { border-collapse: collapse; margin: 0; font-size: 13px; background: #fff; }
table.summary td { border: 1px solid #ddd; padding: 2px 8px; }
table.summary td:last-child { text-align: right; }
"""


def render_html(panels: list[Panel], summary_rows: list[tuple[str, Any]], heading: str, end: float) -> str:
    sections = []
    for n, panel in enumerate(panels):
        cls = "panel local" if panel.local_only else "panel"
        sections.append(
            f'<section class="{cls}" id="panel-{n}"><h2>{html.escape(panel.title)}</h2>'
            f'<p class="note">{html.escape(panel.note)}</p>{_svg(panel, end)}{_legend(panel)}'
            "</section>"
        )
    rows = "".join(
        f"<tr><td>{html.escape(str(label))}</td><td>{html.escape(str(value))}</td></tr>"
        for label, value in summary_rows
    )
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<title>{html.escape(heading)}</title><style>{CSS}</style></head><body>"
        f'<h1>{html.escape(heading)}</h1><p class="sub">The panels carry the titles of the deployed '
        f'CloudWatch dashboard\'s widgets (docs/operations.md, "The dashboard"); each shows what '
        f"this local run measured of the same thing.</p>"
        f'<div class="grid">{"".join(sections)}</div>'
        f'<h2>Summary</h2><table class="summary">{rows}</table>'
        "</body></html>\n"
    )


def write_report(
    path: Path,
    recorder: RunRecorder,
    emf_documents: list[dict],
    template_path: str | Path,
    summary_rows: list[tuple[str, Any]],
    timeout_s: float,
    heading: str,
) -> Path:
    panels = build_panels(recorder, emf_documents, dashboard_titles(template_path), timeout_s)
    end = max([s.t for s in recorder.samples] + [i.end for i in recorder.invocations] + [1.0])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(panels, summary_rows, heading, end), encoding="utf-8")
    return path
