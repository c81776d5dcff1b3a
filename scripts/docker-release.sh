#!/usr/bin/env bash
# Brings Docker's daemon and client (Debian testing's docker.io and docker-cli) onto this
# Debian 12 machine without installing them, the way ../shared/tools/containerd-releases.sh
# brings newer containerds: the tests start this dockerd against a private containerd.
#
# Usage: docker-release.sh [DEST]     (default DEST: /var/cache/docker-release)
# Result: DEST/<version>/usr/{sbin/dockerd,bin/docker} and DEST/current -> <version>.
# Idempotent: a release already unpacked is kept. Needs root (apt) and the system's
# package mirror, read from /etc/apt/sources.list.d/debian.sources.
set -euo pipefail
dest=${1:-/var/cache/docker-release}
suite=trixie
work=$dest/.apt
mkdir -p "$work/parts" "$work/lists/partial" "$work/cache/archives/partial"

mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$mirror" ] || { echo "no mirror found in /etc/apt/sources.list.d/debian.sources" >&2; exit 1; }
cat > "$work/parts/alt.sources" <<SRC
Types: deb
URIs: $mirror
Suites: $suite
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
apt_opts=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$work/parts"
          -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o APT::Sandbox::User=root)
apt-get "${apt_opts[@]}" -qq update

version=$(apt-cache "${apt_opts[@]}" madison docker.io | awk -v s="$suite/main" '$0 ~ s {print $3; exit}')
[ -n "$version" ] || { echo "docker.io not found in $suite" >&2; exit 1; }
target=$dest/$version
if [ ! -x "$target/usr/sbin/dockerd" ] || [ ! -x "$target/usr/bin/docker" ]; then
  rm -f "$work"/*.deb
  (cd "$work" && apt-get "${apt_opts[@]}" -qq download "docker.io=$version" "docker-cli=$version")
  mkdir -p "$target"
  for deb in "$work"/*.deb; do
    dpkg-deb -x "$deb" "$target"
  done
  rm -f "$work"/*.deb
fi
ln -sfn "$version" "$dest/current"
echo "docker: $("$target/usr/sbin/dockerd" --version) -> $target"
