#!/usr/bin/env bash
# Builds an image archive from layer directories, with no network and no registry:
# an OCI image layout (what `ctr images import` and `skiff image import` take) or the
# `docker save` form (manifest.json, a config, a layer.tar per layer).
#
# Usage: build-image.sh [--docker] [--gzip] [--cmd JSON_ARRAY] --name NAME OUT.tar LAYERDIR...
# Each LAYERDIR becomes one layer, in order; OCI whiteouts are files named .wh.NAME
# (and .wh..wh..opq) inside it.
set -euo pipefail
format=oci gzip=0 cmd='["sh"]' name=
while [ $# -gt 0 ]; do
  case $1 in
    --docker) format=docker; shift ;;
    --gzip) gzip=1; shift ;;
    --cmd) cmd=$2; shift 2 ;;
    --name) name=$2; shift 2 ;;
    *) break ;;
  esac
done
out=${1:?usage: build-image.sh [--docker] [--gzip] [--cmd JSON] --name NAME OUT.tar LAYERDIR...}
shift
[ -n "$name" ] && [ $# -gt 0 ] || { echo "build-image.sh: need --name and at least one layer directory" >&2; exit 2; }
out=$(realpath -m "$out")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/img/blobs/sha256"
tarflags=(--sort=name --owner=0 --group=0 --numeric-owner --mtime=@0)

blob() { # FILE MEDIATYPE -> prints a descriptor, moves FILE into the blob store
  local digest size
  digest=$(sha256sum "$1" | cut -d' ' -f1)
  size=$(stat -c %s "$1")
  mv "$1" "$work/img/blobs/sha256/$digest"
  printf '{"mediaType":"%s","digest":"sha256:%s","size":%s}' "$2" "$digest" "$size"
}

diff_ids= layers= docker_layers= n=0
for dir in "$@"; do
  n=$((n + 1))
  tar "${tarflags[@]}" -C "$dir" -cf "$work/layer$n.tar" .
  diff_ids+="${diff_ids:+,}\"sha256:$(sha256sum "$work/layer$n.tar" | cut -d' ' -f1)\""
  if [ "$format" = docker ]; then
    mkdir -p "$work/img/layer$n"
    if [ $gzip = 1 ]; then gzip -n "$work/layer$n.tar" && mv "$work/layer$n.tar.gz" "$work/img/layer$n/layer.tar"
    else mv "$work/layer$n.tar" "$work/img/layer$n/layer.tar"; fi
    docker_layers+="${docker_layers:+,}\"layer$n/layer.tar\""
  elif [ $gzip = 1 ]; then
    gzip -n "$work/layer$n.tar"
    layers+="${layers:+,}$(blob "$work/layer$n.tar.gz" application/vnd.oci.image.layer.v1.tar+gzip)"
  else
    layers+="${layers:+,}$(blob "$work/layer$n.tar" application/vnd.oci.image.layer.v1.tar)"
  fi
done

case $(uname -m) in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) arch=$(uname -m) ;; esac
printf '{"architecture":"%s","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":%s,"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":[%s]}}' \
  "$arch" "$cmd" "$diff_ids" > "$work/config.json"

if [ "$format" = docker ]; then
  config_name=$(sha256sum "$work/config.json" | cut -d' ' -f1).json
  mv "$work/config.json" "$work/img/$config_name"
  rmdir "$work/img/blobs/sha256" "$work/img/blobs"
  repo=${name%:*} tag=${name##*:}
  printf '[{"Config":"%s","RepoTags":["%s"],"Layers":[%s]}]' "$config_name" "$name" "$docker_layers" > "$work/img/manifest.json"
  printf '{"%s":{"%s":"%s"}}' "$repo" "$tag" "${config_name%.json}" > "$work/img/repositories"
else
  config=$(blob "$work/config.json" application/vnd.oci.image.config.v1+json)
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":%s,"layers":[%s]}' \
    "$config" "$layers" > "$work/manifest.json"
  manifest=$(blob "$work/manifest.json" application/vnd.oci.image.manifest.v1+json)
  tag=${name##*:}
  printf '{"schemaVersion":2,"manifests":[%s]}' \
    "${manifest%\}},\"platform\":{\"architecture\":\"$arch\",\"os\":\"linux\"},\"annotations\":{\"io.containerd.image.name\":\"$name\",\"org.opencontainers.image.ref.name\":\"$tag\"}}" \
    > "$work/img/index.json"
  echo '{"imageLayoutVersion":"1.0.0"}' > "$work/img/oci-layout"
fi
tar "${tarflags[@]}" -C "$work/img" -cf "$out" .
echo "$out: $name ($format)"
