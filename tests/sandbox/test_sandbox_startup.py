"""Starting and stopping: the command, run_sandbox, the in-process server, keep-alive, concurrency."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sandbox_http import CREATE, LIST, Api, batch

from local.hubspot_sandbox import SandboxConfig, SandboxControl, SandboxServer, run_sandbox

ROOT = Path(__file__).resolve().parents[2]


def _spawn(*args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-m", "local.hubspot_sandbox", *args],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=str(ROOT),
    )


def test_command_prints_one_url_line_serves_and_stops_on_sigterm():
    proc = _spawn("--port", "0", "--token", "cli-token")
    try:
        line = proc.stdout.readline()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+\n", line)
        url = line.strip()
        api = Api(url, token="cli-token")
        assert api.create(batch(2)).status == 201
        # --token replaces the default token
        assert api.create(batch(1), token="sandbox-token").status == 401
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
        assert proc.stdout.read() == ""  # exactly one line was printed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def test_command_binds_the_given_port_on_loopback_and_stops_on_sigint():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = _spawn("--port", str(port))
    try:
        assert proc.stdout.readline().strip() == f"http://127.0.0.1:{port}"
        assert SandboxControl(f"http://127.0.0.1:{port}").health()
        # default token when none is given
        assert Api(f"http://127.0.0.1:{port}").create(batch(1)).status == 201
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def test_command_takes_a_config_json():
    cfg = SandboxConfig(
        tokens={"a": {"scopes": ["crm.objects.commercepayments.write"]}}, rate_limit_per_10s=7
    )
    proc = _spawn("--config-json", cfg.to_json())
    try:
        url = proc.stdout.readline().strip()
        reply = Api(url, token="a").create(batch(1))
        assert reply.status == 201
        assert reply.headers["X-HubSpot-RateLimit-Max"] == "7"
    finally:
        proc.terminate()
        proc.wait(timeout=5)
        proc.stdout.close()


def test_run_sandbox_yields_url_pid_control_and_stops_the_process_by_pid():
    with run_sandbox(SandboxConfig(seed=3)) as sandbox:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", sandbox.base_url)
        os.kill(sandbox.pid, 0)  # alive
        assert sandbox.process.pid == sandbox.pid
        assert sandbox.control.config()["seed"] == 3
        assert Api(sandbox.base_url, token=sandbox.token).create(batch(1)).status == 201
        port = int(sandbox.base_url.rsplit(":", 1)[1])
    assert sandbox.process.poll() is not None
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_factory_fixture_starts_a_dedicated_process_with_its_config(hubspot_sandbox_factory, hubspot_sandbox):
    other = hubspot_sandbox_factory(SandboxConfig(daily_limit=3))
    assert other.pid != hubspot_sandbox.pid
    assert Api(other.base_url).create(batch(1)).headers["X-HubSpot-RateLimit-Daily"] == "3"
    assert Api(hubspot_sandbox.base_url).create(batch(1)).headers["X-HubSpot-RateLimit-Daily"] == "1000000"


def test_in_process_server_context_manager():
    with SandboxServer(SandboxConfig()) as server:
        api = Api(server.base_url)
        assert api.create(batch(3)).status == 201
        assert SandboxControl(server.base_url).stats()["payments_stored"] == 3


def test_config_round_trips_through_json_and_refuses_unknown_names():
    cfg = SandboxConfig(
        tokens={"x": {"scopes": ["s"], "expired": True}},
        rate_limit_per_10s=20,
        daily_limit=5,
        echo_trace_id=False,
        unique_property="payment_key",
        seed=9,
        faults={"p_500": 0.25, "outage": True},
    )
    assert SandboxConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ValueError):
        SandboxConfig.from_json('{"nope": 1}')
    with pytest.raises(ValueError):
        SandboxConfig(faults={"p_bogus": 0.1})
    with pytest.raises(ValueError):
        SandboxConfig(faults={"p_500": 0.7, "p_503": 0.7})


def test_keep_alive_serves_several_requests_on_one_connection(api, hubspot_sandbox):
    conn = api.connection()
    try:
        first_sock = None
        for i in range(4):
            path = CREATE if i % 2 == 0 else LIST
            method = "POST" if i % 2 == 0 else "GET"
            body = (
                b'{"inputs":[{"properties":{"hs_initial_amount":"1","hs_initiated_date":"1764237600000"}}]}'
            )
            conn.request(method, path, body=body if method == "POST" else None, headers=api.headers())
            resp = conn.getresponse()
            assert resp.status in (200, 201)
            assert resp.getheader("Connection") == "keep-alive"
            resp.read()
            if first_sock is None:
                first_sock = conn.sock
            assert conn.sock is not None and conn.sock is first_sock
    finally:
        conn.close()
    assert hubspot_sandbox.control.stats()["payments_stored"] == 2


def test_concurrent_requests_are_served_in_parallel(api, control):
    control.set_faults(latency_ms=400)
    replies: list[int] = []
    lock = threading.Lock()

    def one() -> None:
        status = api.create(batch(5)).status
        with lock:
            replies.append(status)

    threads = [threading.Thread(target=one) for _ in range(8)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    assert replies == [201] * 8
    assert elapsed < 8 * 0.4 / 2  # serial handling would take 3.2 s
    payments = control.payments()
    assert len(payments) == 40
    assert len({p["id"] for p in payments}) == 40
