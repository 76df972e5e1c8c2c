#!/usr/bin/env bash
# Runs bench/Registry.Bench against our registry and against distribution (Debian's docker-registry, the reference
# registry) alternately, each started fresh on empty storage, ROUNDS times, and prints the median of each figure for
# both and the ratio ours/distribution. See bench/README.md.
#
# Environment:
#   ROUNDS=3          rounds (each runs ours, then distribution)
#   QUICK=1           pass --quick to every run (a smoke test of this script)
#   BENCH_ARGS=...    more arguments for every benchmark run, e.g. "--duration 5 --skip ceilings", or
#                     "--only ci-pull,ci-push" for the CI-shaped phases alone
#   OURS_ARGS=...     more arguments for our server, e.g. "--Registry:Storage:FlushToDisk=false"
#   AOT=0             build ours framework-dependent (JIT) instead of trying native AOT first
#   OURS_BINARY=PATH  an already published Registry.Api to run instead of publishing one
#   REGISTRY_SRC=DIR  repository to build ours from (default: this one)
#   WORK_DIR=DIR      where servers' data and binaries go (default: a new folder under /tmp; same filesystem as the
#                     disk ceiling's scratch file); deleted at the end
#   OUT=DIR           where results are kept (default: /tmp/registry-bench-<date>); not deleted
#   DISTRIBUTION=PATH the distribution binary (default: /usr/bin/docker-registry)
#   VERSUS=PATH       another published build of ours (a Registry.Api binary) to run in distribution's place, for an
#                     A/B run of two revisions; its figures are labelled "versus"
#   SETTLE=10         seconds to wait after deleting a run's data (after a sync) before the next server starts
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"
src=$(cd "${REGISTRY_SRC:-$here/..}" && pwd)
rounds=${ROUNDS:-3}
distribution=${DISTRIBUTION:-/usr/bin/docker-registry}
out=${OUT:-/tmp/registry-bench-$(date +%Y%m%d-%H%M%S)}
work=$(mktemp -d "${WORK_DIR:-/tmp}/registry-compare.XXXXXX")
read -r -a bench_args <<<"${BENCH_ARGS:-}"
read -r -a ours_args <<<"${OURS_ARGS:-}"
[ "${QUICK:-0}" = 1 ] && bench_args+=(--quick)
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "interrupted"; exit 130' INT TERM

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

other=distribution
if [ -n "${VERSUS:-}" ]; then
  other=versus
  versus=$(realpath "$VERSUS")
  [ -x "$versus" ] || { echo "VERSUS=$VERSUS is not an executable" >&2; exit 1; }
fi
[ -n "${VERSUS:-}" ] || [ -x "$distribution" ] || { echo "no distribution binary at $distribution (apt-get install docker-registry)" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl is needed" >&2; exit 1; }
mkdir -p "$out"

log "building the benchmark"
dotnet build "$here/Registry.Bench" -c Release -o "$work/bench" -nologo -v q >"$work/bench-build.log" 2>&1 \
  || { cat "$work/bench-build.log"; exit 1; }
bench=(dotnet "$work/bench/Registry.Bench.dll")

ours_kind=""
if [ -n "${OURS_BINARY:-}" ]; then
  ours=("$(realpath "$OURS_BINARY")")
  ours_kind="the given binary $OURS_BINARY"
elif [ "${AOT:-1}" != 0 ]; then
  log "publishing our registry with native AOT from $src (a few minutes)"
  if dotnet publish "$src/src/Registry.Api" -c Release -p:PublishAot=true -o "$work/ours" -nologo -v q \
       >"$work/ours-build.log" 2>&1 && [ -x "$work/ours/Registry.Api" ]; then
    ours=("$work/ours/Registry.Api")
    ours_kind="native AOT"
  else
    log "native AOT publish failed (see below); falling back to framework-dependent"
    tail -n 5 "$work/ours-build.log" >&2
  fi
fi
if [ -z "$ours_kind" ]; then
  log "publishing our registry framework-dependent from $src"
  # The source generators that PublishAot turns on (the code relies on them to pass the AOT analyzers).
  dotnet publish "$src/src/Registry.Api" -c Release -p:PublishAot=false -p:EnableRequestDelegateGenerator=true \
    -p:EnableConfigurationBindingGenerator=true -o "$work/ours" -nologo -v q >"$work/ours-build.log" 2>&1 \
    || { cat "$work/ours-build.log"; exit 1; }
  ours=(dotnet "$work/ours/Registry.Api.dll")
  ours_kind="framework-dependent (JIT)"
fi

# start_server NAME DATA PORT: starts it in the background, sets server_pid, waits until GET /v2/ answers.
start_server() {
  local name=$1 data=$2 port=$3
  mkdir -p "$data"
  if [ "$name" = versus ]; then
    "$versus" --urls "http://127.0.0.1:$port" "--Registry:Storage:Path=$data" "${ours_args[@]}" \
      >"$out/$name-server.log" 2>&1 &
  elif [ "$name" = ours ]; then
    "${ours[@]}" --urls "http://127.0.0.1:$port" "--Registry:Storage:Path=$data" "${ours_args[@]}" \
      >"$out/$name-server.log" 2>&1 &
  else
    cat >"$work/distribution.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $data
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
YAML
    "$distribution" serve "$work/distribution.yml" >"$out/$name-server.log" 2>&1 &
  fi
  server_pid=$!
  for _ in $(seq 1 200); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" 2>/dev/null; then return 0; fi
    kill -0 "$server_pid" 2>/dev/null || { echo "$name exited at start:" >&2; cat "$out/$name-server.log" >&2; return 1; }
    sleep 0.1
  done
  echo "$name did not answer on port $port" >&2
  return 1
}

stop_server() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

revision=$(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo "?")
[ -n "$(git -C "$src" status --porcelain -- src 2>/dev/null)" ] && revision="$revision+uncommitted changes"
{
  echo "ours: $src at $revision, $ours_kind${OURS_ARGS:+, $OURS_ARGS}"
  if [ -n "${VERSUS:-}" ]; then echo "versus: $versus"
  else echo "distribution: $("$distribution" --version 2>&1 | head -n 1)"; fi
  echo "benchmark arguments: ${bench_args[*]:-(none)}; $rounds rounds; $(nproc) cores; $(date -Is)"
} | tee "$out/about.txt"

a_files=() b_files=()
for round in $(seq 1 "$rounds"); do
  for name in ours "$other"; do
    port=$(free_port 5800)
    data="$work/data-$name-$round"
    log "round $round/$rounds: $name on port $port"
    start_server "$name" "$data" "$port"
    rc=0
    "${bench[@]}" --url "http://127.0.0.1:$port" --pid "$server_pid" --label "$name" --scratch "$work" \
      --json "$out/$name-$round.json" "${bench_args[@]}" >"$out/$name-$round.txt" 2>"$out/$name-$round.log" || rc=$?
    kill -0 "$server_pid" 2>/dev/null || { log "$name DIED during the run"; rc=1; }
    stop_server
    rm -rf "$data"
    # Let the deletion reach the disk before the next server starts: on ext4, a new file's inode allocation skips
    # inodes freed in the last seconds (minutes while their inode table block is still dirty), and a run that
    # starts right after tens of thousands of deletions pays for that scan on every file it creates.
    sync
    sleep "${SETTLE:-10}"
    case $rc in
      0) ;;
      3) log "$name answered with errors in round $round: see $out/$name-$round.txt" ;;
      *) log "the benchmark failed against $name in round $round (exit $rc): see $out/$name-$round.log" ;;
    esac
    if [ -s "$out/$name-$round.json" ]; then
      if [ "$name" = ours ]; then a_files+=("$out/$name-$round.json"); else b_files+=("$out/$name-$round.json"); fi
    fi
  done
done

[ ${#a_files[@]} -gt 0 ] && [ ${#b_files[@]} -gt 0 ] || { echo "no results to compare" >&2; exit 1; }
echo
"${bench[@]}" compare --names "ours,$other" --a "$(IFS=,; echo "${a_files[*]}")" \
  --b "$(IFS=,; echo "${b_files[*]}")" | tee "$out/compare.txt"
echo "results (each run's table, JSON and log, the servers' logs): $out"
