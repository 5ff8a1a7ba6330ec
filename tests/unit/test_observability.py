"""``observability.traced``: Powertools' subsegment per call while tracing is on, nothing at all
while it is off (Powertools' decorator would open a dummy subsegment per call: docs/performance.md,
figure a)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ADAPTERS = ROOT / "layers/shared/payments_drain/adapters"

# Imports every adapter in a fresh interpreter (the tracer is built once, at import) and prints how
# many of their methods Powertools' capture_method wrapped (its wrapper is Tracer's ``decorate``).
COUNT_WRAPPED = """
import importlib, inspect, pkgutil
import payments_drain.adapters as adapters
wrapped = 0
for info in pkgutil.iter_modules(adapters.__path__):
    module = importlib.import_module(f"payments_drain.adapters.{info.name}")
    for _, cls in inspect.getmembers(module, inspect.isclass):
        if cls.__module__ == module.__name__:
            wrapped += sum(
                "Tracer." in getattr(getattr(f, "__code__", None), "co_qualname", "")
                for f in vars(cls).values()
            )
print(wrapped)
"""


def wrapped_methods(env: dict[str, str]) -> int:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "LAMBDA_", "AWS_SAM"))}
    out = subprocess.run(
        [sys.executable, "-c", COUNT_WRAPPED],
        env={**clean, "PYTHONPATH": str(ROOT / "layers/shared"), "AWS_DEFAULT_REGION": "us-east-1", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout)


def traced_in_source() -> int:
    return sum(path.read_text().count("@traced(") for path in ADAPTERS.glob("*.py"))


def test_every_traced_method_opens_a_subsegment_in_lambda_with_tracing_on():
    assert traced_in_source() >= 3  # the HubSpot calls and the token, at least
    assert wrapped_methods({"LAMBDA_TASK_ROOT": "/var/task"}) == traced_in_source()


@pytest.mark.parametrize(
    "env",
    [{"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"}, {}],
    ids=["trace disabled", "outside Lambda"],
)
def test_no_method_is_wrapped_while_tracing_is_off(env):
    assert wrapped_methods(env) == 0
