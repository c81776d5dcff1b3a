#!/usr/bin/env bash
# make demo: build the skiff shim and run one busybox container with it through a
# private, throwaway containerd (its own root, state and socket; the system's containerd,
# if any, is not touched).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null; then exec sudo -E PATH="$PATH" bash "$0" "$@"; fi
  echo "the demo runs a container: run it as root" >&2; exit 1
fi
export PATH=$HOME/.cargo/bin:$PATH
command -v cargo >/dev/null || { echo "cargo is missing: install Rust (https://rustup.rs)" >&2; exit 1; }

missing=()
for pkg_bin in runc:runc containerd:containerd busybox-static:/bin/busybox; do
  command -v "${pkg_bin#*:}" >/dev/null || missing+=("${pkg_bin%%:*}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

echo "== building the shim"
cargo build --release --quiet --bin containerd-shim-skiff-v2
shim=$PWD/target/release/containerd-shim-skiff-v2

work=$(mktemp -d /tmp/skiff-demo.XXXXXX)
ctd_pid=
cleanup() {
  [ -n "$ctd_pid" ] && kill "$ctd_pid" 2>/dev/null && wait "$ctd_pid" 2>/dev/null
  grep " $work" /proc/self/mounts | cut -d' ' -f2 | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cat > "$work/config.toml" <<TOML
version = 2
root = "$work/root"
state = "$work/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$work/containerd.sock"
[ttrpc]
  address = "$work/containerd.sock.ttrpc"
TOML
echo "== starting a private containerd ($(containerd --version | cut -d' ' -f3))"
containerd --config "$work/config.toml" >"$work/containerd.log" 2>&1 &
ctd_pid=$!
ctr=(ctr --address "$work/containerd.sock" --namespace skiff-demo)
for _ in $(seq 100); do "${ctr[@]}" version >/dev/null 2>&1 && break; sleep 0.1; done

echo "== importing a busybox image built from busybox-static"
bash integration/images/build-busybox-image.sh "$work/busybox.tar" >/dev/null
"${ctr[@]}" images import "$work/busybox.tar" >/dev/null

echo "== ctr run --rm --runtime $shim busybox demo ..."
"${ctr[@]}" run --rm --runtime "$shim" docker.io/library/busybox:latest demo \
  sh -c 'echo "Hello from a skiff container: $(uname -n), pid $$, $(busybox | head -1 | cut -d" " -f1-2)"'
