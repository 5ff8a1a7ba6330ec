"""The one table of outside limits (payments_drain.core.limits): the page that shows it, its sources,
the code that reads it, and the one clock every part of the drain reads."""

import ast
import re
from pathlib import Path

from payments_drain.adapters import visibility
from payments_drain.core import limits
from payments_drain.core.holds import RECEIVE_MARGIN_S
from payments_drain.core.limits import LIMITS, markdown_table

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "layers/shared/payments_drain"


def test_docs_limits_md_shows_exactly_the_table_in_the_code():
    assert markdown_table() in (ROOT / "docs/limits.md").read_text(encoding="utf-8")


def test_every_limit_names_its_aws_or_hubspot_document_and_what_happens_past_it():
    assert len(LIMITS) >= 20
    for limit in LIMITS:
        assert re.match(r"https://(docs\.aws\.amazon\.com|developers\.hubspot\.com)/", limit.source), limit
        assert limit.past in (limits.REFUSED, limits.THROTTLED, limits.DROPPED, limits.REDELIVERED), limit
        assert limit.value > 0 and limit.effect, limit


def test_the_code_reads_the_limits_from_the_table():
    assert visibility.MAX_ENTRIES == limits.SQS_BATCH_ENTRIES.value
    # template.yaml's copies of the limits: tests/template/test_template_homes.py
    assert RECEIVE_MARGIN_S < limits.SQS_MAX_VISIBILITY_S.value


def test_no_module_of_the_drain_reads_the_time_module_but_the_clock():
    """One clock (payments_drain.core.clock) for everything, so the simulation moves all of it at once."""
    checked = 0
    for path in PACKAGE.rglob("*.py"):
        if path.name == "clock.py":
            continue
        checked += 1
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "time"
            ):
                assert node.attr not in ("time", "monotonic", "sleep"), f"{path.name}: time.{node.attr}"
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "now":
                assert getattr(node.func.value, "id", None) != "datetime", f"{path.name}: datetime.now"
    assert checked > 25  # every module of every layer, not only the package's top
