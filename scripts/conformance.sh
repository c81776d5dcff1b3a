#!/usr/bin/env bash
# make conformance: shimtest against our shim (started the legacy way and with 2.3's
# bootstrap protocol) and containerd's Go shims of all five generations (1.6 from the
# system; 1.7, 2.1, 2.2 and 2.3 from ../shared/tools/containerd-releases.sh when
# unpacked; 2.3's started with the bootstrap protocol, as its containerd starts it), side
# by side. The matrix goes into README.md between the conformance markers, with the date.
set -euo pipefail
cd "$(dirname "$0")/.."
releases=${RELEASES:-/var/cache/containerd-releases}
ours=${SHIM_BIN:-target/release/containerd-shim-skiff-v2}
shims=(--shim "$ours" --shim "$ours" --bootstrap)
[ -x /usr/bin/containerd-shim-runc-v2 ] && shims+=(--shim /usr/bin/containerd-shim-runc-v2)
for gen in trixie sid 2.2 2.3; do
  go=$releases/$gen/usr/bin/containerd-shim-runc-v2
  if [ ! -x "$go" ]; then
    echo "no Go shim in $releases/$gen: run ../shared/tools/containerd-releases.sh" >&2
    continue
  fi
  shims+=(--shim "$go")
  # 2.3 and later speak the bootstrap protocol to their shim.
  [ "$gen" = 2.3 ] && shims+=(--bootstrap)
done
md=target/conformance.md
status=0
target/release/shimtest "${shims[@]}" --json target/conformance.json --markdown "$md" || status=$?
{
  echo "<!-- conformance:begin -->"
  echo "Measured by \`make conformance\` on $(date -u +%Y-%m-%d) ($(uname -r), $(runc --version | head -1)):"
  echo "each scenario against each shim, launched as containerd launches it."
  echo
  cat "$md"
  echo "<!-- conformance:end -->"
} > target/conformance.block
python3 - <<'PY'
import re
readme = open("README.md").read()
block = open("target/conformance.block").read().rstrip("\n")
new, n = re.subn(r"<!-- conformance:begin -->.*?<!-- conformance:end -->", lambda m: block, readme, flags=re.S)
if n != 1:
    raise SystemExit("README.md has no conformance markers")
open("README.md", "w").write(new)
PY
echo "README.md updated from $md"
exit $status
