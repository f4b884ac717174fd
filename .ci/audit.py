#!/usr/bin/env python3
"""Dependency audit for CI: ``pip-audit`` over exactly the packages the project's venv has installed.

``pip freeze`` of ``.venv`` is the honest list (the requirements have ranges, some are installed ``--no-deps``); a
``pip-audit`` in its own throwaway venv checks it with ``--no-deps --disable-pip``. pip-audit says "No known
vulnerabilities found" even when it could look nothing up: a run that checked no package prints ``audit skipped:
<reason>`` and exits 0. Exit 1 when a vulnerability not in :data:`ACCEPTED` affects an installed version.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

ACCEPTED: dict[str, str] = {}
"""Vulnerability id (``PYSEC-...``, ``GHSA-...``, ``CVE-...``) -> why it is accepted for now."""

TIMEOUT_S = 600


@dataclass
class Outcome:
    """What one audit found: the text for CI's log and the exit status."""

    status: int
    lines: list[str]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def skipped(reason: str) -> Outcome:
    return Outcome(0, [f"audit skipped: {reason}"])


def summarize(report: dict, service: str, accepted: dict[str, str] | None = None) -> Outcome:
    """Turn ``pip-audit --format json`` output into the CI verdict (see the module docstring)."""
    accepted = ACCEPTED if accepted is None else accepted
    deps = report.get("dependencies", [])
    audited = [d for d in deps if "skip_reason" not in d]
    skips = [d for d in deps if "skip_reason" in d]
    if not deps:
        return skipped("pip-audit checked no package (empty package list)")
    if not audited:
        return skipped(
            f"the vulnerability service ({service}) answered for none of the {len(deps)} installed packages, so "
            "its advisory data cannot be reached from here (the packages are not unknown); pip-audit's reason "
            f"for the first: {skips[0]['skip_reason']}"
        )
    findings = [(d, v) for d in audited for v in d.get("vulns", [])]
    lines = [f"audit: {len(audited)} packages checked against {service}, {len(skips)} not checked"]
    if skips:
        lines.append("  not checked: " + ", ".join(" ".join([d["name"], d.get("version", "")]).strip() for d in skips))
    new = 0
    for d, v in findings:
        aliases = v.get("aliases", [])
        ok = v["id"] in accepted or bool(set(aliases) & set(accepted))
        new += not ok
        also = f" ({', '.join(aliases)})" if aliases else ""
        fix = ", ".join(v.get("fix_versions", [])) or "no fixed release yet"
        why = f" -- {accepted.get(v['id'], '')}" if ok else ""
        tag = "accepted" if ok else "VULNERABLE"
        lines.append(f"  {tag}: {d['name']} {d['version']}: {v['id']}{also}; fixed in {fix}{why}")
    if new:
        lines.append(f"audit failed: {new} known vulnerabilities in installed packages (listed above)")
        return Outcome(1, lines)
    lines.append("audit passed: no known vulnerability" + (" outside the accepted list" if findings else ""))
    return Outcome(0, lines)


def pinned_packages(venv: Path) -> tuple[list[str], list[str]]:
    """``name==version`` lines of ``venv`` (what the tests ran with) and the lines that are not pinned."""
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "freeze", "--exclude-editable"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = [x.strip() for x in out.splitlines() if x.strip() and not x.startswith("#")]
    return [x for x in lines if "==" in x and "@" not in x], [x for x in lines if "==" not in x or "@" in x]


def tool(tool_venv: Path) -> Path:
    """``pip-audit`` from its own venv, installed on first use from ``requirements-audit.txt``."""
    exe = tool_venv / "bin" / "pip-audit"
    if not exe.is_file():
        subprocess.run([sys.executable, "-m", "venv", str(tool_venv)], check=True, capture_output=True)
        pip = [str(tool_venv / "bin" / "python"), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "-r", str(REPO / "requirements-audit.txt")], check=True, capture_output=True)
    return exe


def audit(venv: Path, tool_venv: Path, service: str) -> Outcome:
    if not (venv / "bin" / "python").is_file():
        return skipped(f"no virtual environment at {venv} (run 'make venv' first)")
    try:
        exe = tool(tool_venv)
    except (subprocess.CalledProcessError, OSError) as exc:
        detail = (getattr(exc, "stderr", None) or b"").decode(errors="replace").strip().splitlines()
        return skipped(f"could not install pip-audit ({detail[-1] if detail else exc})")
    pins, unpinned = pinned_packages(venv)
    with tempfile.TemporaryDirectory() as tmp:
        pins_txt = Path(tmp) / "pins.txt"
        pins_txt.write_text("\n".join(pins) + "\n")
        cmd = [str(exe), "-r", str(pins_txt), "--no-deps", "--disable-pip", "--vulnerability-service", service]
        cmd += ["--format", "json", "--progress-spinner", "off"]
        try:
            run = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return skipped(f"pip-audit did not finish within {TIMEOUT_S} s (vulnerability service too slow?)")
    try:
        report = json.loads(run.stdout)
    except json.JSONDecodeError:
        last = (run.stderr.strip().splitlines() or [f"exit status {run.returncode}, no output"])[-1]
        return skipped(f"pip-audit could not query {service}: {last}")
    outcome = summarize(report, service)
    if unpinned:
        outcome.lines.insert(1, "  not pinned, not checked: " + ", ".join(unpinned))
    return outcome


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--venv", type=Path, default=REPO / ".venv", help="the environment to audit")
    p.add_argument("--tool-venv", type=Path, default=None, help="where pip-audit is installed (<venv>/.audit)")
    p.add_argument("--service", default="pypi", choices=["pypi", "osv"], help="pip-audit's vulnerability service")
    args = p.parse_args(argv)
    outcome = audit(args.venv, args.tool_venv or args.venv / ".audit", args.service)
    print(outcome.text, flush=True)
    return outcome.status


if __name__ == "__main__":
    sys.exit(main())
