#!/usr/bin/env bash
# Manifest reads (HEAD and GET by tag, 32 connections) against our registry with no authentication, with htpasswd
# (Basic on every request) and with the built-in token service (Bearer), rounds interleaved A B C A B C on fresh
# storage, plus the start-up time (exec to the first answer on /v2/, whatever its status) of each mode.
# See bench/README.md. Needs htpasswd (apache2-utils) and curl.
#
# Environment: ROUNDS=3, STARTS=10 (start-up samples per mode), DURATION=10 (seconds per phase),
#              BINARY=path of a published Registry.Api (default: publish native AOT from this repository),
#              OUT=DIR (results kept there).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
rounds=${ROUNDS:-3}
starts=${STARTS:-10}
duration=${DURATION:-10}
out=${OUT:-/tmp/registry-auth-bench-$(date +%Y%m%d-%H%M%S)}
work=$(mktemp -d /tmp/registry-auth-bench.XXXXXX)
mkdir -p "$out"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && { kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; }
  rm -rf "$work"
}
trap cleanup EXIT
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

if [ -z "${BINARY:-}" ]; then
  log "publishing native AOT"
  dotnet publish "$here/../src/Registry.Api" -c Release -r linux-x64 -o "$work/ours" -nologo -v q >"$work/publish.log" 2>&1 \
    || { cat "$work/publish.log"; exit 1; }
  BINARY="$work/ours/Registry.Api"
fi
dotnet build "$here/Registry.Bench" -c Release -o "$work/bench" -nologo -v q >"$work/bench-build.log" 2>&1 \
  || { cat "$work/bench-build.log"; exit 1; }
htpasswd -B -b -c "$work/htpasswd" bench bench-pw >/dev/null 2>&1

port=5911
settings() {
  case "$1" in
    none) echo "" ;;
    basic) echo "--Registry:Auth:Mode=htpasswd --Registry:Auth:Htpasswd:Path=$work/htpasswd" ;;
    bearer) echo "--Registry:Auth:Mode=token --Registry:Auth:Htpasswd:Path=$work/htpasswd" ;;
  esac
}

start() { # mode data-dir -> sets server_pid and startup_ms (exec to the first answer)
  local t0 t1
  t0=$(date +%s%N)
  # shellcheck disable=SC2046
  "$BINARY" --urls "http://127.0.0.1:$port" "--Registry:Storage:Path=$2" $(settings "$1") >"$work/server.log" 2>&1 &
  server_pid=$!
  until curl -s -o /dev/null "http://127.0.0.1:$port/v2/"; do sleep 0.002; done
  t1=$(date +%s%N)
  startup_ms=$(( (t1 - t0) / 1000000 ))
}
stop() { kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""; }

log "start-up, $starts samples per mode (fresh storage each)"
for i in $(seq "$starts"); do
  for mode in none basic bearer; do
    rm -rf "$work/data"
    start "$mode" "$work/data"
    echo "$mode $startup_ms" >>"$out/startup.txt"
    stop
  done
done

for round in $(seq "$rounds"); do
  for mode in none basic bearer; do
    rm -rf "$work/data"; sync; sleep 2
    start "$mode" "$work/data"
    auth=(); [ "$mode" != none ] && auth=(--auth "$mode" --user bench --password bench-pw)
    log "round $round: $mode"
    dotnet "$work/bench/Registry.Bench.dll" --url "http://127.0.0.1:$port" --pid "$server_pid" --only reads \
      --duration "$duration" "${auth[@]}" >"$out/reads-$mode-$round.txt" 2>&1
    grep -E "manifest (HEAD|GET) by tag|error responses" "$out/reads-$mode-$round.txt" | sed "s/^/$mode $round: /" >&2
    stop
  done
done

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
echo
echo "start-up to first answer (ms, median of $starts):"
for mode in none basic bearer; do
  printf '  %-7s %s\n' "$mode" "$(awk -v m="$mode" '$1==m {print $2}' "$out/startup.txt" | median)"
done
echo "manifest reads (req/s, median of $rounds rounds; ratio to none):"
for figure in "manifest HEAD by tag" "manifest GET by tag"; do
  base=""
  for mode in none basic bearer; do
    value=$(cat "$out"/reads-"$mode"-*.txt | grep "$figure" | awk '{for (i=1;i<=NF;i++) if ($i=="req/s") {print $(i-1); break}}' | median)
    [ -z "$base" ] && base=$value
    printf '  %-24s %-7s %8s  %s\n' "$figure" "$mode" "$value" "$(awk -v a="$value" -v b="$base" 'BEGIN {printf "%.2f", a/b}')"
  done
done
echo "(full output in $out)"
