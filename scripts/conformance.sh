#!/usr/bin/env bash
# make conformance: shimtest against our shim and containerd's Go shims (1.6 from the
# system, 1.7 and 2.x from ../shared/tools/containerd-releases.sh when unpacked), side
# by side. The matrix goes into README.md between the conformance markers, with the date.
set -euo pipefail
cd "$(dirname "$0")/.."
releases=${RELEASES:-/var/cache/containerd-releases}
shims=(--shim "${SHIM_BIN:-target/release/containerd-shim-skiff-v2}")
[ -x /usr/bin/containerd-shim-runc-v2 ] && shims+=(--shim /usr/bin/containerd-shim-runc-v2)
for gen in trixie sid; do
  go=$releases/$gen/usr/bin/containerd-shim-runc-v2
  if [ -x "$go" ]; then shims+=(--shim "$go"); else echo "no Go shim in $releases/$gen: run ../shared/tools/containerd-releases.sh" >&2; fi
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
