#!/usr/bin/env bash
# A throw-away single-node Ceph serving the S3 API on 127.0.0.1, for the test suite and for trying the registry's
# S3 storage out: one monitor, one OSD on memstore (objects live in the OSD's RAM, used only as filled; or on
# bluestore in a sparse file, for objects bigger than the RAM can hold), one RADOS Gateway (beast). Debian 12's
# Ceph 16.2 ("pacific"), no systemd, no cephx inside the cluster (everything is on
# loopback); S3 clients sign with SigV4 as usual. Packages: .ci/install-stack.sh.
#
#   scripts/stack/ceph.sh start   stops a previous cluster in the same state dir, starts a new one with an S3 user
#                                 and a bucket, prints `export S3_...=...` lines on stdout (also written to <dir>/env)
#   scripts/stack/ceph.sh stop    stops the daemons named by the pid files (SIGTERM, then SIGKILL), wipes <dir>
#
# Environment (all optional):
#   REGISTRY_STACK_DIR   state root; this script owns <root>/ceph/          (default /work/stack)
#   S3_PORT              S3 (radosgw) port on 127.0.0.1                     (default 7480)
#   S3_MON_PORT          monitor port (msgr2 only) on 127.0.0.1             (default 3300)
#   S3_ACCESS_KEY, S3_SECRET_KEY   keys of the S3 user that is created      (default registry / registry-secret)
#   S3_BUCKET            bucket created at start                            (default registry)
#   S3_REGION            region clients sign with                           (default us-east-1)
#   S3_STORE             memstore, or bluestore (a sparse file <dir>/osd-block, the OSD's RAM bounded by
#                        S3_OSD_MEMORY; slower, for 10 GiB blobs)           (default memstore)
#   S3_MEMSTORE_BYTES    memstore capacity                                  (default 4 GiB)
#   S3_BLUESTORE_BYTES   bluestore file size (sparse: disk is used as filled) (default 32 GiB)
#   S3_OSD_MEMORY        bluestore's osd memory target                      (default 1 GiB)
#   S3_TIMEOUT           seconds allowed for each step                      (default 60)
# The OSD takes free ports in Ceph's usual 6800-7300 range, on 127.0.0.1 too.
set -Eeuo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"

dir=$stack_root/ceph
conf=$dir/ceph.conf
port=${S3_PORT:-7480}
mon_port=${S3_MON_PORT:-3300}
store=${S3_STORE:-memstore}
case $store in memstore|bluestore) ;; *) echo "ceph: S3_STORE must be memstore or bluestore, not '$store'" >&2; exit 2 ;; esac
access_key=${S3_ACCESS_KEY:-registry}
secret_key=${S3_SECRET_KEY:-registry-secret}
bucket=${S3_BUCKET:-registry}
region=${S3_REGION:-us-east-1}
timeout=${S3_TIMEOUT:-60}

stop() {
  local status=0
  if [ -d "$dir/run" ]; then
    # in this order: an OSD that outlives its monitor waits 5 s for it to acknowledge the shutdown
    stop_pids ceph "$conf" 10 "$dir"/run/client.rgw.pid || status=1
    stop_pids ceph "$conf" 10 "$dir"/run/osd.*.pid || status=1
    stop_pids ceph "$conf" 10 "$dir"/run/mon.*.pid || status=1
  fi
  [ "${1:-wipe}" = keep ] || rm -rf "$dir"
  return $status
}

fail() {
  trap - ERR
  log ceph "ERROR: $*"
  local file
  for file in "$dir"/log/*.log; do
    [ -s "$file" ] || continue
    echo "--- last lines of $file" >&2
    tail -n 15 "$file" >&2
  done
  stop keep >&2 || true   # the daemons go, the logs stay for a look
  log ceph "logs kept in $dir/log"
  exit 1
}

# `ceph` is a Python client: each call costs a few hundred ms, so the start uses as few as it can.
ceph_cli() { timeout "$timeout" ceph -c "$conf" --connect-timeout "$timeout" "$@"; }

start() {
  local tool
  for tool in ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool ceph-authtool uuidgen curl; do
    command -v "$tool" >/dev/null || { log ceph "ERROR: $tool is missing (run .ci/install-stack.sh)"; exit 1; }
  done
  stop   # a previous cluster of this state dir, if any
  require_port_free ceph "$port" S3_PORT || exit 1
  require_port_free ceph "$mon_port" S3_MON_PORT || exit 1
  mkdir -p "$dir"/{mon.a,osd.0,run,log}
  trap 'fail "step failed (line $LINENO): $BASH_COMMAND"' ERR

  local fsid mon_addr started
  started=$(date +%s%N)
  fsid=$(uuidgen)
  mon_addr="v2:127.0.0.1:$mon_port"
  cat > "$conf" <<EOF
[global]
fsid = $fsid
mon host = [$mon_addr]
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
# msgr2 only: one monitor port, and no v1 port (6789) that could clash with another cluster
ms bind msgr1 = false
# loopback only and thrown away after the run: no cephx between daemons or for clients
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
ms client mode = crc
# everything this cluster writes stays in its own dir
run dir = $dir/run
pid file = $dir/run/\$name.pid
admin socket = $dir/run/\$name.asok
log file = $dir/log/\$name.log
mon cluster log file = $dir/log/cluster.log
crash dir = $dir/crash
log to stderr = false
err to stderr = true
# one OSD: one copy of everything, few placement groups, no warnings about it
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
# a single monitor needs no batching of map updates: commit them at once (the default waits up to 1 s each)
paxos propose interval = 0.05
[mon]
mon data = $dir/\$name
[osd]
osd data = $dir/\$name
osd objectstore = $store
memstore device bytes = ${S3_MEMSTORE_BYTES:-4294967296}
bluestore block path = $dir/osd-block
bluestore block create = true
bluestore block size = ${S3_BLUESTORE_BYTES:-34359738368}
bluestore fsck on mkfs = false
osd memory target = ${S3_OSD_MEMORY:-1073741824}
osd op num shards = 2
osd op num threads per shard = 2
[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:$port tcp_nodelay=1
rgw thread pool size = 32
rgw enable usage log = false
rgw enable ops log = false
# deleted and overwritten objects free their memstore RAM after a minute, not after the default two hours
rgw gc obj min wait = 60
rgw gc processor period = 60
EOF

  log ceph "monitor on 127.0.0.1:$mon_port"
  monmaptool --create --fsid "$fsid" --addv a "[$mon_addr]" --clobber "$dir/monmap" >/dev/null
  ceph-authtool --create-keyring "$dir/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-mon -c "$conf" -i a --mkfs --monmap "$dir/monmap" --keyring "$dir/mon.keyring" 2>>"$dir/log/mkfs.log"
  ceph-mon -c "$conf" -i a 2>>"$dir/log/daemons.log"
  wait_until ceph "the monitor" "$timeout" ceph_cli mon stat

  log ceph "OSD ($store)"
  local osd_uuid osd_id
  osd_uuid=$(uuidgen)
  osd_id=$(ceph_cli osd new "$osd_uuid")
  ceph-osd -c "$conf" -i "$osd_id" --mkfs --osd-uuid "$osd_uuid" 2>>"$dir/log/mkfs.log"
  ceph-osd -c "$conf" -i "$osd_id" 2>>"$dir/log/daemons.log"
  osd_is_up() { ceph_cli osd stat -f json | grep -q '"num_up_osds":1'; }
  wait_until ceph "the OSD to be up" "$timeout" osd_is_up

  log ceph "RADOS Gateway on 127.0.0.1:$port"
  radosgw -c "$conf" -n client.rgw 2>>"$dir/log/daemons.log"
  wait_until ceph "the gateway to answer HTTP" "$timeout" curl -sf -o /dev/null "http://127.0.0.1:$port/"
  timeout "$timeout" radosgw-admin -c "$conf" user create --uid=registry --display-name=registry \
    --access-key="$access_key" --secret-key="$secret_key" >"$dir/log/user.json"

  log ceph "bucket $bucket"
  # curl signs SigV4 but leaves x-amz-content-sha256 out, which RGW requires: send the hash of the empty body.
  local status
  status=$(curl -s -o "$dir/log/create-bucket.xml" -w '%{http_code}' -X PUT \
    --aws-sigv4 "aws:amz:$region:s3" --user "$access_key:$secret_key" \
    -H 'x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' \
    "http://127.0.0.1:$port/$bucket")
  [ "$status" = 200 ] || fail "creating bucket $bucket: HTTP $status $(cat "$dir/log/create-bucket.xml")"
  trap - ERR

  log ceph "ready in $(( ($(date +%s%N) - started) / 1000000 )) ms"
  publish_env "$dir/env" "S3_ENDPOINT=http://127.0.0.1:$port" "S3_ACCESS_KEY=$access_key" \
    "S3_SECRET_KEY=$secret_key" "S3_BUCKET=$bucket" "S3_REGION=$region" "S3_DIR=$dir"
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
