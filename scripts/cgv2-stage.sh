#!/usr/bin/env bash
# make test's last stage: what only a cgroup v2 machine can show, in throw-away VMs
# (../shared/tools/cgv2-vm.sh: Debian's 6.1 kernel, pure cgroup v2 with every controller,
# CRIU working; with --systemd, systemd as init). Everything is built here on the host;
# the VMs only run it (scripts/cgv2-guest.sh), side by side.
#
# A machine that cannot boot the VM (no emulator, too little memory, no kernel) gets a
# SKIPPED line in target/skipped-tests.txt with the reason, and the stage does not fail;
# once a VM has booted, any failure in it fails the stage.
#
# CGV2_PLAN replaces the VMs below, one per line "NAME|cgv2-vm.sh options|jobs", e.g. to
# rerun one failure: CGV2_PLAN="dbg|--disk 2048|runc:cgroup_v2:update_sets_memory_max_cpu_max_and_pids_max".
set -uo pipefail
[ $# = 0 ] || { sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
cd "$(dirname "$0")/.."
VM=${CGV2_VM:-../shared/tools/cgv2-vm.sh}
CARGO=${CARGO:-cargo}
# Each VM: one vCPU (the work inside is mostly one chain of processes, so three VMs of
# one get more done on a two-core host than one of two) and 1.5 GiB.
MEM=${CGV2_MEM:-1536}
TIMEOUT=${CGV2_TIMEOUT:-900}
OUT=$PWD/target/cgv2
started=$(date +%s)

# The three VMs, each about 400-500 s of work under emulation on a loaded two-core host
# (measured: README), and a fourth for the libcontainer shim's parity with runc (the
# tables that depend on the cgroup version: seccomp and process settings, device rules
# among them) and confinement with both shims, which takes longer. The scratch disk
# (--disk) puts the containers' root filesystems on a block device, so that their
# io.stat has bytes to count. The systemd VM also runs cgroupfs tests: a host that boots
# systemd and hands cgroupfs paths to runc is the common case too. runc151 is the runc
# shim with runc 1.5.1, what a cgroup v2 node runs now: shimtest's cgroup families,
# cgroup_v2 and systemd run with it; runc 1.1.5 (Debian 12's) keeps checkpoint, crun and
# the cgroup tests of cgroups and task_api, and runs everything on the hosts.
# runc151@2.3 runs under containerd 2.3: its CRI with a user-namespaced pod, and the
# pressure figures of ContainerStats (the pod test only: the others time a pod's stop
# against the hosts' 5 s, which emulation overruns).
PLAN=${CGV2_PLAN:-"runc|--disk 4096|shimtest:runc151 runc151:cgroup_v2 runc151@2.3:cri_userns runc151@2.3:cri:pod_of_two_containers_runs_in_one_skiff_shim runc:checkpoint runc:crun runc:faults:checkpoint_without_a_working_criu_fails_clearly_and_the_task_runs_on
go|--disk 4096|shimtest:go youki:cgroup_v2 youki:cgroups youki:task_api:pause_freezes_and_resume_thaws,kill_all_ends_init_and_execs,runc_binary_option_through_ctr_as_a_drop_in,runc_binary_option_over_ttrpc,shim_cgroup_option_moves_the_shim
systemd|--systemd --disk 4096|runc151:systemd youki:systemd shimtest:youki youki:checkpoint runc:cgroups runc:task_api:pause_freezes_and_resume_thaws,kill_all_ends_init_and_execs,runc_binary_option_through_ctr_as_a_drop_in,runc_binary_option_over_ttrpc,shim_cgroup_option_moves_the_shim youki:crun youki:faults:checkpoint_without_a_working_criu_fails_clearly_and_the_task_runs_on
libcontainer|--disk 4096 --timeout 1800|youki:libcontainer_parity:seccomp_filters_agree_with_runc_for_init_and_exec,process_settings_agree_with_runc_for_init_and_exec youki:confinement runc:confinement"}

skip() {
  echo "SKIPPED cgroup v2 stage (scripts/cgv2-stage.sh): $*" | tee -a target/skipped-tests.txt
  exit 0
}

[ -f "$VM" ] || skip "$VM is missing (the project's shared tools are not beside this tree)"
command -v qemu-system-x86_64 >/dev/null ||
  skip "no emulator: qemu-system-x86_64 is not installed (.ci/run installs qemu-system-x86)"
nvms=$(grep -c '|' <<<"$PLAN")
avail=$(awk '/^MemAvailable:/ {print int($2 / 1024)}' /proc/meminfo)
# As many VMs at once as memory allows (and the plan has), leaving 512 MiB to the host.
parallel=$(( (avail - 512) / MEM ))
[ "$parallel" -gt "$nvms" ] && parallel=$nvms
[ "$parallel" -ge 1 ] ||
  skip "too little memory: ${avail} MiB available, a VM needs ${MEM} MiB and the host 512"
if ! setup=$(bash "$VM" --systemd --setup-only 2>&1); then
  skip "the VM cannot be set up: $(tail -n 3 <<<"$setup" | tr '\n' ' ')"
fi

echo "== cgroup v2 stage: building what the VMs run"
rm -rf "$OUT"
mkdir -p "$OUT/bin/tests" "$OUT/logs"
execs=$(grep -oE '(runc|runc151|youki|go)(@[0-9.]+)?:[a-z_0-9]+' <<<"$PLAN" | cut -d: -f2 | sort -u)
args=()
for t in $execs; do args+=(--test "$t"); done
# Test executables by name, as cargo reports them.
$CARGO test -q --no-run -p skiff-integration "${args[@]}" --message-format=json-render-diagnostics |
  grep -o '"executable":"[^"]*"' | sed 's/"executable":"//; s/"$//' >"$OUT/executables" ||
  { echo "cargo test --no-run failed"; exit 1; }
$CARGO build -q --bins -p skiff-shim -p skiff-youki-shim -p skiff-integration || exit 1
# Stripped of debug info: a tenth of the size to copy and page in under emulation.
strip_into() { objcopy --strip-debug "$1" "$2" || exit 1; }
for t in $execs; do
  exe=$(grep "/deps/${t}-[0-9a-f]*$" "$OUT/executables" | head -n 1)
  [ -n "$exe" ] || { echo "no test executable for $t"; exit 1; }
  strip_into "$exe" "$OUT/bin/tests/$t"
done
for b in containerd-shim-skiff-v2 containerd-shim-skiff-youki-v2 shimtest; do
  strip_into "target/debug/$b" "$OUT/bin/$b"
done
bash integration/images/build-busybox-image.sh "$OUT/bin/busybox-oci.tar" >/dev/null || exit 1
# runc 1.5.1 for libcontainer_parity, where the host has it.
RUNC_1_5=${SKIFF_RUNC_1_5:-/var/cache/runc/1.5.1/usr/sbin/runc}
[ -x "$RUNC_1_5" ] && cp "$RUNC_1_5" "$OUT/bin/runc-1.5.1"
if grep -q ':cri' <<<"$PLAN"; then
  bash integration/images/build-pause-image.sh "$OUT/bin/pause-oci.tar" registry.k8s.io/pause:3.9 >/dev/null || exit 1
fi

# One VM: its jobs; its output in logs/vm-NAME.log, its exit status in rc-NAME.
run_vm() {
  local name=$1 opts=$2; shift 2
  # A VM's own options come last: they may set its own --timeout.
  # shellcheck disable=SC2086
  CGV2_NAME=$name bash "$VM" --cpus 1 --mem "$MEM" --timeout "$TIMEOUT" $opts -- \
    bash scripts/cgv2-guest.sh "$OUT" "$@" >"$OUT/logs/vm-$name.log" 2>&1
  echo $? >"$OUT/rc-$name"
}

echo "== cgroup v2 stage: $nvms VMs, $parallel at a time"
names=()
running=0
while IFS='|' read -r name opts jobs; do
  [ -n "$name" ] || continue
  if [ $running -ge "$parallel" ]; then wait -n; running=$((running - 1)); fi
  names+=("$name")
  # shellcheck disable=SC2086
  run_vm "$name" "$opts" $jobs &
  running=$((running + 1))
done <<<"$PLAN"
wait

status=0 ran=0
for name in "${names[@]}"; do
  rc=$(cat "$OUT/rc-$name" 2>/dev/null || echo 125)
  echo "-- VM $name: exit status $rc"
  grep -E '^== ' "$OUT/logs/vm-$name.log" | sed 's/^/   /'
  if [ ! -e "$OUT/started-$name" ]; then
    # The guest never ran: the VM itself could not start (cgv2-vm.sh exits 125).
    why=$(grep -v '^$' "$OUT/logs/vm-$name.log" | tail -n 3 | tr '\n' ' ')
    echo "SKIPPED cgroup v2 stage, VM $name (scripts/cgv2-stage.sh): the VM did not boot (exit $rc): $why" |
      tee -a target/skipped-tests.txt
    continue
  fi
  ran=$((ran + 1))
  [ "$rc" = 0 ] || status=1
done
for f in "$OUT"/logs/*.log; do
  j=$(basename "$f" .log)
  case $j in vm-*) continue;; esac
  grep -q "^PASS $j " "$OUT/results" 2>/dev/null && continue
  echo "-- $j did not pass; the end of its log ($f):"
  tail -n 80 "$f"
done
took=$(( $(date +%s) - started ))
[ $ran = 0 ] && exit 0
verdict=passed
[ $status = 0 ] || verdict=FAILED
line="cgroup v2 stage (scripts/cgv2-stage.sh, $ran VMs, kernel $(cat "$OUT/kernel" 2>/dev/null)): $verdict in ${took}s wall time, builds and boots included"
echo "$line"
echo "$line" >>target/test-report.txt
exit $status
