"""The README and docs/ say what the code does: configuration defaults, deploy commands, make targets.
(The runbook and the parameters against the code and the template: test_docs_vs_code.py.)"""

from __future__ import annotations

import ast
import logging
import os
import re
import shlex
import subprocess
import tomllib
from pathlib import Path

import pytest
from payments_drain.orchestration.config import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
CONFIGURATION = (ROOT / "docs/configuration.md").read_text(encoding="utf-8")
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def configuration_table() -> dict[str, str]:
    """docs/configuration.md's table of the function's environment: variable -> its default cell."""
    section = CONFIGURATION.split("## The function's environment", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([A-Z0-9_]+)` \| (.*?) \| .* \|$", section, re.M)
    assert rows, "no configuration table"
    return dict(rows)


def documented(cell: str) -> str | None:
    """A default cell as a value: None for "(required...)", "" for "empty", else the first `code` span."""
    if cell.startswith("(required"):
        return None
    if cell.startswith("empty"):
        return ""
    match = re.match(r"`([^`]*)`", cell)
    assert match, f"default cell without a value: {cell!r}"
    return match.group(1)


def test_every_setting_of_the_code_is_in_the_table_with_the_code_default():
    table = configuration_table()
    for name, info in Settings.model_fields.items():
        assert name in table, f"{name} is not documented"
        cell = documented(table[name])
        if info.is_required():
            assert cell is None, f"{name}: the code requires it, the README says {table[name]!r}"
        elif isinstance(info.default, float):
            assert cell is not None and float(cell) == info.default, name
        else:
            assert cell == str(info.default), f"{name}: code {info.default!r}, README {table[name]!r}"


def test_the_powertools_defaults_in_the_table_are_powertools_own(monkeypatch):
    from aws_lambda_powertools import Logger, Metrics
    from aws_lambda_powertools.metrics.exceptions import SchemaValidationError

    for name in ("POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    table = configuration_table()
    logger = Logger(service=None)
    assert documented(table["POWERTOOLS_SERVICE_NAME"]) == logger.service
    assert documented(table["POWERTOOLS_LOG_LEVEL"]) == logging.getLevelName(logger.log_level)
    assert documented(table["POWERTOOLS_METRICS_NAMESPACE"]) is None  # required: no default
    metrics = Metrics()
    metrics.add_metric(name="PaymentsCreated", unit="Count", value=1)
    with pytest.raises(SchemaValidationError, match="namespace"):
        metrics.serialize_metric_set()
    metrics.clear_metrics()


def test_the_table_documents_nothing_the_code_and_template_do_not_have():
    template = (ROOT / "template.yaml").read_text(encoding="utf-8")
    for name in configuration_table():
        assert name in Settings.model_fields or re.search(rf"^\s+{name}:", template, re.M), name


# --- deploy: samconfig, outputs, parameters ---------------------------------------------------------

DEPLOY = (ROOT / "docs/deploy.md").read_text(encoding="utf-8")


SAM = ROOT / ".venv-sam/bin/sam"  # the Makefile's test target creates it
SAM_ENV = {**os.environ, "SAM_CLI_TELEMETRY": "0"}


def sam_commands() -> list[list[str]]:
    """Every `.venv-sam/bin/sam ...` command the README and docs/ show (inline or in a block)."""
    commands = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8").replace("\\\n", " ")
        for match in re.finditer(r"\.venv-sam/bin/sam ([^`\n]+)", text):
            commands.append(shlex.split(match.group(1)))
    return commands


def test_the_no_prompt_deploy_overrides_the_samconfig_prompt():
    config = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    assert (
        config["default"]["deploy"]["parameters"]["confirm_changeset"] is True
    )  # guided and plain deploy ask
    no_prompt = [c for c in sam_commands() if c[0] == "deploy" and "--guided" not in c and len(c) > 1]
    assert no_prompt and all("--no-confirm-changeset" in c for c in no_prompt)


def test_every_sam_option_the_docs_use_is_one_the_pinned_sam_cli_has():
    helps: dict[str, str] = {}
    for command in sam_commands():
        sub = " ".join(
            w
            for w in command[:2]
            if not w.startswith("-") and w in ("deploy", "build", "validate", "delete", "local", "invoke")
        )
        if sub not in helps:
            result = subprocess.run(
                [str(SAM), *sub.split(), "--help"], capture_output=True, text=True, timeout=120, env=SAM_ENV
            )
            assert result.returncode == 0, result.stderr
            helps[sub] = result.stdout
        for option in (w.split("=")[0] for w in command if w.startswith("--")):
            assert re.search(rf"(^|[\s/]){re.escape(option)}\b", helps[sub], re.M), f"sam {sub}: {option}"


# Run by the runtime's interpreter (a .pyc and its source hash are per Python version): every module
# of a built directory has bytecode Lambda will use, checked by source hash, named by Lambda's path.
BYTECODE_CHECK = """
import importlib.util, marshal, pathlib, sys
root, lambda_root = pathlib.Path(sys.argv[1]), sys.argv[2]
bad, count = [], 0
for source in root.rglob("*.py"):
    count += 1
    pyc = pathlib.Path(importlib.util.cache_from_source(str(source)))
    data = pyc.read_bytes() if pyc.is_file() else b""
    flags = int.from_bytes(data[4:8], "little") if data else None
    ok = (
        data[:4] == importlib.util.MAGIC_NUMBER
        and flags == 0b11  # hash-based, checked against the source at import
        and data[8:16] == importlib.util.source_hash(source.read_bytes())
        and marshal.loads(data[16:]).co_filename == f"{lambda_root}/{source.relative_to(root).as_posix()}"
    )
    if not ok:
        bad.append(str(source.relative_to(root)))
print(count, len(bad), bad[:5])
"""


def services_the_code_creates() -> set[str]:
    """Every AWS service the functions' code (the layer's package and the functions) makes a client
    of: each ``.client(...)``, ``.resource(...)`` and ``.create_client(...)`` call, whose service
    must be written out (a name only known at run time could be one the build left out)."""
    services = set()
    sources = [*(ROOT / "layers/shared/payments_drain").rglob("*.py"), *(ROOT / "functions").rglob("*.py")]
    for source in sources:
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("client", "resource", "create_client")
            ):
                service = node.args[0] if node.args else None
                assert isinstance(service, ast.Constant) and isinstance(service.value, str), (
                    f"{source.relative_to(ROOT)}:{node.lineno}: a client whose service is not written out"
                )
                services.add(service.value)
    return services


# Run by the runtime's interpreter on the built layer (botocore's own models only: HOME has no
# ~/.aws/models): the X-Ray SDK outside Lambda builds an xray client for its sampler at import
# (Powertools' tracer imports it), then a client of every service named after the layer's path.
CLIENTS_CHECK = """
import sys
sys.path.insert(0, sys.argv[1])
import boto3, botocore
assert botocore.__file__.startswith(sys.argv[1]), botocore.__file__
import aws_xray_sdk.core
for service in sys.argv[2:]:
    boto3.client(service)
print(type(aws_xray_sdk.core.xray_recorder.sampler).__name__, len(sys.argv[2:]))
"""


def test_make_build_with_python313_on_path_as_the_docs_say(tmp_path):
    # docs/deploy.md, "2. Build": `PYENV_VERSION=3.11.7:3.12.1:3.13.0 make build` on this project's machines
    env = {**SAM_ENV, "PYENV_VERSION": "3.11.7:3.12.1:3.13.0"}
    build = tmp_path / "build"
    result = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "build",
            f"BUILD_DIR={build}",
            f"ARGS=--cache-dir {tmp_path / 'cache'}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Build Succeeded" in result.stdout
    assert (build / "SharedLayer/python/payments_drain/orchestration/drain.py").is_file()
    assert (build / "SharedLayer/python/pydantic").is_dir()  # the layer's requirements, installed
    # ... with bytecode: the SAM CLI built none, and a cold start compiled every module (figure d)
    for built, lambda_root in (("SharedLayer/python", "/opt/python"), ("DrainFunction", "/var/task")):
        check = subprocess.run(
            ["python3.13", "-c", BYTECODE_CHECK, str(build / built), lambda_root],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert check.returncode == 0, check.stderr
        count, bad, first = check.stdout.split(" ", 2)
        assert int(count) > (300 if built.startswith("SharedLayer") else 0) and bad == "0", (built, first)
    # ... with botocore's models pruned to the services the code creates clients of, each client
    # still made from the built layer (its handlers cannot be imported here: the layer's
    # pydantic-core is built for arm64, as the template's functions run)
    services = services_the_code_creates()
    assert {"secretsmanager", "dynamodb", "sqs"} <= services  # the scan finds the drain's own
    layer = build / "SharedLayer/python"
    models = {p.name for p in (layer / "botocore/data").iterdir() if p.is_dir()}
    assert services | {"xray"} <= models and len(models) < 30, sorted(models)
    clients = subprocess.run(
        ["python3.13", "-c", CLIENTS_CHECK, str(layer), *sorted(services)],
        env={
            **{k: v for k, v in env.items() if not k.startswith(("AWS_", "LAMBDA_"))},
            "HOME": str(tmp_path),
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert clients.returncode == 0, clients.stderr[-2000:]
    assert clients.stdout.split() == ["DefaultSampler", str(len(services))]
    # ... and Lambda still takes it: the function and its layer, unzipped, within the limit
    from payments_drain.core.limits import LAMBDA_UNZIPPED_PACKAGE_MB

    size = sum(
        f.stat().st_size
        for d in ("SharedLayer", "DrainFunction")
        for f in (build / d).rglob("*")
        if f.is_file()
    )
    assert size < LAMBDA_UNZIPPED_PACKAGE_MB.value * 1024 * 1024, size


def test_every_template_output_is_in_the_deploy_doc():
    from local.stack.template import load_yaml

    template = load_yaml((ROOT / "template.yaml").read_text(encoding="utf-8"))
    for name in template["Outputs"]:
        assert f"| `{name}`" in DEPLOY or f", `{name}`" in DEPLOY, (
            f"{name} is not in docs/deploy.md's outputs"
        )


def readme_section(title: str) -> str:
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_the_setup_docs_call_sam_from_its_virtual_environment():
    """A bare `sam deploy` fails on a fresh clone: the SAM CLI is in .venv-sam."""
    texts = {
        "docs/deploy.md": DEPLOY,
        **{f"README {t}": readme_section(t) for t in ("Quick start", "Deploy")},
    }
    sam = r"\bsam (?:build|deploy|validate|delete|local)\b"
    for name, text in texts.items():
        blocks = re.findall(r"^```\w*\n(.*?)^```", text, re.S | re.M)
        commands = [line.strip() for block in blocks for line in block.splitlines() if re.search(sam, line)]
        prose = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
        commands += re.findall(rf"`([^`\n]*{sam}[^`\n]*)`", prose)
        assert commands, name
        for command in commands:
            assert command.startswith((".venv-sam/bin/sam", "make ", "PYENV_VERSION")), f"{name}: `{command}`"


# --- make ---------------------------------------------------------------------------------------------


def make_targets() -> list[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return re.findall(r"^([a-z][a-z-]*):", text, re.M)


def test_make_help_lists_every_target_on_one_line():
    result = subprocess.run(
        ["make", "--no-print-directory", "help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    listed = {line.split()[0] for line in lines if line.strip()}
    assert listed == set(make_targets())
    assert all(len(line.split(None, 1)) == 2 for line in lines)  # each: a target and what it does


def test_every_make_target_the_docs_name_exists():
    text = "".join(path.read_text(encoding="utf-8") for path in DOCS)
    named = set(
        re.findall(r"(?:^\s*|[`$;&]\s*|=\S+ )make ([a-z][a-z-]+)", text, re.M)
    )  # a command, not prose
    assert {"run", "test", "setup-hubspot", "producer", "replay", "reconcile"} <= named
    assert not named - set(make_targets()), named - set(make_targets())


def test_every_relative_link_of_the_docs_leads_to_a_file_and_heading_that_exist():
    def anchors(path: Path) -> set[str]:
        titles = re.findall(r"^#+ (.+)$", path.read_text(encoding="utf-8"), re.M)
        return {re.sub(r"[^\w\- ]", "", t.lower()).replace(" ", "-") for t in titles}

    broken = []
    for path in DOCS:
        text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.S | re.M)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if target.startswith(("http://", "https://")):
                continue
            file, _, anchor = target.partition("#")
            linked = (path.parent / file).resolve() if file else path
            if not linked.exists() or (anchor and linked.suffix == ".md" and anchor not in anchors(linked)):
                broken.append(f"{path.relative_to(ROOT)}: {target}")
    assert not broken


def _table_rows(text: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in text.splitlines()
        if line.startswith("| ") and not line.startswith("| figure")
    ]


def test_the_readmes_performance_table_is_the_latest_runs_goals():
    """README's table (issue 22: every figure with its goal) holds the goal rows of the latest
    whole run in docs/performance.md, value and verdict alike: the template default's cost, every
    other row with a goal."""
    performance = (ROOT / "docs/performance.md").read_text(encoding="utf-8")
    latest = performance.split("\n## Latest results", 1)[1].split("\n## ", 1)[0]
    expected = [
        [figure, value, ratio, target, met]
        for figure, value, _bound, ratio, target, met in _table_rows(latest)
        if target != "(info)" and (not figure.startswith("g.") or "(template default)" in figure)
    ]
    assert len(expected) >= 15
    assert _table_rows(readme_section("Performance")) == expected
    for figure in ("a. CPU per message, batch 10", "d. cold start (import + first invocation)"):
        assert figure in [row[0] for row in expected]
    assert [row[0] for row in expected if row[0].startswith("h. ")] == [
        f"h. {n} containers, {r} requests at 190/10 s"
        for n, r in (("4", "2,000"), ("50", "2,000"), ("200", "4,000"), ("1,000", "20,000"))
    ]
