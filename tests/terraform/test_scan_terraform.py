"""scan_terraform.sh: checkov and trivy really scan, offline, and every skip needs a reason."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support import scan_report

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "tests" / "support" / "scan_terraform.sh"
SCAN_VENV = REPO_ROOT / ".venv-scan"
FIXTURES = Path(__file__).parent / "fixtures"

needs_scanners = pytest.mark.skipif(
    not (SCAN_VENV / "bin" / "checkov").exists(),
    reason="the scanners live in .venv-scan; run `make setup` to create it",
)


def scan(directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), str(SCAN_VENV), str(directory)],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
        timeout=300,
    )


@pytest.fixture(scope="module")
def planted() -> subprocess.CompletedProcess[str]:
    # One run serves every test on the planted bucket: each scan takes seconds.
    return scan(FIXTURES / "scan_planted")


@needs_scanners
@pytest.mark.slow
def test_checkov_catches_the_planted_bucket_without_public_access_block(
    planted: subprocess.CompletedProcess[str],
) -> None:
    assert planted.returncode == 1
    assert (
        "scan_planted/main.tf:3-5: checkov CKV2_AWS_6 aws_s3_bucket.planted: "
        "Ensure that S3 bucket has a Public Access block"
    ) in planted.stdout


@needs_scanners
@pytest.mark.slow
def test_trivy_catches_the_planted_bucket_without_public_access_block(
    planted: subprocess.CompletedProcess[str],
) -> None:
    assert planted.returncode == 1
    assert (
        "scan_planted/main.tf:3-5: trivy AVD-AWS-0094 (LOW) aws_s3_bucket.planted: "
        "S3 buckets should each define an aws_s3_bucket_public_access_block"
    ) in planted.stdout


@needs_scanners
@pytest.mark.slow
def test_trivy_uses_its_embedded_checks_and_says_so(
    planted: subprocess.CompletedProcess[str],
) -> None:
    assert "checks embedded in the binary (--skip-check-update" in planted.stdout
    assert "mirror.gcr.io" not in planted.stdout + planted.stderr


@needs_scanners
@pytest.mark.slow
def test_findings_skipped_next_to_the_resource_with_reasons_pass() -> None:
    done = scan(FIXTURES / "scan_skipped_with_reasons")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "checkov: 1 passed, 0 failed, 2 skipped, 0 parsing errors" in done.stdout
    assert "no unexplained findings" in done.stdout


@needs_scanners
@pytest.mark.slow
def test_a_skip_without_a_reason_fails_the_scan() -> None:
    done = scan(FIXTURES / "scan_skip_without_reason")

    assert done.returncode == 1
    assert (
        "scan_skip_without_reason/main.tf:4: checkov skip of CKV_AWS_158 without a reason"
    ) in done.stdout


@needs_scanners
@pytest.mark.slow
def test_a_scan_that_ran_no_checks_fails_as_empty() -> None:
    done = scan(FIXTURES / "scan_empty")

    assert done.returncode == 2
    assert "checkov: ran no checks at all; the scan is empty, not clean" in done.stderr
    assert "trivy: ran no checks at all; the scan is empty, not clean" in done.stderr


def test_a_missing_scan_venv_is_a_setup_error(tmp_path: Path) -> None:
    done = subprocess.run(
        ["bash", str(SCRIPT), str(tmp_path / "no-venv"), str(FIXTURES / "scan_planted")],
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 2
    assert "has no checkov; run 'make setup'" in done.stderr


# ---- the skip audit and the summaries, without the scanners ----------------------------------


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "main.tf").write_text(text)
    return tmp_path


def test_checkov_skip_with_a_reason_is_explained(tmp_path: Path) -> None:
    root = write(tmp_path, 'resource "a" "b" {\n  #checkov:skip=CKV_AWS_1:not public\n}\n')

    assert scan_report.unexplained_skips(root) == []


def test_checkov_skip_without_a_reason_is_reported(tmp_path: Path) -> None:
    root = write(tmp_path, 'resource "a" "b" {\n  #checkov:skip=CKV_AWS_1:\n}\n')

    assert scan_report.unexplained_skips(root) == [
        f"{root}/main.tf:2: checkov skip of CKV_AWS_1 without a reason; "
        "write '#checkov:skip=<ID>:<why it does not apply>'"
    ]


def test_trivy_ignore_with_a_reason_on_the_same_line_is_explained(tmp_path: Path) -> None:
    root = write(tmp_path, '#trivy:ignore:AVD-AWS-0017 default key is fine\nresource "a" "b" {}\n')

    assert scan_report.unexplained_skips(root) == []


def test_trivy_ignore_with_a_reason_in_the_comment_above_is_explained(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        "# SSE-S3 on purpose: no key policy to manage\n"
        "#trivy:ignore:AVD-AWS-0132\n"
        "#trivy:ignore:AVD-AWS-0088\n"
        'resource "a" "b" {}\n',
    )

    assert scan_report.unexplained_skips(root) == []


def test_trivy_ignore_alone_is_reported(tmp_path: Path) -> None:
    root = write(tmp_path, '\n#trivy:ignore:AVD-AWS-0017\nresource "a" "b" {}\n')

    assert [p.split(": ", 1)[0] for p in scan_report.unexplained_skips(root)] == [
        f"{root}/main.tf:2"
    ]


def test_summary_of_an_empty_trivy_report_is_unusable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "trivy.json"
    report.write_text(json.dumps({"Results": []}))

    assert scan_report.summary("trivy", report, "terraform") == 2
    assert "ran no checks at all" in capsys.readouterr().err


def test_summary_of_checkov_parsing_errors_is_unusable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "checkov.json"
    summary = {"passed": 3, "failed": 0, "skipped": 0, "parsing_errors": 1}
    report.write_text(json.dumps({"summary": summary, "results": {}}))

    assert scan_report.summary("checkov", report, "terraform") == 2
    assert "some files were not parsed" in capsys.readouterr().err
