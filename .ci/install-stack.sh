#!/usr/bin/env bash
# Installs what the stack scripts (scripts/stack/) start, from Debian 12, when any of it is missing: Ceph 16.2
# (ceph-mon, ceph-osd, radosgw, and ceph-common for the `ceph` and `radosgw-admin` tools), uuid-runtime (uuidgen
# for the cluster's ids), curl (creates the bucket with a SigV4-signed request), nginx (the proxy in front of the
# replicas) and PostgreSQL 15.
# Idempotent: does nothing (no apt-get at all) when all are there. Needs root (or sudo) only to install.
#
# The stack scripts run every daemon by hand in its own state dir: the packages' own services (the system nginx
# on port 80, PostgreSQL's "15 main" cluster, Ceph's systemd units) are not wanted, so during an install that this
# script does, a policy-rc.d keeps them from starting (unless the machine already has one, as Docker images do).
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

packages=(ceph-mon ceph-osd radosgw ceph-common uuid-runtime curl nginx postgresql)
# the commands the stack scripts call, each checked after the install
commands=(ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool ceph-authtool uuidgen curl nginx)

installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }

missing=()
for package in "${packages[@]}"; do installed "$package" || missing+=("$package"); done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing missing stack packages: ${missing[*]}"
  as_root=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "not root and no sudo: cannot install ${missing[*]}" >&2; exit 1; }
    as_root=(sudo -E)
  fi
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '%s\n' '#!/bin/sh' '# written by .ci/install-stack.sh for the time of its apt-get install' 'exit 101' \
      | "${as_root[@]}" tee "$policy" >/dev/null
    "${as_root[@]}" chmod 755 "$policy"
    trap '"${as_root[@]}" rm -f "$policy"' EXIT
  fi
  apt_options=(-y -q --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  "${as_root[@]}" apt-get update -q
  "${as_root[@]}" apt-get install "${apt_options[@]}" "${missing[@]}"
fi

for package in "${packages[@]}"; do
  installed "$package" || { echo "package $package is still missing after the install" >&2; exit 1; }
done
for command in "${commands[@]}"; do
  command -v "$command" >/dev/null 2>&1 || { echo "$command is still missing after the install" >&2; exit 1; }
done
# PostgreSQL's server binaries are not on PATH (Debian keeps them per version)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || { echo "no PostgreSQL server binary under /usr/lib/postgresql" >&2; exit 1; }

echo "stack: $(ceph --version | cut -d' ' -f1-3); $(nginx -v 2>&1 | cut -d' ' -f3); $(ls -d /usr/lib/postgresql/*/bin/postgres | head -n 1)"
