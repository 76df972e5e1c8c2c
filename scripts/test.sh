#!/usr/bin/env bash
# The one test command: installs what the tests need (skopeo, podman, buildah, umoci from Debian; Ceph, nginx and
# PostgreSQL for the stack scripts) when missing,
# builds, runs the whole suite and ends with one line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."

bash .ci/install-clients.sh || { echo "could not install the real clients"; echo "0 passed, 1 failed"; exit 1; }
bash .ci/install-stack.sh || { echo "could not install the test stack (Ceph, nginx, PostgreSQL)"; echo "0 passed, 1 failed"; exit 1; }

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
log=$(mktemp)
if ! dotnet build tests/Registry.Tests -c Release >"$log" 2>&1; then
  grep -E 'error|Error' "$log" | sort -u | head -n 50
  echo "build failed"; echo "0 passed, 1 failed"; rm -f "$log"; exit 1
fi
dotnet test tests/Registry.Tests -c Release --no-build --logger "console;verbosity=normal" "$@" 2>&1 | tee "$log" \
  | grep -E '^\s+(Failed|Skipped) |Error Message|Total tests|^\s+(Passed|Failed|Skipped):' -A2 | head -n 400
status=${PIPESTATUS[0]}

# vstest's closing block: "Total tests: N", "     Passed: N", "     Failed: N" (the last only when some failed).
passed=$(grep -E '^\s+Passed:\s+[0-9]+\s*$' "$log" | tail -n 1 | grep -oE '[0-9]+')
failed=$(grep -E '^\s+Failed:\s+[0-9]+\s*$' "$log" | tail -n 1 | grep -oE '[0-9]+')
total=$(grep -E '^Total tests:\s+[0-9]+' "$log" | tail -n 1 | grep -oE '[0-9]+')
failed=${failed:-0}
if [ -z "$total" ] || [ -z "$passed" ]; then
  # No summary at all: the run crashed or ran nothing; never report that as a pass.
  passed=${passed:-0}; [ "$failed" -eq 0 ] && failed=1; [ "$status" -eq 0 ] && status=1
elif [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  # dotnet test failed although no test did: a class or collection cleanup that threw, a test host that crashed or
  # was aborted after the last test. Show why, and count it as one failure so the summary line cannot read as a pass.
  echo "dotnet test exited with $status although no test failed; what it reported:"
  grep -E 'Cleanup Failure|\[FAIL\]|aborted|Aborted|crash|Testhost process|exited with error|Unhandled exception' "$log" \
    | sort -u | head -n 40
  failed=1
fi
rm -f "$log"
echo "${passed} passed, ${failed} failed"
exit "$status"
