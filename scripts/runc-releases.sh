#!/usr/bin/env bash
# Unpacks the static runc builds of ../shared/tools/runc/ (1.3.6 and 1.5.1: README there)
# beside the system's runc 1.1.5, never over it, for the tests that run with a current
# runc (make test: SKIFF_RUNC_BIN=DEST/1.5.1/usr/sbin; the cgroup v2 VMs, which see the
# host's / read-only, find them at the same path).
#
# Usage: runc-releases.sh [DEST] [ARCHIVES]   (defaults: /var/cache/runc, ../shared/tools/runc)
# Result: DEST/<version>/usr/sbin/runc. Idempotent: a version that runs is kept; each
# archive is checked against the sha256 its README records before it is unpacked.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:-/var/cache/runc}
archives=${2:-../shared/tools/runc}
for version in 1.3.6 1.5.1; do
  bin=$dest/$version/usr/sbin/runc
  if [ "$("$bin" --version 2>/dev/null | head -n 1)" = "runc version $version" ]; then
    continue
  fi
  tarball=$archives/runc-$version-linux-amd64.tar.xz
  [ -f "$tarball" ] || { echo "$tarball is missing" >&2; exit 1; }
  want=$(awk -v f="runc-$version-linux-amd64.tar.xz" -F'|' '$2 ~ f {gsub(/ /, "", $4); print $4}' "$archives/README.md")
  got=$(sha256sum "$tarball" | cut -d' ' -f1)
  [ -n "$want" ] && [ "$want" = "$got" ] ||
    { echo "$tarball: sha256 $got, README.md says ${want:-nothing}" >&2; exit 1; }
  mkdir -p "$dest/$version"
  tar -xJf "$tarball" -C "$dest/$version" usr/sbin/runc
  echo "runc: $("$bin" --version | head -n 1) -> $bin"
done
