"""Helpers of tests/support/scan_terraform.sh: the skip-comment audit and the scan summaries.

Runs under the scanners' own virtualenv (.venv-scan), so it uses the standard library only.

  python scan_report.py skips <dir>                  every skip comment has a reason
  python scan_report.py summary checkov <json> <dir> one line per failed check, then totals
  python scan_report.py summary trivy <json> <dir>

Exit status: 0 clean, 1 findings, 2 the scan is unusable (no checks ran, files not parsed).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

# checkov:skip=<ID>:<reason>; trivy:ignore:<ID>[:exp:<date>...] (tfsec:ignore is trivy's too).
CHECKOV_SKIP = re.compile(r"checkov:skip=(?P<id>[^:\s]*)(?::(?P<reason>.*))?")
TRIVY_IGNORE = re.compile(r"(?:trivy|tfsec):ignore:(?P<id>\S*)(?P<reason>.*)")
DIRECTIVE = re.compile(r"checkov:skip=|(?:trivy|tfsec):ignore:")
COMMENT = re.compile(r"^\s*(?:#|//)\s*(?P<text>.*)$")


def _has_words(text: str | None) -> bool:
    return bool(text and re.search(r"\w{2,}", text))


def _reason_above(lines: list[str], index: int) -> bool:
    """A plain comment (not another skip) right above an ignore counts as its reason."""
    for previous in reversed(lines[:index]):
        match = COMMENT.match(previous)
        if not match:
            return False
        if not DIRECTIVE.search(previous):
            return _has_words(match.group("text"))
    return False


def unexplained_skips(root: Path) -> list[str]:
    """One message per skip comment under `root` that gives no reason."""
    problems: list[str] = []
    for path in sorted(root.rglob("*.tf")):
        lines = path.read_text().splitlines()
        for index, line in enumerate(lines):
            checkov = CHECKOV_SKIP.search(line)
            if checkov and not _has_words(checkov.group("reason")):
                problems.append(
                    f"{path}:{index + 1}: checkov skip of {checkov.group('id') or '?'} without "
                    "a reason; write '#checkov:skip=<ID>:<why it does not apply>'"
                )
            trivy = TRIVY_IGNORE.search(line)
            if trivy and not (_has_words(trivy.group("reason")) or _reason_above(lines, index)):
                problems.append(
                    f"{path}:{index + 1}: trivy ignore of {trivy.group('id') or '?'} without a "
                    "reason; write '#trivy:ignore:<ID> <why>' or put the reason in a comment "
                    "on the line above"
                )
    return problems


def _checkov(report: Any, target: str) -> tuple[list[str], str, int, bool]:
    parts = report if isinstance(report, list) else [report]
    totals = {"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0}
    failures: list[str] = []
    for part in parts:
        for key in totals:
            totals[key] += int(part.get("summary", {}).get(key, 0))
        for check in part.get("results", {}).get("failed_checks", []):
            first, last = check["file_line_range"]
            failures.append(
                f"{target}{check['file_path']}:{first}-{last}: checkov {check['check_id']} "
                f"{check['resource']}: {check['check_name']}"
            )
    text = ", ".join(f"{value} {key.replace('_', ' ')}" for key, value in totals.items())
    ran = totals["passed"] + totals["failed"] + totals["skipped"]
    return failures, text, ran, totals["parsing_errors"] > 0


def _trivy(report: Any, target: str) -> tuple[list[str], str, int, bool]:
    ran = 0
    failures: list[str] = []
    for result in report.get("Results") or []:
        counts = result.get("MisconfSummary") or {}
        ran += int(counts.get("Successes", 0)) + int(counts.get("Failures", 0))
        for item in result.get("Misconfigurations") or []:
            cause = item.get("CauseMetadata", {})
            lines = f"{cause.get('StartLine', 0)}-{cause.get('EndLine', 0)}"
            failures.append(
                f"{target}/{result['Target']}:{lines}: trivy {item['ID']} ({item['Severity']}) "
                f"{cause.get('Resource') or '?'}: {item['Title']}"
            )
    return failures, f"{ran - len(failures)} passed, {len(failures)} failed", ran, False


def summary(tool: str, report_path: Path, target: str) -> int:
    report = json.loads(report_path.read_text())
    summarise = _checkov if tool == "checkov" else _trivy
    failures, totals, ran, unparsed = summarise(report, target.rstrip("/"))
    for line in sorted(failures):
        print(line)
    print(f"{tool}: {totals}")
    if ran == 0:
        print(f"{tool}: ran no checks at all; the scan is empty, not clean", file=sys.stderr)
        return 2
    if unparsed:
        print(f"{tool}: some files were not parsed; run it by hand to see why", file=sys.stderr)
        return 2
    return 1 if failures else 0


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "skips":
        problems = unexplained_skips(Path(argv[1]))
        for problem in problems:
            print(problem)
        return 1 if problems else 0
    if len(argv) == 4 and argv[0] == "summary" and argv[1] in ("checkov", "trivy"):
        return summary(argv[1], Path(argv[2]), argv[3])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
