"""The package's folders are its architecture (layers/shared/payments_drain/__init__.py): each layer
imports only itself and the layers before it, and nothing of ours imports a tool."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "layers/shared/payments_drain"
ORDER = ["core", "adapters", "orchestration", "tools"]
MAY_IMPORT = {
    "core": {"core"},
    "adapters": {"core", "adapters"},
    "orchestration": {"core", "adapters", "orchestration"},
    "tools": {"core", "adapters", "orchestration"},  # a tool never imports another tool
}


def imported_layers(path: Path) -> list[tuple[int, str, str]]:
    """(line, imported module, its layer) for every import of ours in one file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            base = node.module.split(".")
            if base[0] == "payments_drain":
                names = [node.module] if len(base) > 2 else [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.split(".")[0] == "payments_drain"]
        for name in names:
            parts = name.split(".")
            found.append((node.lineno, name, parts[1] if len(parts) > 1 else ""))
    return found


def violations(package: Path) -> list[str]:
    problems = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package)
        if len(relative.parts) == 1:
            if relative.name != "__init__.py":
                problems.append(f"{relative}: a module outside the four layers")
            continue
        layer = relative.parts[0]
        if layer not in ORDER:
            problems.append(f"{relative}: {layer}/ is not a layer ({', '.join(ORDER)})")
            continue
        for line, name, target in imported_layers(path):
            if target not in MAY_IMPORT[layer]:
                problems.append(f"{relative}:{line}: {layer} imports {name}")
    return problems


def test_every_import_follows_the_layers():
    assert violations(PACKAGE) == []
    assert {p.parent.name for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE} == set(ORDER)


@pytest.mark.parametrize(
    ("layer", "line", "problem"),
    [
        (
            "core",
            "from payments_drain.adapters import hubspot",
            "core imports payments_drain.adapters.hubspot",
        ),
        (
            "adapters",
            "from payments_drain.orchestration.drain import Drain",
            "adapters imports payments_drain.orchestration.drain",
        ),
        (
            "orchestration",
            "import payments_drain.tools.producer",
            "orchestration imports payments_drain.tools.producer",
        ),
        (
            "tools",
            "from payments_drain.tools.replay import as_utc",
            "tools imports payments_drain.tools.replay",
        ),
    ],
)
def test_an_import_across_the_order_is_found(tmp_path, layer, line, problem):
    for name in ORDER:
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / layer / "offender.py").write_text(f"{line}\nfrom payments_drain.core.outcomes import State\n")
    assert violations(tmp_path) == [f"{layer}/offender.py:1: {problem}"]


def test_a_module_outside_the_layers_is_found(tmp_path):
    (tmp_path / "__init__.py").write_text("")
    (tmp_path / "helpers.py").write_text("")
    assert violations(tmp_path) == ["helpers.py: a module outside the four layers"]


def test_every_third_party_module_the_layer_imports_is_pinned_in_its_requirements():
    """The layer is built from layers/shared/requirements.txt alone: a module imported but only
    present as another package's dependency (typing_extensions, through pydantic) floats."""
    import re
    import sys
    from importlib.metadata import packages_distributions

    pinned = {
        re.split(r"[\[=]", line)[0].strip().lower().replace("_", "-")
        for line in (PACKAGE.parent / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.lstrip().startswith("#")
    }
    distributions = packages_distributions()
    imported = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                imported.update(a.name.split(".")[0] for a in node.names)
    third_party = {m for m in imported if m not in sys.stdlib_module_names and m != "payments_drain"}
    unpinned = {
        module: distributions.get(module)
        for module in third_party
        if not {d.lower().replace("_", "-") for d in distributions.get(module, [module])} & pinned
    }
    assert third_party >= {"pydantic", "boto3", "urllib3", "aws_lambda_powertools"}
    assert unpinned == {}
