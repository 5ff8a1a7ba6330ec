"""(c) 10,000 payments through C concurrent containers, as the event source mapping would.

Each container is a separate process (multiprocessing, spawn: a fresh interpreter that imports
the handler once), so the GIL of one does not slow another. Events are built in memory by
the containers from a task (key range), so the figure is the drain's and HubSpot's, not the SQS
emulator's. A batch's ``batchItemFailures`` are put back on the task queue at once (real SQS would
wait out the visibility timeout): the time is then the least the drain could take.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import time
from typing import Any

from benchmarks.env import LambdaContext, event, python_path


def container(env: dict[str, str], tasks, results, ready, start, offset_s: float = 0.0) -> None:
    """One Lambda container: import once, then (``offset_s`` after the start) invoke for each
    task until told to stop."""
    import sys

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # Powertools' log and EMF lines
    os.environ.update(env)
    sys.path[:0] = python_path().split(os.pathsep)
    import app

    ready.put(os.getpid())
    start.wait()
    time.sleep(offset_s)
    invocation = 0
    while True:
        task = tasks.get()
        if task is None:
            return
        prefix, indices = task
        evt = event(prefix, 0, 0)
        evt["Records"] = [event(prefix, i, 1)["Records"][0] for i in indices]
        by_id = {r["messageId"]: i for r, i in zip(evt["Records"], indices)}
        invocation += 1
        c0, w0 = time.process_time(), time.perf_counter()
        try:
            response = app.lambda_handler(
                evt, LambdaContext(aws_request_id=f"{os.getpid()}-{invocation}", remaining_ms=60_000)
            )
            failed = [by_id[f["itemIdentifier"]] for f in response["batchItemFailures"]]
        except Exception:  # noqa: BLE001 - a crashed invocation: SQS redelivers the whole batch
            failed = list(indices)
        results.put((len(indices), failed, time.process_time() - c0, time.perf_counter() - w0))


def run(
    env: dict[str, str],
    payments: int,
    batch_size: int,
    concurrency: int,
    prefix: str,
    timeout_s: float = 600,
    offsets_s: list[float] | None = None,
    deadline_s: float = 1800,
) -> dict[str, Any]:
    """Drain ``payments`` through ``concurrency`` containers; a payment sent back is queued again
    at once. Raises when some are still unsent ``deadline_s`` after the start (an invocation that
    sends every payment back, e.g. HubSpot unreachable, would otherwise keep the figure going)."""
    ctx = multiprocessing.get_context("spawn")
    tasks, results, ready = ctx.Queue(), ctx.Queue(), ctx.Queue()
    start = ctx.Event()
    procs = [
        ctx.Process(target=container, args=(env, tasks, results, ready, start, offset), daemon=True)
        for offset in (offsets_s or [0.0] * concurrency)
    ]
    for proc in procs:
        proc.start()
    try:
        for _ in procs:
            ready.get(timeout=120)
        batches = [list(range(i, min(i + batch_size, payments))) for i in range(0, payments, batch_size)]
        for batch in batches:
            tasks.put((prefix, batch))
        outstanding = payments
        invocations = redelivered = 0
        cpu = 0.0
        durations = []
        t0 = time.perf_counter()
        start.set()
        while outstanding:
            left_s = deadline_s - (time.perf_counter() - t0)
            if left_s <= 0:
                raise RuntimeError(
                    f"figure c: {outstanding} of {payments} payments still unsent after {deadline_s:g} s "
                    f"({invocations} invocations, {redelivered} messages sent back)"
                )
            count, failed, cpu_s, wall_s = results.get(timeout=timeout_s)
            invocations += 1
            cpu += cpu_s
            durations.append(wall_s)
            outstanding -= count - len(failed)
            if failed:
                redelivered += len(failed)
                tasks.put((prefix, failed))
        elapsed = time.perf_counter() - t0
    finally:
        for _ in procs:
            tasks.put(None)
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
    return {
        "elapsed_s": elapsed,
        "invocations": invocations,
        "redelivered_messages": redelivered,
        "handler_cpu_s": cpu,
        "invocation_s_max": max(durations),
        "invocation_s_median": sorted(durations)[len(durations) // 2],
    }


def rate_limit_bound(requests: int, limit: int, window_s: float, latency_s: float) -> float:
    """Least time to have ``requests`` answered with at most ``limit`` started in any rolling
    window: request k cannot start before floor(k / limit) windows, then takes its latency."""
    return math.floor((requests - 1) / limit) * window_s + latency_s


def slots_bound(requests: int, slots: int, latency_s: float) -> float:
    """Least time with at most ``slots`` requests in flight, each taking ``latency_s``."""
    return math.ceil(requests / slots) * latency_s


def batch_shape_bound(
    batches: int, chunks_per_batch: int, containers: int, parallel: int, latency_s: float
) -> float:
    """Least time when the limit does not bind: whole batches go to whichever container is free
    (rounds of ``containers``), and a batch's chunks go ``parallel`` at a time."""
    return math.ceil(batches / containers) * math.ceil(chunks_per_batch / parallel) * latency_s


def least_time(
    requests: int, limit: int, window_s: float, starts_s: list[float], parallel: int, latency_s: float
) -> float:
    """Least time with both limits when containers start at ``starts_s`` with ``parallel`` slots
    each: every request takes ``latency_s`` on the earliest free slot and is counted when
    answered, and request k + ``limit`` cannot be counted before request k left the window.
    With every container starting at 0: k = floor((R-1)/limit) full windows back to back, then
    the rest through the slots, k x window + ceil((R - k x limit) / slots) x latency."""
    free = sorted(start for start in starts_s for _ in range(parallel))
    counted: list[float] = []
    for k in range(requests):
        begin = free[0] if k < limit else max(free[0], counted[k - limit] + window_s - latency_s)
        counted.append(begin + latency_s)
        free[0] = begin + latency_s
        free.sort()
    return counted[-1]


def window_use(timeline: dict[str, Any], slots: int) -> dict[str, Any]:
    """Where the time of a figure-c run went, from the sandbox's request timeline
    (``SandboxControl.timeline()``): HubSpot's side of the pacing, whatever the drain believed.

    - ``window_full_s``: the rolling window held ``limit`` counted requests (waiting is right);
    - ``slots_busy_s``: the window had room and every one of the ``slots`` calls was in flight;
    - ``room_idle_s``: the window had room and a slot was free (time the rate limit did not cost);
    - ``first_window_fill_s``: from the first request to the ``limit``-th counted one;
    - ``refill_delay_s``: for request i and the one ``limit`` later, how long after i left the
      window the later one was counted (0 would use the window fully; a 429 makes none);
    - ``admitted_per_window``: counted requests in each ``window`` from the first arrival.
    """
    limit = timeline["rate_limit_per_10s"]
    window = timeline["window_ms"] / 1000
    requests = timeline["requests"]
    if not requests:
        return {}
    t0 = min(r["arrived"] for r in requests)
    end = max(r["answered"] for r in requests)
    admitted = sorted(r["admitted"] for r in requests if r["admitted"] is not None)
    events = [(a, 0, 1) for a in admitted] + [(a + window, 0, -1) for a in admitted]
    events += [(r["arrived"], 1, 1) for r in requests] + [(r["answered"], 1, -1) for r in requests]
    events.sort(key=lambda e: (e[0], -e[2]))
    counted = in_flight = 0
    spent = {"window_full_s": 0.0, "slots_busy_s": 0.0, "room_idle_s": 0.0}
    at = t0
    for when, kind, step in events:
        when = min(max(when, t0), end)
        if when > at:
            key = (
                "window_full_s"
                if counted >= limit
                else "slots_busy_s"
                if in_flight >= slots
                else "room_idle_s"
            )
            spent[key] += when - at
            at = when
        if kind == 0:
            counted += step
        else:
            in_flight += step
    delays = [admitted[i + limit] - admitted[i] - window for i in range(len(admitted) - limit)]
    per_window = [0] * (int((admitted[-1] - t0) // window) + 1) if admitted else []
    for a in admitted:
        per_window[int((a - t0) // window)] += 1
    return {
        "span_s": end - t0,
        **spent,
        "first_window_fill_s": admitted[limit - 1] - t0 if len(admitted) >= limit else None,
        "refill_delay_s_mean": sum(delays) / len(delays) if delays else None,
        "refill_delay_s_max": max(delays) if delays else None,
        "admitted_per_window": per_window,
    }
