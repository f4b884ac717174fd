"""The CI dependency audit's verdicts (``.ci/audit.py``), on pip-audit's JSON as it prints it.

The real service is not called here (CI's own ``make audit`` does that); these check that an unreachable
service is reported as skipped, never as a pass, and that a known vulnerability fails unless accepted.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def audit():
    spec = importlib.util.spec_from_file_location("ci_audit", REPO / ".ci" / "audit.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["ci_audit"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def _skip(name: str, version: str) -> dict:
    return {"name": name, "skip_reason": f"Dependency not found on PyPI and could not be audited: {name} ({version})"}


def test_every_package_skipped_is_an_audit_skipped_not_a_pass(audit) -> None:
    report = {"dependencies": [_skip("torch", "2.14.1"), _skip("pillow", "13.0.0")], "fixes": []}
    out = audit.summarize(report, "pypi", accepted={})
    assert out.status == 0
    assert out.text.startswith("audit skipped: ") and "none of the 2 installed packages" in out.text
    assert "passed" not in out.text


def test_a_known_vulnerability_fails_with_package_version_and_fix(audit) -> None:
    report = {
        "dependencies": [
            {"name": "pillow", "version": "9.0.0", "vulns": [{"id": "PYSEC-1", "fix_versions": ["9.0.1"]}]},
            {"name": "numpy", "version": "2.3.0", "vulns": []},
            _skip("torch", "2.14.1"),
        ]
    }
    out = audit.summarize(report, "pypi", accepted={})
    assert out.status == 1
    assert "audit: 2 packages checked against pypi, 1 not checked" in out.text
    assert "VULNERABLE: pillow 9.0.0: PYSEC-1; fixed in 9.0.1" in out.text and "not checked: torch" in out.text
    accepted = audit.summarize(report, "pypi", accepted={"PYSEC-1": "only reachable through X, which we never call"})
    assert accepted.status == 0 and "accepted: pillow 9.0.0: PYSEC-1" in accepted.text
    clean = audit.summarize({"dependencies": report["dependencies"][1:]}, "pypi", accepted={})
    assert clean.status == 0 and "audit passed: no known vulnerability" in clean.text


def test_an_unreachable_tool_or_venv_is_skipped_with_its_reason(audit, tmp_path: Path) -> None:
    out = audit.audit(tmp_path / "no-venv", tmp_path / "tools", "pypi")
    assert out.status == 0 and out.text.startswith("audit skipped: no virtual environment at")
    res = subprocess.run(
        [sys.executable, str(REPO / ".ci" / "audit.py"), "--venv", str(tmp_path / "no-venv")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0 and res.stdout.startswith("audit skipped: ")
