# Sourced by the benchmark scripts (compare.sh, scale-compare.sh, s3-big-blob.sh).

# free_port FROM [COUNT]: prints the first of COUNT ports (default 200) from FROM on that nobody accepts connections
# on at 127.0.0.1; fails, saying so on stderr, when all are taken. A script that starts its servers one after the
# other, each listening before the next port is picked, never gets one port twice.
free_port() {
  local port last=$(($1 + ${2:-200} - 1))
  for ((port = $1; port <= last; port++)); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return 0; fi
  done
  echo "[$(date +%H:%M:%S)] ERROR: no free port in $1-$last" >&2
  return 1
}
