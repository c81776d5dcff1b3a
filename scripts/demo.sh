#!/usr/bin/env bash
# make demo: build skiff and run one busybox container with skiffd, skiff's own
# manager: a throwaway skiffd (its own root, state and socket, nothing of the system's
# containerd touched), a busybox image built from busybox-static, our shim.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null; then exec sudo -E PATH="$PATH" bash "$0" "$@"; fi
  echo "the demo runs a container: run it as root" >&2; exit 1
fi
export PATH=$HOME/.cargo/bin:$PATH
command -v cargo >/dev/null || { echo "cargo is missing: install Rust (https://rustup.rs)" >&2; exit 1; }

missing=()
for pkg_bin in runc:runc busybox-static:/bin/busybox; do
  command -v "${pkg_bin#*:}" >/dev/null || missing+=("${pkg_bin%%:*}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

echo "== building the shim, skiffd and skiff"
cargo build --release --quiet --bin containerd-shim-skiff-v2 --bin skiffd --bin skiff
bin=$PWD/target/release

work=$(mktemp -d /tmp/skiff-demo.XXXXXX)
skiffd_pid=
cleanup() {
  if [ -n "$skiffd_pid" ]; then kill "$skiffd_pid" 2>/dev/null; wait "$skiffd_pid" 2>/dev/null || true; fi
  grep " $work" /proc/self/mounts | cut -d' ' -f2 | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work"
  for d in /sys/fs/cgroup/skiff-demo /sys/fs/cgroup/*/skiff-demo; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  true
}
trap cleanup EXIT

echo "== starting skiffd (root $work/root)"
"$bin/skiffd" --root "$work/root" --state "$work/state" --address "$work/state/skiffd.sock" \
  --cgroup-parent /skiff-demo >"$work/skiffd.log" 2>&1 &
skiffd_pid=$!
skiff=("$bin/skiff" --address "$work/state/skiffd.sock")
for _ in $(seq 100); do [ -S "$work/state/skiffd.sock" ] && break; sleep 0.1; done
[ -S "$work/state/skiffd.sock" ] || { echo "skiffd did not start:" >&2; cat "$work/skiffd.log" >&2; exit 1; }

echo "== importing a busybox image built from busybox-static"
bash integration/images/build-busybox-image.sh "$work/busybox.tar" >/dev/null
"${skiff[@]}" image import "$work/busybox.tar"

echo "== skiff run --rm --runtime $bin/containerd-shim-skiff-v2 busybox ..."
"${skiff[@]}" run --rm --name demo --runtime "$bin/containerd-shim-skiff-v2" busybox \
  sh -c 'echo "Hello from a skiff container: $(uname -n), pid $$, $(busybox | head -1 | cut -d" " -f1-2)"'

echo "== stopping skiffd"
kill "$skiffd_pid"; wait "$skiffd_pid" || true; skiffd_pid=
