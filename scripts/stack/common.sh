# Shared by the stack scripts (sourced, not run). Each component keeps everything it owns (config, data, logs,
# pid files, the env file) under ${REGISTRY_STACK_DIR:-/work/stack}/<component>/, so two stacks with different
# REGISTRY_STACK_DIR never see each other's processes.

stack_root=${REGISTRY_STACK_DIR:-/work/stack}

# log <component> <message...>: progress on stderr, so stdout carries only the export lines.
log() { local who=$1; shift; echo "[$who $(date +%T.%3N)] $*" >&2; }

# require_port_free <who> <port> <env name>: fails fast when something already accepts connections there.
require_port_free() {
  local who=$1 port=$2 name=$3
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    log "$who" "ERROR: 127.0.0.1:$port is already in use (set $name to a free port, or stop what listens there)"
    if command -v ss >/dev/null 2>&1; then ss -ltnpH "sport = :$port" >&2 || true; fi
    return 1
  fi
}

# owns <pid> <marker>: the process is alive, not a zombie, and its command line names <marker> (our config file),
# so a pid file left over after a reboot never makes us signal somebody else's process.
owns() {
  local pid=$1 marker=$2
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null && return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "$marker"
}

# stop_pids <who> <marker> <grace seconds> <pid file...>: SIGTERM to every process named by a pid file that is
# still ours, waits up to <grace> seconds for all of them, then SIGKILLs the ones left and waits for those too.
stop_pids() {
  local who=$1 marker=$2 grace=$3; shift 3
  local file pid pids=() left
  for file in "$@"; do
    [ -f "$file" ] || continue
    pid=$(tr -dc '0-9' < "$file")
    if owns "$pid" "$marker"; then kill -TERM "$pid" 2>/dev/null && pids+=("$pid"); fi
  done
  [ "${#pids[@]}" -gt 0 ] || return 0
  local deadline=$((SECONDS + grace))
  while :; do
    left=()
    for pid in "${pids[@]}"; do owns "$pid" "$marker" && left+=("$pid"); done
    [ "${#left[@]}" -gt 0 ] || return 0
    [ "$SECONDS" -lt "$deadline" ] || break
    sleep 0.1
  done
  log "$who" "still running after ${grace}s, sending SIGKILL to ${left[*]}"
  for pid in "${left[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  deadline=$((SECONDS + 10))
  while [ "$SECONDS" -lt "$deadline" ]; do
    left=()
    for pid in "${pids[@]}"; do owns "$pid" "$marker" && left+=("$pid"); done
    [ "${#left[@]}" -gt 0 ] || return 0
    sleep 0.1
  done
  log "$who" "ERROR: ${left[*]} survived SIGKILL"
  return 1
}

# wait_until <who> <what> <seconds> <command...>: polls the command every 0.1 s until it succeeds.
wait_until() {
  local who=$1 what=$2 limit=$3; shift 3
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then log "$who" "ERROR: timed out after ${limit}s waiting for $what"; return 1; fi
    sleep 0.1
  done
}

# publish_env <env file> <KEY=VALUE...>: the eval-able export lines, on stdout and in the component's env file.
publish_env() {
  local file=$1; shift
  local pair lines=""
  for pair in "$@"; do lines+="export ${pair%%=*}=$(printf '%q' "${pair#*=}")"$'\n'; done
  printf '%s' "$lines" > "$file"
  printf '%s' "$lines"
}
