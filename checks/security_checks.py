"""Security checks of the payments drain: checkov on the template, bandit on our code, pip-audit on the layer.

    .venv/bin/python checks/security_checks.py            # all checks, summaries, exit 0 / 1 / 2
    .venv/bin/python checks/security_checks.py checkov    # one of: checkov, bandit, pip-audit

Each tool runs from the audit virtual environment (``.venv-audit``, pinned in
``requirements-audit.txt``; the Makefile creates it) in a subprocess, with paths relative to the
repository root. This module needs only the standard library, so any Python can run it.

- **checkov** scans ``template.yaml`` as written (framework cloudformation, which reads SAM
  resources) and the same template after the SAM transform (done by the SAM CLI's own translator in
  ``.venv-sam``), so that the IAM role SAM generates from ``Policies`` is checked too. Zero failed
  checks, zero parsing errors, and every skip must carry its reason in the template.
- **bandit** scans ``layers/shared/payments_drain``, ``functions``, ``local`` and ``tools``: no
  finding of medium or high severity.
- **pip-audit** audits ``layers/shared/requirements.txt`` (with its dependencies resolved). Its
  vulnerability services are PyPI's per-release JSON API and OSV. When it could audit nothing at all,
  the check reports SKIPPED with the reason, never a pass.

The last line is the verdict: how many checks passed, and each one FAILED or SKIPPED by name.
Exit status: 0 every check passed; 1 a check failed; 2 none failed but one was SKIPPED (could not run).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess  # runs the audit tools: fixed argument lists, no shell  # nosec B404
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
AUDIT_VENV = REPO_ROOT / ".venv-audit"
SAM_VENV = REPO_ROOT / ".venv-sam"
TEMPLATE = "template.yaml"
LAYER_REQUIREMENTS = "layers/shared/requirements.txt"
BANDIT_PATHS = ("layers/shared/payments_drain", "functions", "local", "tools")
BANDIT_FAILING_SEVERITIES = {"MEDIUM", "HIGH"}
PYPI_PROBE = "https://pypi.org/pypi/{name}/{version}/json"  # what pip-audit's PyPI service asks
OSV_HOST = "api.osv.dev"

PASS, FAIL, SKIPPED = "PASS", "FAIL", "SKIPPED"


@dataclass
class Outcome:
    check: str
    status: str
    summary: str
    details: list[str] = field(default_factory=list)

    def render(self) -> str:
        lines = [f"[{self.status}] {self.check}: {self.summary}"]
        lines += [f"    {line}" for line in self.details]
        return "\n".join(lines)


def tool(name: str) -> Path:
    return AUDIT_VENV / "bin" / name


def _run(
    command: list[str], timeout: int = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(  # fixed argument list, no shell  # nosec B603
        [str(c) for c in command],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def _missing(*paths: Path) -> Outcome | None:
    absent = [str(p.relative_to(REPO_ROOT)) for p in paths if not p.exists()]
    if absent:
        return Outcome(
            "setup", FAIL, f"missing {', '.join(absent)}: run make test (it creates the audit venv)"
        )
    return None


# --- checkov ------------------------------------------------------------------------------------


def sam_transform(template: Path, out: Path) -> None:
    """Write the template after the SAM transform (run this with .venv-sam's Python).

    Local CodeUri/ContentUri become placeholder S3 URIs, as ``sam validate`` does; no AWS call is
    made (no managed policy is named in the template, so the policy loader is never asked).
    """
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    class NoManagedPolicies:
        def load(self) -> dict:
            return {}

    document = yaml_parse(template.read_text(encoding="utf-8"))
    for resource in document["Resources"].values():
        properties = resource.get("Properties") or {}
        for key in ("CodeUri", "ContentUri"):
            if isinstance(properties.get(key), str):
                properties[key] = "s3://placeholder-bucket/placeholder-key"
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    transformed = transform(document, {"AWS::Region": os.environ["AWS_DEFAULT_REGION"]}, NoManagedPolicies())
    out.write_text(json.dumps(transformed, indent=1), encoding="utf-8")


UNEXPLAINED = {"", "No comment provided"}  # what checkov reports for a skip without a comment


def _reason_of(check: dict) -> str:
    return (check.get("check_result", {}).get("suppress_comment") or "").strip()


def _checkov(path: str, label: str, list_skips: bool = True) -> Outcome:
    result = _run(
        [
            tool("checkov"),
            "--file",
            path,
            "--framework",
            "cloudformation",
            "--output",
            "json",
            "--skip-download",
        ]
    )
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        return Outcome(
            label,
            FAIL,
            f"checkov gave no JSON report (exit {result.returncode})",
            (result.stdout + result.stderr).strip().splitlines()[-20:],
        )
    if isinstance(report, list):  # one report per framework
        report = next((r for r in report if r.get("check_type") == "cloudformation"), report[0])
    if not report.get("results"):  # checkov's empty report when there was nothing to scan
        return Outcome(label, FAIL, "checkov found nothing to scan", [json.dumps(report)[:500]])
    summary = report["summary"]
    results = report["results"]
    details = [
        f"FAILED {c['check_id']} {c['check_name']} on {c['resource']}" for c in results["failed_checks"]
    ]
    unexplained = [c for c in results["skipped_checks"] if _reason_of(c) in UNEXPLAINED]
    details += [f"SKIPPED WITHOUT A REASON {c['check_id']} on {c['resource']}" for c in unexplained]
    details += [
        f"skipped {c['check_id']} on {c['resource']}: {c['check_result'].get('suppress_comment', '')[:90]}..."
        for c in results["skipped_checks"]
        if list_skips and c not in unexplained
    ]
    text = (
        f"passed {summary['passed']}, failed {summary['failed']}, skipped {summary['skipped']}, "
        f"parsing errors {summary['parsing_errors']}"
    )
    ok = summary["failed"] == 0 and summary["parsing_errors"] == 0 and not unexplained
    return Outcome(label, PASS if ok else FAIL, text, details)


def check_checkov(template: str = TEMPLATE) -> list[Outcome]:
    missing = _missing(tool("checkov"), SAM_VENV / "bin" / "python")
    if missing:
        return [missing]
    outcomes = [_checkov(template, f"checkov {template}")]
    with tempfile.TemporaryDirectory() as tmp:
        transformed = Path(tmp) / "template.transformed.json"
        result = _run(
            [SAM_VENV / "bin" / "python", Path(__file__).resolve(), "--sam-transform", template, transformed],
            timeout=120,
            env={"AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0"},
        )
        if result.returncode != 0:
            outcomes.append(
                Outcome(
                    "checkov after SAM transform",
                    FAIL,
                    "the SAM transform failed",
                    result.stderr.strip().splitlines()[-10:],
                )
            )
        else:
            outcomes.append(_checkov(str(transformed), "checkov after SAM transform", list_skips=False))
    return outcomes


# --- bandit -------------------------------------------------------------------------------------


def check_bandit(paths: tuple[str, ...] = BANDIT_PATHS) -> list[Outcome]:
    missing = _missing(tool("bandit"))
    if missing:
        return [missing]
    paths = [str(p) for p in paths if (REPO_ROOT / p).exists()]
    result = _run([tool("bandit"), "--recursive", "--format", "json", "--quiet", *paths])
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        return [
            Outcome(
                "bandit",
                FAIL,
                f"bandit gave no JSON report (exit {result.returncode})",
                result.stderr.strip().splitlines()[-10:],
            )
        ]
    findings = report.get("results", [])
    failing = [f for f in findings if f["issue_severity"] in BANDIT_FAILING_SEVERITIES]
    totals = report.get("metrics", {}).get("_totals", {})
    text = (
        f"{len(failing)} medium/high, {len(findings) - len(failing)} low findings in {', '.join(paths)} "
        f"({totals.get('loc', '?')} lines, {totals.get('skipped_tests', 0)} suppressed by # nosec)"
    )
    details = [
        f"{f['issue_severity']} {f['test_id']} {f['filename']}:{f['line_number']} {f['issue_text']}"
        for f in failing
    ]
    details += [f"bandit error: {e['filename']}: {e['reason']}" for e in report.get("errors", [])]
    ok = not failing and not report.get("errors")
    return [Outcome("bandit", PASS if ok else FAIL, text, details)]


# --- pip-audit ----------------------------------------------------------------------------------


def _service_reachability(name: str, version: str) -> list[str]:
    """Plain words on why the vulnerability services did not answer, from this machine."""
    notes = []
    url = PYPI_PROBE.format(name=name, version=version)
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # fixed https URL  # nosec B310
            notes.append(f"GET {url} answered HTTP {response.status}")
    except urllib.error.HTTPError as error:
        notes.append(
            f"GET {url} answered HTTP {error.code} (PyPI's per-release JSON API, which pip-audit's "
            "default service reads, is not served to this machine)"
        )
    except OSError as error:
        notes.append(f"GET {url} failed: {error}")
    try:
        socket.getaddrinfo(OSV_HOST, 443)
        notes.append(f"{OSV_HOST} (pip-audit --vulnerability-service osv) resolves")
    except OSError as error:
        notes.append(f"{OSV_HOST} (pip-audit --vulnerability-service osv) does not resolve: {error}")
    return notes


def judge_pip_audit(report: dict) -> Outcome:
    """pip-audit's JSON report, judged: PASS only when every package was audited and none is vulnerable."""
    dependencies = report.get("dependencies", [])
    unaudited = [d for d in dependencies if d.get("skip_reason")]
    audited = [d for d in dependencies if not d.get("skip_reason")]
    vulnerable = [d for d in audited if d.get("vulns")]
    if dependencies and not audited:
        return Outcome(
            "pip-audit",
            SKIPPED,
            "no vulnerability service answered, no package audited",
            [
                f"pip-audit resolved {len(dependencies)} packages from {LAYER_REQUIREMENTS} and audited none "
                f"(first: {unaudited[0]['skip_reason']})"
            ],
        )
    details = [
        f"{d['name']} {d['version']}: {v['id']} (fixed in {', '.join(v.get('fix_versions') or ['?'])})"
        for d in vulnerable
        for v in d["vulns"]
    ]
    details += [f"not audited: {d['skip_reason']}" for d in unaudited]
    text = (
        f"{len(audited)} packages audited, {sum(len(d['vulns']) for d in vulnerable)} known vulnerabilities, "
        f"{len(unaudited)} not audited"
    )
    ok = bool(audited) and not vulnerable and not unaudited
    return Outcome("pip-audit", PASS if ok else FAIL, text, details)


def check_pip_audit() -> list[Outcome]:
    missing = _missing(tool("pip-audit"))
    if missing:
        return [missing]
    result = _run(
        [
            tool("pip-audit"),
            "--requirement",
            LAYER_REQUIREMENTS,
            "--format",
            "json",
            "--progress-spinner",
            "off",
        ],
        timeout=900,
    )
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        return [
            Outcome(
                "pip-audit",
                FAIL,
                f"pip-audit gave no JSON report (exit {result.returncode})",
                result.stderr.strip().splitlines()[-10:],
            )
        ]
    outcome = judge_pip_audit(report)
    if outcome.status == SKIPPED:
        first = next(d for d in report["dependencies"] if d.get("skip_reason"))
        version = first["skip_reason"].rsplit("(", 1)[-1].rstrip(")")
        outcome.details += _service_reachability(first["name"], version)
    return [outcome]


CHECKS = {"checkov": check_checkov, "bandit": check_bandit, "pip-audit": check_pip_audit}


def main(argv: list[str]) -> int:
    if argv[:1] == ["--sam-transform"]:
        sam_transform(REPO_ROOT / argv[1], Path(argv[2]))
        return 0
    names = argv or list(CHECKS)
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        print(f"unknown check(s) {unknown}; choose from {list(CHECKS)}", file=sys.stderr)
        return 64
    outcomes = [outcome for name in names for outcome in CHECKS[name]()]
    for outcome in outcomes:
        print(outcome.render())
    code, line = verdict(outcomes)
    print(line)
    return code


def verdict(outcomes: list[Outcome]) -> tuple[int, str]:
    """The exit status and the last line: a check that could not run is named SKIPPED, never passed."""
    passed = [o for o in outcomes if o.status == PASS]
    failed = [o for o in outcomes if o.status == FAIL]
    skipped = [o for o in outcomes if o.status == SKIPPED]
    parts = [f"{len(passed)} passed"]
    if failed:
        parts.append(f"{len(failed)} FAILED ({', '.join(o.check for o in failed)})")
    if skipped:
        parts.append(f"{len(skipped)} SKIPPED ({'; '.join(f'{o.check}: {o.summary}' for o in skipped)})")
    code = 1 if failed else 2 if skipped else 0
    return code, "security checks: " + ", ".join(parts) + (f": not a pass, exit {code}" if code else "")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
