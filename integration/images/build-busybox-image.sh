#!/usr/bin/env bash
# Builds a busybox image archive from the machine's busybox-static: no network, no
# registry. OCI image layout by default (what `ctr images import` takes); --docker
# gives the `docker save` form.
#
# Usage: build-busybox-image.sh [--docker] OUT.tar [IMAGE_NAME]   (default docker.io/library/busybox:latest)
set -euo pipefail
here=$(dirname "$0")
format=()
if [ "${1:-}" = --docker ]; then format=(--docker); shift; fi
out=${1:?usage: build-busybox-image.sh [--docker] OUT.tar [IMAGE_NAME]}
name=${2:-docker.io/library/busybox:latest}
busybox=/bin/busybox
[ -x "$busybox" ] || { echo "$busybox is missing: apt-get install busybox-static" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/{bin,dev,etc,proc,sys,tmp,root}
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
echo 'root:x:0:' > "$root/etc/group"
chmod 1777 "$root/tmp"
bash "$here/build-image.sh" "${format[@]}" --name "$name" "$out" "$root"
