#!/usr/bin/env bash
# make bench: our shim against containerd's Go shim, side by side, under each containerd
# generation present (1.6, 2.1, 2.2, 2.3: ../shared/bench/shimbench.py), shimtest's
# lifecycle and Stats load, written to BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bench=../shared/bench/shimbench.py
releases=${RELEASES:-/var/cache/containerd-releases}
[ -f "$bench" ] || { echo "$bench is missing" >&2; exit 1; }
ours=$PWD/${SHIM_BIN:-target/release/containerd-shim-skiff-v2}
# The libcontainer shim (issue 13), measured beside them under containerd 1.6.
youki=$PWD/${YOUKI_BIN:-target/release/containerd-shim-skiff-youki-v2}
out=$(mktemp)
raw=$(mktemp -d)
trap 'rm -rf "$raw"' EXIT
jsons=(1.6="$raw/1.6.json")
{
  echo "# Benchmarks"
  echo
  echo "Produced by \`make bench\` on $(date -u +%Y-%m-%d), $(nproc) CPUs, $(uname -r), $(runc --version | head -1)."
  echo "Ratios are B/A: the Go shim's figure divided by skiff's (above 1 means skiff is"
  echo "faster or smaller, except for start_per_s, where below 1 means skiff starts more per second);"
  echo "under 1.6 the third column is the libcontainer shim (skiff-youki), its ratio also to skiff."
  echo
  echo "## containerd 1.6 (system): skiff vs containerd-shim-runc-v2, and skiff-youki"
  echo
  echo "    python3 $bench --runtime $ours --runtime /usr/bin/containerd-shim-runc-v2 --runtime $youki"
  echo
  python3 "$bench" --runtime "$ours" --runtime /usr/bin/containerd-shim-runc-v2 \
    --runtime "$youki" --json "$raw/1.6.json" | sed 's/^/    /'
  # Each newer generation against its own Go shim (2.x's Go shim cannot run under 1.6).
  for gen in sid 2.2 2.3; do
    bin=$releases/$gen/usr/bin
    [ -x "$bin/containerd" ] || { echo; echo "(containerd $gen is not unpacked in $releases: skipped)"; continue; }
    version=$("$bin/containerd" --version | awk '{print $3}' | sed 's/^v//; s/[~+].*//')
    label=${version%.*}
    echo
    echo "## containerd $version ($releases/$gen): skiff vs its containerd-shim-runc-v2"
    echo
    echo "    python3 $bench --containerd $bin --runtime $ours --runtime $bin/containerd-shim-runc-v2"
    echo
    python3 "$bench" --containerd "$bin" --runtime "$ours" \
      --runtime "$bin/containerd-shim-runc-v2" --json "$raw/$label.json" | sed 's/^/    /'
    jsons+=("$label=$raw/$label.json")
  done
  echo
  echo "## shimtest: the shim side alone (no containerd)"
  echo
  shims=(--shim "$ours" --shim /usr/bin/containerd-shim-runc-v2)
  [ -x "$releases/sid/usr/bin/containerd-shim-runc-v2" ] && shims+=(--shim "$releases/sid/usr/bin/containerd-shim-runc-v2")
  [ -x "$releases/2.2/usr/bin/containerd-shim-runc-v2" ] && shims+=(--shim "$releases/2.2/usr/bin/containerd-shim-runc-v2")
  # containerd 2.3's Go shim, started as its containerd starts it.
  [ -x "$releases/2.3/usr/bin/containerd-shim-runc-v2" ] && shims+=(--shim "$releases/2.3/usr/bin/containerd-shim-runc-v2" --bootstrap)
  shims+=(--shim "$youki" --state-root /run/containerd/youki)
  echo "    target/release/shimtest ${shims[*]} --lifecycle 30"
  echo
  target/release/shimtest "${shims[@]}" --lifecycle 30 | tee "$raw/lifecycle.txt" | sed 's/^/    /'
  echo
  echo "Median latency of each call over the lifecycle and exec scenarios:"
  echo
  echo "    target/release/shimtest ${shims[*]} --filter lifecycle/ --filter exec/"
  echo
  target/release/shimtest "${shims[@]}" --filter lifecycle/ --filter exec/ \
    | sed -n '/^median latency/,/^$/p' | sed 's/^/    /'
  echo
  # containerd 2.3's CRI asks every container's Stats once a second: what that costs a
  # pod's shim of 30 containers, beside 2.3's Go shim (issue 26).
  go23=$releases/2.3/usr/bin/containerd-shim-runc-v2
  if [ -x "$go23" ]; then
    echo "## Stats as containerd 2.3's CRI asks them: 30 containers in one pod shim"
    echo
    echo "    target/release/shimtest --shim $ours --shim $go23 --bootstrap --stats-load 30:30"
    echo
    target/release/shimtest --shim "$ours" --shim "$go23" --bootstrap --stats-load 30:30 | sed 's/^/    /'
    echo
  fi
  echo "## Targets (issues 10 and 13), judged from the figures above"
  echo
  echo "Ratios are skiff / Go shim of the same containerd (scripts/bench_targets.py)."
  echo
  python3 scripts/bench_targets.py "$raw/lifecycle.txt" "${jsons[@]}"
  # Measurements make bench cannot repeat (against an earlier build, or inside the cgroup
  # v2 VM), carried over from the previous BENCHMARKS.md between their markers.
  if [ -f BENCHMARKS.md ] && grep -q '^<!-- kept:begin' BENCHMARKS.md; then
    echo
    sed -n '/^<!-- kept:begin/,/^<!-- kept:end/p' BENCHMARKS.md
  fi
} > "$out"
mv "$out" BENCHMARKS.md
cat BENCHMARKS.md
