#!/usr/bin/env bash
# Installs the real clients the tests drive (skopeo, podman, buildah, umoci) and the tools they compare with or
# validate against (docker-registry: distribution 2.8.2 whose storage the import tests read; docker-compose: the
# compose examples are checked with `docker-compose config`; htpasswd from apache2-utils: the access-control tests
# write their users with it; Prometheus: the metrics tests run `promtool check metrics` and a real `prometheus`
# server; openssl: the TLS tests' throw-away CA) from Debian when any is missing.
# Idempotent: does nothing (no apt-get at all) when all are there. Needs root (or sudo) only to install.
#
# The tests run podman and buildah with the vfs storage driver in their own temp folders (root, runroot, tmpdir,
# storage.conf, registries.conf, signature policy), so no fuse-overlayfs, slirp4netns, netavark/CNI or
# catatonit is needed: --no-install-recommends is enough. uidmap, conmon, crun and containers-common come in
# as hard dependencies.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

declare -A package_of=([skopeo]=skopeo [podman]=podman [buildah]=buildah [umoci]=umoci
                        [docker-registry]=docker-registry [docker-compose]=docker-compose [htpasswd]=apache2-utils
                        [promtool]=prometheus [prometheus]=prometheus [openssl]=openssl)
tools=(skopeo podman buildah umoci docker-registry docker-compose htpasswd promtool prometheus openssl)
missing=()
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${package_of[$tool]}")
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing missing clients: ${missing[*]}"
  as_root=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "not root and no sudo: cannot install ${missing[*]}" >&2; exit 1; }
    as_root=(sudo -E)
  fi
  apt_options=(-y -q --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  "${as_root[@]}" apt-get update -q
  # shellcheck disable=SC2046 # one package may provide two tools
  "${as_root[@]}" apt-get install "${apt_options[@]}" $(printf '%s\n' "${missing[@]}" | sort -u)
fi

for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || { echo "$tool is still missing after the install" >&2; exit 1; }
done

# Debian's containers-common ships these; the tests do not rely on them (they pass their own policy and
# registries.conf), but a hand-run `skopeo copy` as in the README does, so put the defaults back when missing.
if [ "$(id -u)" -eq 0 ]; then
  mkdir -p /etc/containers
  if [ ! -e /etc/containers/policy.json ]; then
    printf '%s\n' '{' '    "default": [' '        {' '            "type": "insecureAcceptAnything"' '        }' '    ]' '}' \
      > /etc/containers/policy.json
  fi
  if [ ! -e /etc/containers/registries.conf ]; then
    printf '%s\n' 'unqualified-search-registries = []' > /etc/containers/registries.conf
  fi
fi

echo "clients: $(skopeo --version); $(podman --version); $(buildah --version | cut -d' ' -f1-3); $(umoci --version);" \
  "$(docker-registry --version | cut -d' ' -f2-3); $(docker-compose version --short 2>/dev/null || echo docker-compose)" \
  "$(prometheus --version 2>&1 | head -n 1); $(openssl version)"
