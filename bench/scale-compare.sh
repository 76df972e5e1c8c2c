#!/usr/bin/env bash
# Scale-out benchmark (issue #12): our registry as two replicas on S3 (Ceph RGW) + PostgreSQL, and distribution
# 2.8.2 (Debian's docker-registry) with its own S3 driver on the same Ceph, as one instance and as two replicas, all
# behind the same nginx (scripts/stack/nginx.sh). Configurations alternate within each round, each on a fresh
# bucket (and a fresh database for ours); bench/Registry.Bench measures push (monolithic, chunked), pull and small
# pushes through the proxy and samples the RSS of every replica. The medians end up side by side in one table.
# See bench/README.md, "Scale-out compare".
#
# Environment (all optional):
#   ROUNDS=2             rounds; each runs every configuration once, in the order of CONFIGS
#   CONFIGS="ours-2x distribution-2x distribution-1x"   what to run (ours-2x needs the S3 and PostgreSQL stores)
#   BLOB_MIB=1024        size of the big blobs (monolithic and chunked push, pull)
#   PHASES=push,pull,small   Registry.Bench phases (--only)
#   BENCH_ARGS=...       more arguments for every benchmark run, e.g. "--duration 5"
#   OURS_ARGS=...        more arguments for our replicas
#   OURS_BIN=PATH        a published Registry.Api (native binary or Registry.Api.dll) instead of building one
#   AOT=0                build ours framework-dependent (JIT) instead of trying native AOT first
#   REDIRECT=0           1: blob GETs answer 307 to a presigned S3 URL (distribution's default, ours with
#                        Registry:Storage:S3:Redirect=true); 0: both proxy the object (ours' default)
#   DIST_CHUNKSIZE=10485760   distribution's s3 `chunksize` (its default: 10 MiB)
#   S3_MEMSTORE_BYTES    Ceph memstore capacity (default 8 GiB: a run holds up to ~4 blobs of BLOB_MIB at once)
#   OUT=DIR              results (default /tmp/registry-scale-bench-<date>); kept
#   WORK_DIR=DIR         parent of the temporary folder (binaries, stack state, servers' local data); deleted at the end
#   DISTRIBUTION=PATH    the distribution binary (default /usr/bin/docker-registry)
#   SETTLE=5             seconds of rest after each run's clean-up
#   PG_CONNECTION_STRING an existing PostgreSQL (Npgsql Key=Value; form, a user that may create databases) instead
#                        of starting one with scripts/stack/postgres.sh
# The stack (Ceph, PostgreSQL when scripts/stack/postgres.sh exists, nginx) runs under its own REGISTRY_STACK_DIR
# inside the temporary folder, on free ports (S3 from 7580, monitor from 3390, PostgreSQL from 55532, proxy from
# 8580, servers from 5810), so it never meets a test run's stack. Everything listens on 127.0.0.1 and is stopped by
# pid at the end, on failure and on Ctrl-C.
set -Eeuo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"
src=$(cd "$here/.." && pwd)
stack=$src/scripts/stack
rounds=${ROUNDS:-2}
read -r -a configs <<<"${CONFIGS:-ours-2x distribution-2x distribution-1x}"
blob_mib=${BLOB_MIB:-1024}
phases=${PHASES:-push,pull,small}
redirect=${REDIRECT:-0}
dist_chunksize=${DIST_CHUNKSIZE:-10485760}
distribution=${DISTRIBUTION:-/usr/bin/docker-registry}
out=${OUT:-/tmp/registry-scale-bench-$(date +%Y%m%d-%H%M%S)}
read -r -a bench_args <<<"${BENCH_ARGS:-}"
read -r -a ours_args <<<"${OURS_ARGS:-}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
export S3_MEMSTORE_BYTES=${S3_MEMSTORE_BYTES:-$((8 << 30))}

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

for config in "${configs[@]}"; do
  case $config in ours-2x|distribution-1x|distribution-2x) ;; *) die "unknown configuration '$config' in CONFIGS" ;; esac
done
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive number"
[[ $blob_mib =~ ^[1-9][0-9]*$ ]] || die "BLOB_MIB must be a positive number"
[ -x "$distribution" ] || die "no distribution binary at $distribution (apt-get install docker-registry)"
for tool in curl sha256sum nginx ceph radosgw-admin; do
  command -v "$tool" >/dev/null || die "$tool is missing (.ci/install-stack.sh installs the stack)"
done

# Capacity: distribution's blob commit copies the upload to the blob's key (a multipart copy above 32 MiB) before it
# deletes the upload, so both big pushes hold twice their size at once (4 x BLOB_MIB measured); deleted objects are
# freed by RGW's gc, which this script runs after each run, and it waits for memstore to empty before the next
# (memstore refuses writes at 95% full, so ask for 6 x BLOB_MIB).
needed=$(( (blob_mib << 20) * 6 ))
[ "$S3_MEMSTORE_BYTES" -ge "$needed" ] \
  || die "S3_MEMSTORE_BYTES=$S3_MEMSTORE_BYTES is below what a run with BLOB_MIB=$blob_mib needs ($needed)"
available=$(( $(awk '/^MemAvailable:/ {print $2}' /proc/meminfo) * 1024 ))
[ "$available" -ge $(( S3_MEMSTORE_BYTES + (2 << 30) )) ] \
  || die "memstore of $S3_MEMSTORE_BYTES bytes plus 2 GiB for the servers needs more RAM than is available ($available)"

mkdir -p "$out"
work=$(mktemp -d "${WORK_DIR:-/tmp}/registry-scale.XXXXXX")
# PostgreSQL runs as the postgres user: it must be able to reach its state dir under this folder.
chmod 0755 "$work"
stack_dir=$work/stack   # REGISTRY_STACK_DIR of the stack scripts: never a test run's or a developer's stack
# stack_script COMPONENT start|stop: the component's script on this run's stack dir
stack_script() { REGISTRY_STACK_DIR=$stack_dir bash "$stack/$1.sh" "$2"; }

server_pids=()
bench_pid=""
stack_up=()
nginx_up=0
# The servers of the current run, by pid: SIGTERM, up to 10 s, then SIGKILL.
stop_servers() {
  local pid i
  for pid in "${server_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${server_pids[@]}"; do
    for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then log "server $pid ignored SIGTERM for 10 s: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; fi
    wait "$pid" 2>/dev/null || true
  done
  server_pids=()
}
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$bench_pid" ]; then kill -TERM "$bench_pid" 2>/dev/null || true; wait "$bench_pid" 2>/dev/null || true; fi
  stop_servers || true
  [ "$nginx_up" = 0 ] || stack_script nginx stop >/dev/null 2>&1 || log "stopping nginx failed"
  local i
  for ((i = ${#stack_up[@]} - 1; i >= 0; i--)); do
    # keep Ceph's and nginx's logs for a look when something failed
    if [ "$status" -ne 0 ] && [ -d "$stack_dir/${stack_up[i]}/log" ]; then
      cp -r "$stack_dir/${stack_up[i]}/log" "$out/${stack_up[i]}-log" 2>/dev/null || true
    fi
    stack_script "${stack_up[i]}" stop >/dev/null 2>&1 || log "stopping ${stack_up[i]} failed"
  done
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# --- the stack -------------------------------------------------------------------------------------------------
S3_PORT=$(free_port 7580) || exit 1
S3_MON_PORT=$(free_port 3390) || exit 1
export S3_PORT S3_MON_PORT
log "starting Ceph (memstore $((S3_MEMSTORE_BYTES >> 20)) MiB) on 127.0.0.1:$S3_PORT"
stack_up+=(ceph)
lines=$(stack_script ceph start) || die "Ceph did not start (scripts/stack/ceph.sh start)"
eval "$lines"
ceph_conf=$S3_DIR/ceph.conf
have_postgres=0
if [ -n "${PG_CONNECTION_STRING:-}" ]; then
  log "using the PostgreSQL server of PG_CONNECTION_STRING (a database per run is created and dropped there)"
  have_postgres=1
elif [ -f "$stack/postgres.sh" ]; then
  PG_PORT=$(free_port 55532) || exit 1
  export PG_PORT
  log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
  stack_up+=(postgres)
  lines=$(stack_script postgres start) || die "PostgreSQL did not start (scripts/stack/postgres.sh start)"
  eval "$lines"
  have_postgres=1
fi
PROXY_PORT=$(free_port 8580) || exit 1
export PROXY_PORT

# s3 METHOD PATH [curl args...]: a SigV4-signed request to RGW; prints the HTTP status, the body goes to $work/s3.out.
s3() {
  local method=$1 path=$2; shift 2
  curl -s -o "$work/s3.out" -w '%{http_code}' -X "$method" --aws-sigv4 "aws:amz:$S3_REGION:s3" \
    --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" \
    -H 'x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' \
    "$@" "$S3_ENDPOINT$path"
}

create_bucket() {
  local status
  status=$(s3 PUT "/$1")
  [ "$status" = 200 ] || die "creating bucket $1: HTTP $status $(cat "$work/s3.out")"
}

# Removes the bucket and its objects at once (no gc delay), then lets gc free what the run deleted or overwrote.
remove_bucket() {
  timeout 300 radosgw-admin -c "$ceph_conf" bucket rm --bucket="$1" --purge-objects --bypass-gc >/dev/null 2>&1 \
    || log "WARNING: removing bucket $1 failed"
  timeout 300 radosgw-admin -c "$ceph_conf" gc process --include-all >/dev/null 2>&1 || log "WARNING: RGW gc failed"
  # The bucket's objects are not always gone when `bucket rm` returns (2 GiB were still held after a 1 GiB run once):
  # wait until memstore is (nearly) empty, running gc again, so that no run starts with the last one's data.
  local socket used i
  socket=$(compgen -G "$S3_DIR/run/osd.*.asok" | head -n 1 || true)
  for i in $(seq 1 18); do
    used=$(osd_used_bytes "$socket")
    [ -n "$used" ] && [ "$used" -lt $((64 << 20)) ] && break
    [ "$i" -lt 18 ] || { log "WARNING: memstore still holds $((${used:-0} >> 20)) MiB after 90 s"; break; }
    sleep 5
    timeout 300 radosgw-admin -c "$ceph_conf" gc process --include-all >/dev/null 2>&1 || true
  done
  # memstore's freed buffers may stay in the OSD's heap until it is told to return them
  [ -z "$socket" ] || timeout 60 ceph --admin-daemon "$socket" heap release >/dev/null 2>&1 || log "WARNING: OSD heap release failed"
}

# osd_used_bytes ADMIN_SOCKET: memstore's bytes in use, from the OSD's statfs counters
osd_used_bytes() {
  [ -n "$1" ] || return 0
  timeout 60 ceph --admin-daemon "$1" perf dump 2>/dev/null | grep -o '"stat_bytes_used": *[0-9]*' | head -n 1 \
    | grep -o '[0-9]*$' || true
}

# What memstore holds now and the OSD's RSS: both must come back down after a run. (`ceph df` has no figures here:
# the stack runs no ceph-mgr; the OSD's own statfs counters, read on its admin socket, do.)
ceph_usage() {
  local used osd_pid rss=0
  used=$(osd_used_bytes "$(compgen -G "$S3_DIR/run/osd.*.asok" | head -n 1 || true)")
  osd_pid=$(cat "$S3_DIR"/run/osd.*.pid 2>/dev/null | head -n 1 || true)
  [ -n "$osd_pid" ] && rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$osd_pid/status" 2>/dev/null || echo 0)
  echo "memstore used $([ -n "$used" ] && echo "$((used >> 20)) MiB" || echo "?"), ceph-osd RSS $((rss >> 10)) MiB"
}

# PostgreSQL: a fresh database per run of ours. PG_CONNECTION_STRING is in Npgsql's Key=Value; form.
pg_field() {
  local wanted=$1 pair key
  local IFS=';'
  for pair in $PG_CONNECTION_STRING; do
    key=$(echo "${pair%%=*}" | tr -d ' ' | tr '[:upper:]' '[:lower:]')
    case " $wanted " in *" $key "*) echo "${pair#*=}"; return 0 ;; esac
  done
}
pg_admin() {
  PGHOST=$(pg_field "host server") PGPORT=$(pg_field "port") PGUSER=$(pg_field "username userid user userName") \
    PGPASSWORD=$(pg_field "password pwd psw") PGDATABASE=postgres PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -c "$1" >/dev/null
}
pg_connection_for() {
  local db=$1 pair key rest=""
  local IFS=';'
  for pair in $PG_CONNECTION_STRING; do
    key=$(echo "${pair%%=*}" | tr -d ' ' | tr '[:upper:]' '[:lower:]')
    [ -n "$key" ] || continue
    case $key in database|db) ;; *) rest+="$pair;" ;; esac
  done
  echo "${rest}Database=$db"
}

# --- the servers -----------------------------------------------------------------------------------------------
ours=()
ours_kind=""
ours_status="not run (not in CONFIGS)"
build_ours() {
  if [ -n "${OURS_BIN:-}" ]; then
    case $OURS_BIN in *.dll) ours=(dotnet "$OURS_BIN"); ours_kind="given: $OURS_BIN (JIT)" ;;
      *) ours=("$OURS_BIN"); ours_kind="given: $OURS_BIN" ;; esac
    return 0
  fi
  if [ "${AOT:-1}" != 0 ]; then
    log "publishing our registry with native AOT from $src (a few minutes)"
    if dotnet publish "$src/src/Registry.Api" -c Release -p:PublishAot=true -o "$work/ours" -nologo -v q \
         >"$work/ours-build.log" 2>&1 && [ -x "$work/ours/Registry.Api" ]; then
      ours=("$work/ours/Registry.Api"); ours_kind="native AOT"; return 0
    fi
    log "native AOT publish failed; falling back to framework-dependent"
    tail -n 5 "$work/ours-build.log" >&2
  fi
  log "publishing our registry framework-dependent from $src"
  dotnet publish "$src/src/Registry.Api" -c Release -p:PublishAot=false -p:EnableRequestDelegateGenerator=true \
    -p:EnableConfigurationBindingGenerator=true -o "$work/ours" -nologo -v q >"$work/ours-build.log" 2>&1 \
    || { cat "$work/ours-build.log" >&2; return 1; }
  ours=(dotnet "$work/ours/Registry.Api.dll"); ours_kind="framework-dependent (JIT)"
}

# wait_for_server NAME PID PORT LOG: until GET /v2/ answers 200; fails when the process exits first.
wait_for_server() {
  local name=$1 pid=$2 port=$3 logfile=$4 i
  for i in $(seq 1 300); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" 2>/dev/null; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      log "$name exited at start-up; its last lines:"; tail -n 20 "$logfile" >&2; return 1
    fi
    sleep 0.1
  done
  log "$name did not answer on 127.0.0.1:$port within 30 s"; return 1
}


# start_distribution RUN REPLICAS BUCKET: REPLICAS instances of distribution on the bucket, one config file each
# (same http.secret, so an upload session started on one continues on the other).
start_distribution() {
  local run=$1 replicas=$2 bucket=$3 i port file secret
  secret=$(head -c 32 /dev/urandom | sha256sum | cut -c1-64)
  upstreams=""
  for ((i = 1; i <= replicas; i++)); do
    port=$(free_port 5810) || return 1
    file=$work/$run-$i.yml
    cat >"$file" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  s3:
    accesskey: $S3_ACCESS_KEY
    secretkey: $S3_SECRET_KEY
    region: $S3_REGION
    # with a regionendpoint, 2.8's s3-aws driver uses path-style addressing (S3ForcePathStyle) by itself
    regionendpoint: $S3_ENDPOINT
    bucket: $bucket
    secure: false
    v4auth: true
    encrypt: false
    chunksize: $dist_chunksize
  delete:
    enabled: true
  redirect:
    disable: $([ "$redirect" = 1 ] && echo false || echo true)
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  secret: $secret
YAML
    # a clean environment: distribution reads REGISTRY_* variables as config overrides, and the AWS SDK fails on an
    # AWS_CA_BUNDLE it cannot apply to its transport (the endpoint is plain HTTP anyway)
    env -i PATH="$PATH" HOME="${HOME:-/root}" "$distribution" serve "$file" >"$out/$run-server$i.log" 2>&1 &
    server_pids+=($!)
    wait_for_server "distribution $i" "$!" "$port" "$out/$run-server$i.log" || return 1
    upstreams+="127.0.0.1:$port "
  done
}

# start_ours RUN BUCKET CONNECTION: two replicas of ours on the bucket and the database.
start_ours() {
  local run=$1 bucket=$2 connection=$3 i port data
  upstreams=""
  for i in 1 2; do
    port=$(free_port 5810) || return 1
    data=$work/$run-data$i   # each its own local folder: nothing may be shared through it
    mkdir -p "$data"
    env -u AWS_CA_BUNDLE "${ours[@]}" --urls "http://127.0.0.1:$port" "--Registry:Storage:Path=$data" \
      --Registry:Storage:Kind=s3 "--Registry:Storage:S3:ServiceUrl=$S3_ENDPOINT" \
      "--Registry:Storage:S3:Bucket=$bucket" "--Registry:Storage:S3:Region=$S3_REGION" \
      "--Registry:Storage:S3:AccessKey=$S3_ACCESS_KEY" "--Registry:Storage:S3:SecretKey=$S3_SECRET_KEY" \
      "--Registry:Storage:S3:Redirect=$([ "$redirect" = 1 ] && echo true || echo false)" \
      --Registry:Metadata:Kind=postgres "--Registry:Metadata:ConnectionString=$connection" \
      --Logging:LogLevel:Registry.Access=Warning "${ours_args[@]}" >"$out/$run-server$i.log" 2>&1 &
    server_pids+=($!)
    wait_for_server "our replica $i" "$!" "$port" "$out/$run-server$i.log" || return 1
    upstreams+="127.0.0.1:$port "
  done
}

# check_ours_shared BUCKET: a blob pushed to replica 1 must be found by replica 2 (shared metadata and blobs) and
# must be in the bucket (blobs in S3, not in the replicas' local folders). Otherwise the settings were ignored.
check_ours_shared() {
  local bucket=$1 first second body digest status
  read -r first second <<<"$upstreams"
  body="scale-compare probe $(date +%s%N)"
  digest=sha256:$(printf '%s' "$body" | sha256sum | cut -c1-64)
  status=$(printf '%s' "$body" | curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary @- \
    -H 'Content-Type: application/octet-stream' "http://$first/v2/scale-compare/probe/blobs/uploads/?digest=$digest")
  [ "$status" = 201 ] || { echo "a single-POST push of a probe blob to replica 1 answered $status"; return 1; }
  status=$(curl -s -o /dev/null -w '%{http_code}' -I "http://$second/v2/scale-compare/probe/blobs/$digest")
  [ "$status" = 200 ] || {
    echo "replica 2 answers $status to HEAD of the blob replica 1 just stored: the replicas do not share storage" \
         "and metadata (Registry:Storage:Kind=s3 / Registry:Metadata:Kind=postgres ignored?)"; return 1; }
  status=$(s3 GET "/$bucket?list-type=2&max-keys=10")
  if [ "$status" != 200 ] || ! grep -q '<Key>' "$work/s3.out"; then
    echo "bucket $bucket is empty after a push (HTTP $status): our blobs are not stored in S3"; return 1
  fi
}

# --- build -----------------------------------------------------------------------------------------------------
log "building the benchmark"
dotnet build "$here/Registry.Bench" -c Release -o "$work/bench" -nologo -v q >"$work/bench-build.log" 2>&1 \
  || { cat "$work/bench-build.log" >&2; exit 1; }
bench=(dotnet "$work/bench/Registry.Bench.dll")

run_ours=0
for config in "${configs[@]}"; do [ "$config" = ours-2x ] && run_ours=1; done
if [ "$run_ours" = 1 ]; then
  if [ "$have_postgres" = 0 ]; then
    ours_status="NOT BENCHMARKED: scripts/stack/postgres.sh does not exist yet (ours needs PostgreSQL to run as replicas)"
  elif build_ours; then
    ours_status="pending"
  else
    ours_status="NOT BENCHMARKED: our registry did not build (see above)"
  fi
fi
if [ "$run_ours" = 1 ] && [ "$ours_status" != pending ]; then log "ours: $ours_status"; fi

revision=$(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo "?")
[ -n "$(git -C "$src" status --porcelain -- src 2>/dev/null)" ] && revision="$revision+uncommitted changes"
{
  echo "scale-out compare: ${configs[*]}; $rounds rounds; blobs of $blob_mib MiB; phases $phases${BENCH_ARGS:+ $BENCH_ARGS}"
  echo "all behind nginx (scripts/stack/nginx.sh, round-robin); blob GETs: $([ "$redirect" = 1 ] && echo "307 to presigned S3 URLs" || echo "proxied by the registry")"
  echo "ours: $src at $revision${ours_kind:+, $ours_kind}${OURS_ARGS:+, $OURS_ARGS}"
  echo "distribution: $("$distribution" --version 2>&1 | head -n 1), storage: s3 (chunksize $dist_chunksize)"
  echo "ceph: $(ceph --version 2>/dev/null | head -n 1), memstore $((S3_MEMSTORE_BYTES >> 20)) MiB; $(nginx -v 2>&1)"
  echo "$(nproc) cores, $(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) >> 10 )) MiB RAM; $(date -Is); load average $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$out/about.txt"
cat "$out/about.txt" >&2
: >"$out/runs.txt"

# --- the runs --------------------------------------------------------------------------------------------------
declare -A results=()
started=$SECONDS
for round in $(seq 1 "$rounds"); do
  for config in "${configs[@]}"; do
    run=$config-$round
    if [ "$config" = ours-2x ] && [ "$ours_status" != pending ] && [ "$ours_status" != benchmarked ]; then continue; fi
    bucket=bench-$config-r$round
    create_bucket "$bucket"
    load_before=$(cut -d' ' -f1-3 /proc/loadavg)
    log "round $round/$rounds: $config on bucket $bucket (load average $load_before)"
    ok=1
    database=""
    case $config in
      distribution-1x) start_distribution "$run" 1 "$bucket" || ok=0 ;;
      distribution-2x) start_distribution "$run" 2 "$bucket" || ok=0 ;;
      ours-2x)
        database=scalebench_r$round
        if ! pg_admin "DROP DATABASE IF EXISTS $database WITH (FORCE)" || ! pg_admin "CREATE DATABASE $database"; then
          die "cannot create database $database on $PG_CONNECTION_STRING"
        fi
        if ! start_ours "$run" "$bucket" "$(pg_connection_for "$database")"; then
          ours_status="NOT BENCHMARKED: our registry refused the S3/PostgreSQL settings at start-up (see $out/$run-server1.log)"
          ok=0
        elif ! reason=$(check_ours_shared "$bucket"); then
          ours_status="NOT BENCHMARKED: $reason"
          ok=0
        else
          ours_status=benchmarked
        fi
        [ "$ok" = 1 ] || log "ours: $ours_status"
        ;;
    esac
    rc=0
    [ "$ok" = 1 ] || rc="did not start"
    if [ "$ok" = 1 ]; then
      nginx_up=1
      lines=$(PROXY_UPSTREAMS="$upstreams" stack_script nginx start) || die "nginx did not start"
      eval "$lines"
      pids=$(IFS=,; echo "${server_pids[*]}")
      # in the background and waited for, so that a signal reaches the trap at once (and the trap stops it)
      "${bench[@]}" --url "$PROXY_URL" --pid "$pids" --label "$config" --scratch "$work" --only "$phases" \
        --blob-mib "$blob_mib" --json "$out/$run.json" "${bench_args[@]}" >"$out/$run.txt" 2>"$out/$run.log" &
      bench_pid=$!
      wait "$bench_pid" || rc=$?
      bench_pid=""
      for pid in "${server_pids[@]}"; do kill -0 "$pid" 2>/dev/null || { log "$config: server $pid DIED during the run"; rc=1; }; done
      cp "$PROXY_ACCESS_LOG" "$out/$run-nginx-access.log" 2>/dev/null || true
      stack_script nginx stop >/dev/null
      nginx_up=0
    fi
    stop_servers
    load_after=$(cut -d' ' -f1-3 /proc/loadavg)
    usage_before=$(ceph_usage)
    remove_bucket "$bucket"
    [ -z "$database" ] || pg_admin "DROP DATABASE IF EXISTS $database WITH (FORCE)" || log "WARNING: dropping $database failed"
    usage=$(ceph_usage)
    echo "$run: exit $rc; load average before $load_before, after $load_after; before clean-up: $usage_before; after: $usage" | tee -a "$out/runs.txt" >&2
    case $rc in
      0) ;;
      3) log "$config answered with errors in round $round: see $out/$run.txt" ;;
      "did not start") ;;
      *) log "the benchmark failed against $config in round $round (exit $rc): see $out/$run.log" ;;
    esac
    [ -s "$out/$run.json" ] && results[$config]+="${results[$config]:+,}$out/$run.json"
    sleep "${SETTLE:-5}"
  done
done
elapsed=$((SECONDS - started))

# --- the table -------------------------------------------------------------------------------------------------
names=() args=()
letters=(a b c d)
for config in "${configs[@]}"; do
  [ -n "${results[$config]:-}" ] || continue
  args+=("--${letters[${#names[@]}]}" "${results[$config]}")
  names+=("$config")
done
{
  cat "$out/about.txt"
  echo "runs took $elapsed s; load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
  [ "$run_ours" = 1 ] && echo "ours-2x: $ours_status"
  echo
  if [ "${#names[@]}" -ge 2 ]; then
    "${bench[@]}" compare --side-by-side --names "$(IFS=,; echo "${names[*]}")" "${args[@]}"
  elif [ "${#names[@]}" = 1 ]; then
    echo "only ${names[0]} produced results: see its tables in $out"
  else
    echo "no results"
  fi
  echo
  cat "$out/runs.txt"
} | tee "$out/compare.txt"
echo "results (each run's table, JSON and log, the servers' logs, compare.txt): $out"
[ "${#names[@]}" -gt 0 ]
