#!/usr/bin/env bash
# Profiles our registry's start-up with perf: exec -> first 200 on GET /v2/, N times on storage made by a first start,
# each start SIGKILLed right after its first answer (so shutdown is not in the profile), then sums the samples of
# all starts into start-up phases (bench/startup-phases.py). See bench/README.md "Start-up".
#
# usage: bash bench/startup-profile.sh BINARY [N=5]     (OUT=DIR keeps the perf.data files; default a new /tmp folder)
set -euo pipefail
binary=$(realpath "$1")
n=${2:-5}
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-$(mktemp -d /tmp/registry-startup-profile.XXXXXX)}
port=${PORT:-5938}
freq=${FREQ:-15000}
mkdir -p "$out"
data="$out/data"
rm -rf "$data"
command -v perf >/dev/null || { echo "perf is needed (apt-get install linux-perf)" >&2; exit 1; }

"$binary" --urls "http://127.0.0.1:$port" "--Registry:Storage:Path=$data" >/dev/null 2>&1 &
first=$!
until curl -s -o /dev/null "http://127.0.0.1:$port/v2/"; do
  kill -0 "$first" 2>/dev/null || { echo "the registry exited at its first start" >&2; exit 1; }
  sleep 0.01
done
kill "$first"; wait "$first" 2>/dev/null || true

files=()
for i in $(seq "$n"); do
  perf record -q -F "$freq" -g -o "$out/start-$i.perf" -- \
    "$binary" --urls "http://127.0.0.1:$port" "--Registry:Storage:Path=$data" >/dev/null 2>&1 &
  recorder=$!
  server=""
  until [ -n "$server" ]; do server=$(pgrep -P "$recorder" || true); sleep 0.001; done
  until curl -s -o /dev/null "http://127.0.0.1:$port/v2/"; do sleep 0.001; done
  kill -KILL "$server"
  wait "$recorder" 2>/dev/null || true
  files+=("$out/start-$i.perf")
done
rm -rf "$data"
python3 "$here/startup-phases.py" --freq "$freq" "${files[@]}"
echo "(perf data in $out; perf report -i $out/start-1.perf --children --sort sym)"
