#!/usr/bin/env bash
# Starts or stops the parts of the scale-out stack a caller names, each through its own script in this folder:
#   ceph      scripts/stack/ceph.sh       S3 (RADOS Gateway) on 127.0.0.1:$S3_PORT
#   postgres  scripts/stack/postgres.sh   PostgreSQL on 127.0.0.1:$PG_PORT
#   nginx     scripts/stack/nginx.sh      round-robin proxy on 127.0.0.1:$PROXY_PORT over $PROXY_UPSTREAMS
#
#   scripts/stack/stack.sh up [component...]     default: ceph postgres (nginx only when named: it needs the
#                                                replicas' addresses). Prints the export lines of all of them on
#                                                stdout and writes them to ${REGISTRY_STACK_DIR:-/work/stack}/env.
#                                                If one fails, the ones this call started are stopped again.
#   scripts/stack/stack.sh down [component...]   default: all three, the proxy first
#
#   eval "$(scripts/stack/stack.sh up ceph postgres)"
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"

usage() { echo "usage: $0 up|down [ceph|postgres|nginx]..." >&2; exit 2; }

script_of() {
  case $1 in
    ceph|postgres|nginx) echo "$here/$1.sh" ;;
    *) log stack "ERROR: unknown component '$1' (ceph, postgres or nginx)"; return 1 ;;
  esac
}

action=${1:-}; [ $# -gt 0 ] && shift
case $action in
  up)
    [ $# -gt 0 ] || set -- ceph postgres
    for component in "$@"; do script_of "$component" >/dev/null || exit 2; done
    mkdir -p "$stack_root"
    started=() exports=""
    for component in "$@"; do
      script=$(script_of "$component")
      if [ ! -f "$script" ]; then
        log stack "ERROR: $script does not exist (yet)"; status=1
      else
        out=$(bash "$script" start); status=$?
      fi
      if [ "$status" -ne 0 ]; then
        log stack "ERROR: $component did not start; stopping what this call started: ${started[*]:-nothing}"
        for ((i = ${#started[@]} - 1; i >= 0; i--)); do bash "$(script_of "${started[i]}")" stop >&2 || true; done
        exit 1
      fi
      started+=("$component"); exports+="$out"$'\n'
    done
    printf '%s' "$exports" > "$stack_root/env"
    printf '%s' "$exports"
    ;;
  down)
    [ $# -gt 0 ] || set -- nginx postgres ceph
    for component in "$@"; do script_of "$component" >/dev/null || exit 2; done
    status=0
    for component in "$@"; do
      script=$(script_of "$component")
      if [ -f "$script" ]; then bash "$script" stop || status=1
      elif [ -d "$stack_root/$component" ]; then log stack "ERROR: $script is missing, cannot stop $component"; status=1
      fi
    done
    rm -f "$stack_root/env"
    exit $status
    ;;
  *) usage ;;
esac
