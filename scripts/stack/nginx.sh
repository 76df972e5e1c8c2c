#!/usr/bin/env bash
# nginx (Debian's) as the load balancer in front of registry replicas, on 127.0.0.1: plain round-robin, no sticky
# sessions, set up for a registry (bodies streamed both ways, no size limit, long timeouts for big blobs, keep-alive
# to the replicas, a replica that is down skipped by idempotent requests). Its own prefix dir, config and pid file:
# the system nginx (if any) is never read, signalled or reloaded.
#
#   scripts/stack/nginx.sh start   stops a previous proxy of the same state dir, starts one, prints
#                                  `export PROXY_...=...` lines on stdout (also written to <dir>/env)
#   scripts/stack/nginx.sh stop    stops the master named by the pid file (SIGTERM, then SIGKILL) and its
#                                  workers, wipes <dir>
#
# Environment:
#   PROXY_UPSTREAMS      required for start: the replicas, space-separated host:port (e.g. "127.0.0.1:5001 127.0.0.1:5002")
#   PROXY_PORT           port on 127.0.0.1                                  (default 8480)
#   PROXY_WORKERS        nginx worker processes; each keeps its own
#                        round-robin position                               (default 1)
#   REGISTRY_STACK_DIR   state root; this script owns <root>/nginx/         (default /work/stack)
# The access log (<dir>/log/access.log, also exported as PROXY_ACCESS_LOG) names the replica that served each
# request (upstream=host:port; "a, b" when the request went on to the next replica).
set -Eeuo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"

dir=$stack_root/nginx
conf=$dir/nginx.conf
port=${PROXY_PORT:-8480}
workers=${PROXY_WORKERS:-1}

# The master and, recorded before it is signalled, its workers: a master killed with SIGKILL leaves them behind.
stop() {
  local status=0 master="" workers_of=() pid
  if [ -f "$dir/nginx.pid" ]; then
    master=$(tr -dc '0-9' < "$dir/nginx.pid")
    if owns "$master" "$conf"; then
      mapfile -t workers_of < <(ps -o pid= --ppid "$master" 2>/dev/null | tr -d ' ')
    fi
    stop_pids nginx "$conf" 10 "$dir/nginx.pid" || status=1
    for pid in "${workers_of[@]}"; do
      if owns "$pid" "nginx:"; then kill -KILL "$pid" 2>/dev/null || true; fi
    done
  fi
  rm -rf "$dir"
  return $status
}

start() {
  command -v nginx >/dev/null || { log nginx "ERROR: nginx is missing (run .ci/install-stack.sh)"; exit 1; }
  local upstream servers=""
  [ -n "${PROXY_UPSTREAMS:-}" ] || { log nginx "ERROR: PROXY_UPSTREAMS is empty (space-separated host:port of the replicas)"; exit 1; }
  for upstream in $PROXY_UPSTREAMS; do
    [[ $upstream =~ ^[A-Za-z0-9._-]+:[0-9]+$ ]] || { log nginx "ERROR: '$upstream' in PROXY_UPSTREAMS is not host:port"; exit 1; }
    # max_fails=1: after one failed connection a replica is left out for fail_timeout, then tried again
    servers+="        server $upstream max_fails=1 fail_timeout=5s;"$'\n'
  done
  [[ $workers =~ ^[1-9][0-9]*$ ]] || { log nginx "ERROR: PROXY_WORKERS must be a positive number"; exit 1; }

  stop   # a previous proxy of this state dir, if any
  require_port_free nginx "$port" PROXY_PORT || exit 1
  mkdir -p "$dir"/{log,temp}
  # As root the workers run as nobody: the temp dirs must be theirs (nothing should land there, see below).
  local user_line=""
  if [ "$(id -u)" -eq 0 ]; then
    user_line="user nobody nogroup;"
    chown nobody:nogroup "$dir/temp"
  fi

  cat > "$conf" <<EOF
# Written by scripts/stack/nginx.sh; regenerated at every start.
$user_line
daemon on;
worker_processes $workers;
pid $dir/nginx.pid;
error_log $dir/log/error.log warn;

events {
    worker_connections 1024;
}

http {
    log_format registry '\$remote_addr [\$time_iso8601] "\$request" \$status \$body_bytes_sent '
                        'in=\$request_length upstream=\$upstream_addr upstream_status=\$upstream_status '
                        'time=\$request_time';
    access_log $dir/log/access.log registry;

    # nginx's compiled-in temp paths are under /var/lib/nginx: keep even those inside our dir
    client_body_temp_path $dir/temp/client_body;
    proxy_temp_path $dir/temp/proxy;
    fastcgi_temp_path $dir/temp/fastcgi;
    uwsgi_temp_path $dir/temp/uwsgi;
    scgi_temp_path $dir/temp/scgi;

    upstream registry_replicas {
        # round-robin (nginx's default), no affinity: any replica may get any request of a session
$servers        keepalive 32;
        keepalive_timeout 60s;
    }

    server {
        listen 127.0.0.1:$port;
        server_name _;

        # blobs of any size, streamed both ways as they come: nothing is held in memory or written to disk
        client_max_body_size 0;
        proxy_request_buffering off;
        proxy_buffering off;

        # HTTP/1.1 with keep-alive to the replicas (no "Connection: close" from nginx)
        proxy_http_version 1.1;
        proxy_set_header Connection "";

        # the replicas see the address clients used (Location headers, token realms) and who the client is
        proxy_set_header Host \$http_host;
        proxy_set_header X-Real-IP \$remote_addr;
        proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto \$scheme;
        proxy_set_header X-Forwarded-Host \$http_host;
        proxy_set_header X-Forwarded-Port \$server_port;
        proxy_redirect off;

        # a big blob on a slow link: allow long pauses between reads and writes, fail fast on a dead replica
        proxy_connect_timeout 5s;
        proxy_send_timeout 900s;
        proxy_read_timeout 900s;
        client_body_timeout 900s;
        send_timeout 900s;

        # a replica that refuses or times out: try the next one. nginx never does that for a POST, LOCK or PATCH
        # once it was sent (no "non_idempotent" here), nor for a streamed body it has started to forward. A GET,
        # HEAD, PUT or DELETE sent to a replica that dies before answering is replayed on the next one when nginx
        # still holds the whole body (none, or a small one read with the headers): transparent for pulls, manifest
        # PUTs and deletes; the replay of an upload's closing PUT may find the session closed or the chunk already
        # appended (404, 416, 400), an error the client handles as any failed push (tests/Registry.CrashHarness).
        proxy_next_upstream error timeout;

        location / {
            proxy_pass http://registry_replicas;
        }
    }
}
EOF

  local output
  if ! output=$(nginx -p "$dir" -c "$conf" -e "$dir/log/error.log" -t 2>&1); then
    log nginx "ERROR: the generated config is not valid:"; echo "$output" >&2; rm -rf "$dir"; exit 1
  fi
  log nginx "listening on 127.0.0.1:$port, replicas: $PROXY_UPSTREAMS"
  if ! output=$(nginx -p "$dir" -c "$conf" -e "$dir/log/error.log" 2>&1); then
    log nginx "ERROR: nginx did not start:"; echo "$output" >&2; tail -n 20 "$dir/log/error.log" >&2 || true
    stop || true; exit 1
  fi
  master_is_up() { [ -s "$dir/nginx.pid" ] && (exec 3<>"/dev/tcp/127.0.0.1/$port"); }
  if ! wait_until nginx "127.0.0.1:$port" 10 master_is_up; then
    tail -n 20 "$dir/log/error.log" >&2 || true; stop || true; exit 1
  fi
  publish_env "$dir/env" "PROXY_URL=http://127.0.0.1:$port" "PROXY_ACCESS_LOG=$dir/log/access.log" "PROXY_DIR=$dir"
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
