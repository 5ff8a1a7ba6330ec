"""The docs held to the code: every template parameter and every setting of the function in the
configuration table with its real default; every reason category, every metric and every alarm in
the runbook (docs/operations.md). Each list is derived from the code or the template, never kept by
hand, so a new parameter, reason, metric or alarm fails here until the docs say what it is."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import payments_drain
import pytest
from payments_drain.orchestration.config import Settings

from local.stack.template import load_yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
CONFIGURATION = (DOCS / "configuration.md").read_text(encoding="utf-8")
RUNBOOK = (DOCS / "operations.md").read_text(encoding="utf-8")
TEMPLATE = load_yaml((ROOT / "template.yaml").read_text(encoding="utf-8"))  # SAM's own loader (CFN tags)


def table_rows(text: str) -> dict[str, list[str]]:
    """Every markdown table row whose first cell is one `code` span: that name -> the other cells."""
    rows: dict[str, list[str]] = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if cells and (name := re.fullmatch(r"`([^`]+)`", cells[0])):
            rows.setdefault(name.group(1), cells[1:])  # the first row naming it
    return rows


def section(text: str, title: str) -> str:
    """A `## title` section, up to the next `## ` heading."""
    assert f"\n## {title}\n" in text, f"no section {title!r}"
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def default_of(cell: str) -> str | None:
    """A default cell as a value: None for "(required...)", "" for "empty"/"*(empty)*", else the
    first `code` span."""
    if cell.startswith("(required"):
        return None
    if cell.startswith(("empty", "*(empty)*")):
        return ""
    match = re.match(r"`([^`]*)`", cell)
    assert match, f"default cell without a value: {cell!r}"
    return match.group(1)


# --- configuration ----------------------------------------------------------------------------------


def test_every_template_parameter_is_in_the_configuration_table_with_its_default():
    rows = table_rows(CONFIGURATION)
    missing = [name for name in TEMPLATE["Parameters"] if name not in rows]
    assert not missing, f"template parameters not in docs/configuration.md: {missing}"
    wrong = {
        name: (spec.get("Default"), rows[name][0])
        for name, spec in TEMPLATE["Parameters"].items()
        if default_of(rows[name][0]) != str(spec.get("Default", ""))
    }
    assert not wrong, f"template default != documented default: {wrong}"


def test_every_setting_of_the_function_is_in_the_configuration_table_with_its_default():
    rows = table_rows(CONFIGURATION)
    missing = [name for name in Settings.model_fields if name not in rows]
    assert not missing, f"settings not in docs/configuration.md: {missing}"
    for name, info in Settings.model_fields.items():
        cell = default_of(rows[name][0])
        if info.is_required():
            assert cell is None, f"{name}: the code requires it, the docs say {rows[name][0]!r}"
        elif isinstance(info.default, float):
            assert cell is not None and float(cell) == info.default, name
        else:
            assert cell == str(info.default), f"{name}: code {info.default!r}, docs {rows[name][0]!r}"


def test_every_variable_the_template_sets_on_the_drain_is_in_the_configuration_table():
    variables = TEMPLATE["Resources"]["DrainFunction"]["Properties"]["Environment"]["Variables"]
    variables = {
        **TEMPLATE.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {}),
        **variables,
    }
    rows = table_rows(CONFIGURATION)
    assert not [name for name in variables if name not in rows]


# --- the runbook: reasons, metrics, alarms, dashboard -----------------------------------------------


def _product_modules() -> list[tuple[str, Path]]:
    root = Path(payments_drain.__file__).parent
    return [
        (".".join(["payments_drain", *path.relative_to(root).with_suffix("").parts]), path)
        for path in sorted(root.rglob("*.py"))
        if path.name != "__init__.py"
    ]


def reason_categories() -> set[str]:
    """The category of every ``Reason(...)`` the product code makes with a literal or a named
    constant (HubSpot's own categories, passed through from its answers, are the rest)."""
    found: set[str] = set()
    for module_name, path in _product_modules():
        module = None
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (
                isinstance(node, ast.Call)
                and "Reason" in (getattr(node.func, "id", None), getattr(node.func, "attr", None))
            ):
                continue
            arg = (
                node.args[0]
                if node.args
                else next((k.value for k in node.keywords if k.arg == "category"), None)
            )
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.add(arg.value)
            elif isinstance(arg, (ast.Name, ast.Attribute)):
                value = module = module or importlib.import_module(module_name)
                try:
                    for part in ast.unparse(arg).split("."):
                        value = getattr(value, part)
                except AttributeError:
                    continue  # a local variable: a category read from HubSpot's answer
                found.add(value)
    return found


def test_the_reason_categories_are_read_from_the_code():
    assert {
        "INVALID_MESSAGE",
        "LEDGER_UNAVAILABLE",
        "RETENTION_EXPIRING",
        "TIME_BUDGET",
    } <= reason_categories()


def test_every_reason_category_is_in_the_runbook():
    rows = table_rows(section(RUNBOOK, "Reasons"))
    missing = sorted(reason_categories() - set(rows))
    assert not missing, f"reason categories not in docs/operations.md, Reasons: {missing}"


def emitted_metrics() -> set[str]:
    """The metric names the function publishes for one batch, from the code that publishes them."""
    from payments_drain.core.observability import metrics
    from payments_drain.orchestration.drain import Result
    from payments_drain.orchestration.invocation import Stats
    from payments_drain.orchestration.service import publish

    metrics.clear_metrics()
    publish(Result({"batchItemFailures": []}, {}, Stats(latencies_ms=[12.0])), 0, 1.0)
    names = set(metrics.metric_set)
    metrics.clear_metrics()
    return names


def test_the_metric_names_are_read_from_the_code():
    assert {
        "PaymentsCreated",
        "HubSpotLatency",
        "BatchDuration",
        "UniquePropertyMissing",
    } <= emitted_metrics()


def test_every_metric_the_function_emits_is_in_the_runbook():
    rows = table_rows(section(RUNBOOK, "Metrics"))
    missing = sorted(emitted_metrics() - set(rows))
    assert not missing, f"metrics not in docs/operations.md, Metrics: {missing}"


def alarms() -> dict[str, dict]:
    return {
        name: r["Properties"]
        for name, r in TEMPLATE["Resources"].items()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }


@pytest.mark.parametrize("alarm", sorted(alarms()))
def test_every_alarm_has_a_row_and_a_section_in_the_runbook(alarm):
    properties = alarms()[alarm]
    short = properties["AlarmName"]["Fn::Sub"].removeprefix("${AWS::StackName}-")
    rows = table_rows(section(RUNBOOK, "Alarms"))
    assert short in rows, f"{short} has no row in the runbook's alarm table"
    runbook_section = re.search(r'Runbook: docs/operations\.md, "([^"]+)"', properties["AlarmDescription"])
    assert runbook_section and f"\n### {runbook_section.group(1)}\n" in RUNBOOK, alarm


def test_the_dashboard_table_is_one_table_with_a_row_per_widget():
    import json

    body = TEMPLATE["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"][0]
    body = re.sub(r"\$\{[^}]+\}", "1", body)  # the Sub variables, as placeholders
    titles = [w["properties"]["title"] for w in json.loads(body)["widgets"] if "title" in w["properties"]]
    text = section(RUNBOOK, "The dashboard")
    table = re.search(r"^\|.*\|\n(?:\|.*\|\n?)+", text, re.M)
    assert table, "no table in the runbook's dashboard section"
    assert len(re.findall(r"^\|", text, re.M)) == len(table.group(0).splitlines()), "the table is broken up"
    first_cells = [line.split("|")[1].strip() for line in table.group(0).splitlines()[2:]]
    assert first_cells == [re.sub(r" \([^)]*\)$", "", t) for t in titles]


def test_the_readme_s_settings_are_template_parameters_with_their_defaults():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = table_rows(section(readme, "The settings most deployments change"))
    assert len(rows) == 5
    for name, cells in rows.items():
        assert name in TEMPLATE["Parameters"], name
        assert default_of(cells[0]) == str(TEMPLATE["Parameters"][name].get("Default", "")), name
