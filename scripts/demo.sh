#!/usr/bin/env bash
# make demo: build skiff and run one busybox container with skiffd, skiff's own
# manager: a throwaway skiffd (its own root, state and socket, nothing of the system's
# containerd touched), a busybox image built from busybox-static, our shim. Where
# Debian's docker-registry and curl are installed, the image is pushed to a throwaway
# registry on 127.0.0.1 and skiffd pulls it from there (no internet either way);
# otherwise it is imported as an archive.
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
registry_pid=
cleanup() {
  if [ -n "$skiffd_pid" ]; then kill "$skiffd_pid" 2>/dev/null; wait "$skiffd_pid" 2>/dev/null || true; fi
  if [ -n "$registry_pid" ]; then kill "$registry_pid" 2>/dev/null; wait "$registry_pid" 2>/dev/null || true; fi
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

bash integration/images/build-busybox-image.sh "$work/busybox.tar" >/dev/null
image=busybox
if command -v docker-registry >/dev/null && command -v curl >/dev/null; then
  # A port nothing listens on (bash's /dev/tcp connects, or fails).
  port=$((45000 + RANDOM % 1000))
  while (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
  echo "== a throwaway registry (docker-registry) on 127.0.0.1:$port"
  printf 'version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
    "$work/registry" "$port" > "$work/registry.yml"
  docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
  registry_pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
  # Pushed over the distribution API: each blob by POST then PUT, then the manifest.
  mkdir -p "$work/layout" && tar -xf "$work/busybox.tar" -C "$work/layout"
  base=http://127.0.0.1:$port/v2/demo/busybox
  for blob in "$work"/layout/blobs/sha256/*; do
    location=$(curl -sf -X POST -D - -o /dev/null "$base/blobs/uploads/" | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
    case $location in http*) ;; *) location=http://127.0.0.1:$port$location ;; esac
    case $location in *\?*) sep='&' ;; *) sep='?' ;; esac
    curl -sf -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$blob" \
      "$location${sep}digest=sha256:$(basename "$blob")" >/dev/null
  done
  manifest=$(grep -o 'sha256:[0-9a-f]\{64\}' "$work/layout/index.json" | head -1 | cut -d: -f2)
  curl -sf -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary "@$work/layout/blobs/sha256/$manifest" "$base/manifests/1" >/dev/null
  image=127.0.0.1:$port/demo/busybox:1
  echo "== skiff image pull $image"
  "${skiff[@]}" image pull "$image"
else
  echo "== importing a busybox image built from busybox-static (apt-get install docker-registry curl: the demo pulls it from a local registry instead)"
  "${skiff[@]}" image import "$work/busybox.tar"
fi

echo "== skiff run --rm --runtime $bin/containerd-shim-skiff-v2 $image ..."
"${skiff[@]}" run --rm --name demo --runtime "$bin/containerd-shim-skiff-v2" "$image" \
  sh -c 'echo "Hello from a skiff container: $(uname -n), pid $$, $(busybox | head -1 | cut -d" " -f1-2)"'

echo "== stopping skiffd"
kill "$skiffd_pid"; wait "$skiffd_pid" || true; skiffd_pid=
