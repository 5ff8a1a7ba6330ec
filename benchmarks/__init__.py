"""Benchmarks of the payments drain: figures beside their baselines or bounds, never pass/fail.

``make bench`` (``python -m benchmarks``) prints a table and writes ``bench-results.json``;
``--quick`` is a ~1-minute run. See docs/performance.md for what each figure means.

Every measured handler runs in a fresh worker subprocess (``benchmarks.worker``), as a Lambda
container would: its own interpreter, one import of ``functions/drain/app.py``, its own process
CPU clock, stdout (the Powertools log and EMF lines) sent to /dev/null.
"""
