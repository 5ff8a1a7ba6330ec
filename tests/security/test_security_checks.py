"""The security checks (checks/security_checks.py) pass: checkov on the template, bandit on our code,
pip-audit on the layer's requirements. The tools run from .venv-audit, which the Makefile's test
target creates. Their summaries are printed whatever the outcome.

pip-audit needs a vulnerability service (PyPI's per-release JSON API or OSV). Where neither answers,
as on a machine that reaches only package indexes, the tool says SKIPPED and its test is skipped
with the exact reason (pytest's ``-rs`` summary shows it): never counted as a pass.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
import textwrap
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def _load(name: str, relative: str):
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / relative)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


security_checks = _load("security_checks", "checks/security_checks.py")
cfn_template = _load("cfn_template_for_security", "tests/template/cfn_template.py")

PASS, FAIL, SKIPPED = security_checks.PASS, security_checks.FAIL, security_checks.SKIPPED

# The checkov skips the template carries, each with its reason (a new one must be argued here too).
EXPECTED_SKIPS = {
    ("CKV_AWS_116", "DrainFunction"),
    ("CKV_AWS_117", "DrainFunction"),
    ("CKV_AWS_115", "DrainFunction"),
    ("CKV_AWS_173", "DrainFunction"),
    ("CKV_AWS_158", "DrainFunctionLogGroup"),
    ("CKV_AWS_119", "LedgerTable"),
    ("CKV_AWS_119", "RateSlotsTable"),
    ("CKV_AWS_116", "ReplayFunction"),
    ("CKV_AWS_117", "ReplayFunction"),
    ("CKV_AWS_115", "ReplayFunction"),
    ("CKV_AWS_173", "ReplayFunction"),
    ("CKV_AWS_158", "ReplayFunctionLogGroup"),
    ("CKV_AWS_116", "ReconcileFunction"),
    ("CKV_AWS_117", "ReconcileFunction"),
    ("CKV_AWS_115", "ReconcileFunction"),
    ("CKV_AWS_173", "ReconcileFunction"),
    ("CKV_AWS_158", "ReconcileFunctionLogGroup"),
}


def show(capsys, outcomes):
    with capsys.disabled():
        print()
        for outcome in outcomes:
            print(outcome.render())


def test_checkov_finds_nothing_on_the_template_as_written_and_after_the_sam_transform(capsys):
    outcomes = security_checks.check_checkov()
    show(capsys, outcomes)
    assert [o.check for o in outcomes] == ["checkov template.yaml", "checkov after SAM transform"]
    assert all(o.status == PASS for o in outcomes), "\n".join(o.render() for o in outcomes)


def test_every_checkov_skip_is_one_we_argued():
    template = cfn_template.load_template()
    skips = set()
    for name, resource in template["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert len(skip.get("comment", "").split()) >= 10, f"{skip['id']} on {name} needs its reason"
            skips.add((skip["id"], name))
    assert skips == EXPECTED_SKIPS


def test_checkov_check_fails_on_a_finding_and_on_a_skip_without_reason(tmp_path):
    text = (REPO_ROOT / "template.yaml").read_text(encoding="utf-8")
    # The VPC skip removed: a real finding. The DLQ skip's reason removed: a skip nobody argued.
    broken = re.sub(r"          - id: CKV_AWS_117\n(?:            .*\n|              .*\n)*", "", text)
    broken = broken.replace(
        "          - id: CKV_AWS_116\n            comment: >-\n",
        "          - id: CKV_AWS_116\n            unexplained: >-\n",
        1,
    )
    assert broken.count("CKV_AWS_117") == 0 and "unexplained" in broken
    path = tmp_path / "template.yaml"
    path.write_text(broken, encoding="utf-8")
    as_written = security_checks.check_checkov(str(path))[0]
    assert as_written.status == FAIL
    assert any(d.startswith("FAILED CKV_AWS_117") for d in as_written.details)
    assert any(d.startswith("SKIPPED WITHOUT A REASON CKV_AWS_116") for d in as_written.details)


def test_bandit_finds_no_medium_or_high_issue_in_our_code(capsys):
    outcomes = security_checks.check_bandit()
    show(capsys, outcomes)
    assert [o.status for o in outcomes] == [PASS], outcomes[0].render()


def test_bandit_check_fails_on_a_medium_finding():
    scratch = REPO_ROOT / ".pytest_cache" / "bandit-scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        (scratch / "bad.py").write_text(
            textwrap.dedent("""\
            import yaml

            def load(text):
                return yaml.load(text, Loader=yaml.Loader)
        """),
            encoding="utf-8",
        )
        [outcome] = security_checks.check_bandit((str(scratch.relative_to(REPO_ROOT)),))
    finally:
        shutil.rmtree(scratch)
    assert outcome.status == FAIL
    assert any("B506" in d for d in outcome.details)


def passed_or_skipped(outcome) -> None:
    """A check's outcome as pytest's: a check that could not run is a skip with its reason, never a pass."""
    if outcome.status == SKIPPED:
        pytest.skip(f"{outcome.check} SKIPPED: {outcome.summary}: " + "; ".join(outcome.details))
    assert outcome.status == PASS, outcome.render()


def test_pip_audit_finds_no_known_vulnerability_in_the_layer(capsys):
    """A known vulnerability fails. Where no vulnerability service answers (this workplace reaches
    only the package registries), the outcome is SKIPPED and so is this test, with the reasons."""
    outcomes = security_checks.check_pip_audit()
    show(capsys, outcomes)
    [outcome] = outcomes
    passed_or_skipped(outcome)


def test_an_audit_that_could_not_run_is_a_skip_with_its_reason_not_a_pass():
    unaudited = security_checks.judge_pip_audit(
        {
            "dependencies": [
                {"name": "urllib3", "skip_reason": "Dependency not found on PyPI: urllib3 (2.7.0)"}
            ]
        }
    )
    assert unaudited.status == SKIPPED and unaudited.render().startswith("[SKIPPED] pip-audit: ")
    with pytest.raises(pytest.skip.Exception, match="pip-audit SKIPPED: .*not found on PyPI: urllib3"):
        passed_or_skipped(unaudited)
    with pytest.raises(AssertionError):
        passed_or_skipped(security_checks.Outcome("pip-audit", FAIL, "1 known vulnerability"))


def test_the_tool_ends_with_a_verdict_that_names_what_was_skipped_and_why():
    outcomes = [
        security_checks.Outcome("bandit", PASS, "0 medium/high"),
        security_checks.Outcome("pip-audit", SKIPPED, "no vulnerability service answered", ["why"]),
    ]
    assert security_checks.verdict(outcomes) == (
        2,
        "security checks: 1 passed, 1 SKIPPED (pip-audit: no vulnerability service answered): "
        "not a pass, exit 2",
    )
    assert security_checks.verdict(outcomes[:1]) == (0, "security checks: 1 passed")
    failed = [*outcomes, security_checks.Outcome("checkov", FAIL, "1 failed")]
    assert (
        security_checks.verdict(failed)[0] == 1 and "1 FAILED (checkov)" in security_checks.verdict(failed)[1]
    )


@pytest.mark.parametrize(
    ("report", "status"),
    [
        ({"dependencies": [{"name": "urllib3", "version": "2.7.0", "vulns": []}]}, PASS),
        (
            {
                "dependencies": [
                    {
                        "name": "urllib3",
                        "version": "2.0.0",
                        "vulns": [{"id": "GHSA-x", "fix_versions": ["2.0.7"]}],
                    }
                ]
            },
            FAIL,
        ),
        (
            {
                "dependencies": [
                    {"name": "urllib3", "version": "2.7.0", "vulns": []},
                    {"name": "private-lib", "skip_reason": "Dependency not found on PyPI: private-lib (1.0)"},
                ]
            },
            FAIL,
        ),
        (
            {
                "dependencies": [
                    {"name": "urllib3", "skip_reason": "Dependency not found on PyPI: urllib3 (2.7.0)"}
                ]
            },
            SKIPPED,
        ),
        ({"dependencies": []}, FAIL),
    ],
)
def test_pip_audit_report_passes_only_when_everything_was_audited_and_clean(report, status):
    assert security_checks.judge_pip_audit(report).status == status
