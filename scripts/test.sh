#!/usr/bin/env bash
# The one test command: installs what the tests need (skopeo, podman, buildah, umoci from Debian) when missing,
# builds, runs the whole suite and ends with one line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."

bash .ci/install-clients.sh || { echo "could not install the real clients"; echo "0 passed, 1 failed"; exit 1; }

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
log=$(mktemp)
dotnet build tests/Registry.Tests -c Release 2>&1 | tail -n 3
build=${PIPESTATUS[0]}
if [ "$build" -ne 0 ]; then
  echo "build failed"; echo "0 passed, 1 failed"; exit 1
fi
dotnet test tests/Registry.Tests -c Release --no-build --logger "console;verbosity=normal" "$@" 2>&1 | tee "$log" \
  | grep -E '^\s+(Failed|Skipped) |^\s+(Passed|Failed)!|Error Message|^\s+at |Total tests|Passed:|Failed:' | head -n 400
status=${PIPESTATUS[0]}

summary=$(grep -E '(Passed|Failed)!\s+-' "$log" | tail -n 1)
passed=$(sed -nE 's/.*Passed:\s+([0-9]+).*/\1/p' <<<"$summary")
failed=$(sed -nE 's/.*Failed:\s+([0-9]+),.*/\1/p' <<<"$summary")
rm -f "$log"
if [ -z "$passed" ]; then passed=0; failed=${failed:-1}; [ "$status" -eq 0 ] && status=1; fi
echo "${passed} passed, ${failed} failed"
exit "$status"
