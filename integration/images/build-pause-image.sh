#!/usr/bin/env bash
# Builds a tiny pause image (a static /pause that waits for SIGTERM and reaps orphans)
# as an OCI image archive. Needs gcc with a static libc (Debian's libc6-dev).
#
# Usage: build-pause-image.sh OUT.tar [IMAGE_NAME]   (default registry.k8s.io/pause:3.9)
set -euo pipefail
here=$(dirname "$0")
out=${1:?usage: build-pause-image.sh OUT.tar [IMAGE_NAME]}
name=${2:-registry.k8s.io/pause:3.9}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/rootfs"
gcc -static -Os -s -o "$work/rootfs/pause" "$here/pause.c"
bash "$here/build-image.sh" --cmd '["/pause"]' --name "$name" "$out" "$work/rootfs"
