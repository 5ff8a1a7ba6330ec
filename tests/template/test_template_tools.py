"""The template passes the SAM CLI's validation (with and without its linter) and cfn-lint."""

from __future__ import annotations

import os
import subprocess

import pytest
from cfn_template import REPO_ROOT

SAM = REPO_ROOT / ".venv-sam/bin/sam"  # the Makefile's test target guarantees it
CFN_LINT = REPO_ROOT / ".venv/bin/cfn-lint"


def run(*command):
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1"}
    return subprocess.run(
        [str(c) for c in command], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
    )


BASIC = "This is according to basic SAM Validation"  # what only SAM's own checks print, not --lint's


@pytest.mark.parametrize("extra", [[], ["--lint"]], ids=["sam-validate", "sam-validate-lint"])
def test_sam_validate_passes(extra):
    """Without --lint the SAM CLI runs its own checks (the SAM translator), with it cfn-lint alone:
    samconfig.toml must not turn every `sam validate` into a lint, or the translator never runs."""
    result = run(SAM, "validate", "--region", "us-east-1", *extra)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr
    assert (BASIC in result.stdout + result.stderr) is (not extra)


def test_make_validate_runs_sam_s_checks_and_its_linter():
    """`make validate` (README, docs/deploy.md): with and without --lint, as it says."""
    result = run("make", "--no-print-directory", "validate")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout + result.stderr
    assert out.count("is a valid SAM Template") == 2 and out.count(BASIC) == 1


def test_cfn_lint_passes():
    result = run(CFN_LINT, "template.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_would_catch_a_broken_template(tmp_path):
    broken = (
        (REPO_ROOT / "template.yaml")
        .read_text(encoding="utf-8")
        .replace("Runtime: python3.13", "Runtime: python3.99", 1)
    )
    path = tmp_path / "template.yaml"
    path.write_text(broken, encoding="utf-8")
    result = run(CFN_LINT, path)
    assert result.returncode != 0
