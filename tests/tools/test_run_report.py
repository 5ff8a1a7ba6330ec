"""The run report's charts, drawn from a recorded run without a stack: they fill their panel, their x
axis ends with the run, the ambiguous creates have their own axis, and latency is p50 and p99 as on
the dashboard. (tests/tools/test_local_run.py opens a real run's report in Chromium.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from local.stack.run_report import (
    LEFT,
    RunRecorder,
    Sample,
    _svg,
    build_panels,
    dashboard_titles,
    render_html,
)

ROOT = Path(__file__).resolve().parents[2]
END = 27.3  # the run's last sample, in seconds


def sample(t: float, requests: int) -> Sample:
    return Sample(t, 0, 0, 0, 0, requests, requests, 0, 0, {}, 1, requests, 0, requests)


@pytest.fixture
def panels():
    recorder = RunRecorder(stack=None, rate_limit=100)
    recorder.samples = [sample(t / 2, int(t * 3)) for t in range(int(END * 2))] + [sample(END, 170)]
    stamp = (recorder.started_wall + 12.0) * 1000
    documents = [
        {
            "_aws": {"Timestamp": stamp, "CloudWatchMetrics": []},
            "HubSpotLatency": [float(ms) for ms in range(1, 101)],
            "AmbiguousCreates": 3630,  # far above the requests: on one axis they would be flat
        }
    ]
    return {
        p.title: p for p in build_panels(recorder, documents, dashboard_titles(ROOT / "template.yaml"), 60)
    }


def panel(panels, start: str):
    return next(p for title, p in panels.items() if title.startswith(start))


def ticks(svg: str, left: bool) -> list[float]:
    anchor = r'text-anchor="end" ' if left else r'text-anchor="middle" '
    return [
        float(v)
        for v in re.findall(rf'<text x="[\d.]+" y="[\d.]+" {anchor}class="tick">([\d.]+)</text>', svg)
    ]


def test_the_x_axis_ends_with_the_run_not_at_the_next_round_number(panels):
    svg = _svg(panel(panels, "Payments queue"), END)
    plot = re.search(r'<rect x="(\d+)" y="\d+" width="(\d+)"', svg)
    right_edge = int(plot[1]) + int(plot[2])
    assert int(plot[1]) == LEFT
    assert ticks(svg, left=False) == [0, 5, 10, 15, 20, 25]  # round ticks, none past the run
    points = re.search(r'data-label="waiting" data-points="\d+" points="([^"]+)"', svg)[1].split()
    assert float(points[-1].split(",")[0]) == pytest.approx(right_edge, abs=0.1)  # the run's end


def test_a_chart_is_as_wide_as_its_panel():
    html = render_html(list(build_panels(RunRecorder(None, 100), [], [], 60)), [], "run", END)
    svg_tags = re.findall(r"<svg [^>]*>", html)
    assert svg_tags and all('class="chart"' in tag and " width=" not in tag for tag in svg_tags)
    assert re.search(r"svg\.chart \{[^}]*width: 100%", html)


def test_the_ambiguous_creates_have_their_own_axis_and_leave_the_requests_their_scale(panels):
    requests = panel(panels, "HubSpot requests")
    by_label = {s.label: s for s in requests.series}
    assert by_label["creates with an unknown outcome"].right and not by_label["requests per 10 s"].right
    svg = _svg(requests, END)
    assert max(ticks(svg, left=True)) == 100  # the rate limit's scale, not 5,000
    right = [float(v) for v in re.findall(r'<text x="[\d.]+" y="[\d.]+" class="tick">([\d.]+)</text>', svg)]
    assert max(right) == 5000 and requests.right_label == "creates"


def test_latency_shows_p50_and_p99_as_the_dashboard_does(panels):
    latency = panel(panels, "HubSpot latency")
    assert [s.label for s in latency.series] == ["HubSpot p50", "HubSpot p99", "batch duration"]
    assert latency.series[1].points[0][1] == 99.0 and latency.series[0].points[0][1] == 51.0
    text = (ROOT / "template.yaml").read_text(encoding="utf-8")
    assert '{"stat": "p99", "label": "HubSpot p99"}' in text
