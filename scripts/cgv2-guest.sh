#!/usr/bin/env bash
# Runs inside a cgroup v2 VM (../shared/tools/cgv2-vm.sh), started by scripts/cgv2-stage.sh:
#   cgv2-guest.sh OUT JOB...
# OUT (on the share) holds bin/ (what the host built) and receives logs/JOB.log and one
# "PASS|FAIL JOB SECONDS" line per job in results. Jobs:
#   shimtest:runc    shimtest, every scenario, against the runc shim
#   shimtest:youki   the same against the libcontainer shim, but for what it refuses
#   shimtest:go      the same against containerd's Go shim, the reference, which must pass
#                    every scenario but the one it fails everywhere
#   shimtest:runc151 shimtest's cgroup and CRIU families against the runc shim with
#                    runc 1.5.1 (/var/cache/runc)
#   SHIM[@CTD]:EXE[:TEST,...]  a test executable (all its tests, or those named) with
#                    SHIM runc, runc151 (the runc shim with runc 1.5.1), youki, or go
#                    (the Go shim: to check a test's expectations against the
#                    reference); @CTD runs it under containerd CTD of
#                    /var/cache/containerd-releases (2.3) instead of the system's 1.6
# Each of our shims must pass every scenario it supports, so it passes whatever the Go
# shim passes; the runs are separate so that VMs can take them side by side.
set -uo pipefail
OUT=$1; shift
# Binaries run from the guest's tmpfs: executed from the 9p share, each exec of a shim
# pages its text in over 9p again, which made a shimtest run three times slower.
BIN=/tmp/skiff-cgv2-bin
mkdir -p "$BIN" "$OUT/logs"
cp -a "$OUT/bin/." "$BIN/"
date -u +%FT%TZ >"$OUT/started-${CGV2_NAME:-vm}"
uname -r >"$OUT/kernel"
# What this machine must support: a test that finds one missing fails here instead of
# recording a skip (integration/src/machine.rs).
export SKIFF_REQUIRE=cgroup-v2,criu,crun
[ -d /run/systemd/system ] && SKIFF_REQUIRE=$SKIFF_REQUIRE,systemd
# With a scratch disk (--disk) the containers' snapshots are on a block device.
[ -b /dev/vda ] && SKIFF_REQUIRE=$SKIFF_REQUIRE,block-io
export SKIFF_MACHINE="cgroup v2 VM${CGV2_NAME:+ $CGV2_NAME}"
# The image the tests import, built once on the host (30 s per test process in here).
export SKIFF_BUSYBOX_ARCHIVE=$BIN/busybox-oci.tar
[ -f "$BIN/pause-oci.tar" ] && export SKIFF_PAUSE_ARCHIVE=$BIN/pause-oci.tar
# The host's / is the guest's: the current runc and the newer containerds are there.
RUNC_151=/var/cache/runc/1.5.1/usr/sbin
RELEASES=/var/cache/containerd-releases
GO_SHIM=/usr/bin/containerd-shim-runc-v2
# libcontainer_parity runs both of our shims (and runc 1.5.1 beside the VM's runc 1.1.5
# when the stage brought it).
export SKIFF_RUNC_SHIM=$BIN/containerd-shim-skiff-v2 SKIFF_LIBCONTAINER_SHIM=$BIN/containerd-shim-skiff-youki-v2
[ -x "$BIN/runc-1.5.1" ] && export SKIFF_RUNC_1_5=$BIN/runc-1.5.1 SKIFF_PARITY_WITHOUT_RUNC_1_1=1
# shimtest's deadlines (10 s for 8 MiB of output, for instance) were met here with little
# to spare by the Go shim, whose runtime is heavy under emulation: three times longer.
export SHIMTEST_TIME_SCALE=3

shim_path() {
  case $1 in
    runc|runc151) echo "$BIN/containerd-shim-skiff-v2";;
    youki) echo "$BIN/containerd-shim-skiff-youki-v2";;
    go) echo "$GO_SHIM";;
    *) return 1;;
  esac
}

# The reference must pass in the VM too: every scenario but the one it fails on every
# machine (README: it leaves its socket behind after a killed shim's delete).
# What the VM's Go shim (Debian 12's, containerd 1.6) fails wherever it runs, as
# `make conformance` shows on the hosts too: it leaves its socket after a delete that
# follows a kill; it has no `binary-v2://` logger scheme (only 2.3's Go shim has it); and it
# cannot decode the legacy `containerd.linux.runc.CreateOptions` at all (skiff does
# better, README).
GO_1_6_FAILS='^FAIL (shim/delete-after-kill|stdio/binary-v2-logger|options/legacy-create-options) '

go_shim_passes() {
  local bad
  bad=$(grep -E '^FAIL ' "$1" | grep "\[runc-v2 " | grep -vE "$GO_1_6_FAILS" || true)
  [ -z "$bad" ] && return 0
  echo "the Go shim (the reference) failed in the VM:"; echo "$bad"
  return 1
}

job() {
  case $1 in
    shimtest:runc)
      "$BIN/shimtest" --shim "$(shim_path runc)" --json "$OUT/shimtest-runc.json";;
    shimtest:runc151)
      # The families whose path through runc touches the cgroup (or CRIU): the rest
      # (stdio, terminals, most of exec, bad requests) run with runc 1.5.1 on the host,
      # and every family with runc 1.1.5 here would double the slowest job (runc 1.5.1
      # starts several times slower under emulation).
      [ -x "$RUNC_151/runc" ] || { echo "no runc 1.5.1 at $RUNC_151"; return 1; }
      local families=()
      for f in lifecycle/ kill/ pids/ pause/ metrics/ pod/ shim/ checkpoint/ exec/kill exec/output-and-exit; do
        families+=(--filter "$f")
      done
      PATH=$RUNC_151:$PATH "$BIN/shimtest" --shim "$(shim_path runc)" "${families[@]}" \
        --json "$OUT/shimtest-runc151.json";;
    shimtest:youki)
      # What the libcontainer shim refuses by design (README): another runtime binary,
      # and CRIU, which this build does not include.
      "$BIN/shimtest" --shim "$(shim_path youki)" --state-root /run/containerd/youki \
        --skip options/runtime-binary --skip checkpoint/ --json "$OUT/shimtest-youki.json";;
    shimtest:go)
      "$BIN/shimtest" --shim "$GO_SHIM" --json "$OUT/shimtest-go.json" >"$OUT/shimtest-go.out"
      cat "$OUT/shimtest-go.out"
      go_shim_passes "$OUT/shimtest-go.out";;
    *:*)
      local who=${1%%:*} shim spec exe env=()
      shim=$(shim_path "${who%@*}") || { echo "unknown shim in $1"; return 2; }
      [ "${who%@*}" = runc151 ] && env+=("SKIFF_RUNC_BIN=$RUNC_151")
      [ "$who" != "${who#*@}" ] && env+=("SKIFF_CONTAINERD_BIN=$RELEASES/${who#*@}/usr/bin")
      spec=${1#*:}
      exe=$BIN/tests/${spec%%:*}
      local tests=()
      [ "$spec" != "${spec#*:}" ] && IFS=, read -r -a tests <<<"${spec#*:}"
      # One test at a time: the VM has one emulated CPU, side by side they only wait.
      env "${env[@]}" SKIFF_SHIM="$shim" "$exe" --test-threads 1 ${tests[0]:+--exact} "${tests[@]}";;
    *) echo "unknown job $1"; return 2;;
  esac
}

status=0
for j in "$@"; do
  # The log's name: shimtest_SHIM, SHIM_EXE, or SHIM_EXE_some for a choice of its tests.
  name=$(cut -d: -f1,2 <<<"$j" | tr :@ __)
  [ "$(cut -d: -f3 <<<"$j")" ] && name=${name}_some
  start=$(date +%s)
  echo "== $j"
  job "$j" >"$OUT/logs/$name.log" 2>&1
  rc=$?
  took=$(( $(date +%s) - start ))
  if [ $rc = 0 ]; then echo "PASS $name $took" >>"$OUT/results"
  else echo "FAIL $name $took" >>"$OUT/results"; status=1; fi
  echo "== $j: $([ $rc = 0 ] && echo passed || echo FAILED) in ${took}s"
done
exit $status
