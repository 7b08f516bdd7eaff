#!/usr/bin/env bash
# Platform build times against the floor, in one run (docs/BENCHMARKS.md,
# "Platform build"):
#
#   floor   a bare mmdebstrap of the node OS's package set (no cache: it
#           downloads every .deb), nothing else
#   cold    foundry platform build examples/cluster.yaml with an empty
#           package cache: node OS, disk, every artifact, config drives,
#           manifest
#   cached  the same build again, reusing the package cache
#
# Then mkosi (Debian's mkosi 14), the tool a user would reach for, asked for
# a bootable disk image: its output is recorded (on this machine it fails,
# since it mounts a vfat ESP and the kernel has no vfat driver).
#
# Usage (root): bench/platform_build.sh [FOUNDRY_BIN]
# Writes below ${BENCH_DIR:-/var/tmp/foundry-bench-platform} and removes it.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
foundry=${1:-$here/build/src/cli/foundry}
work=${BENCH_DIR:-/var/tmp/foundry-bench-platform}
cluster=$here/examples/cluster.yaml
export SOURCE_DATE_EPOCH=1767225600

[ "$(id -u)" -eq 0 ] || { echo "platform_build.sh: run as root" >&2; exit 2; }
rm -rf "$work"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT

now() { date +%s.%N; }
elapsed() { echo "$2 - $1" | bc; }

echo "== cold: foundry platform build, empty package cache"
t0=$(now)
"$foundry" platform build "$cluster" -o "$work/cold" --secrets "$work/secrets" --cache "$work/cache" \
  > "$work/cold.log" 2>&1 || { tail -30 "$work/cold.log"; exit 1; }
cold=$(elapsed "$t0" "$(now)")
grep '^✓' "$work/cold.log"

# The package set the build asked mmdebstrap for, from its manifest.
pkgs=$(python3 -c 'import json,sys; print(",".join(p for p in json.load(open(sys.argv[1]))["inputs"]["packages_requested"]))' \
  "$work/cold/manifest.json")

echo "== cached: the same build again, with the package cache"
t0=$(now)
"$foundry" platform build "$cluster" -o "$work/cached" --secrets "$work/secrets" --cache "$work/cache" \
  > "$work/cached.log" 2>&1 || { tail -30 "$work/cached.log"; exit 1; }
cached=$(elapsed "$t0" "$(now)")
grep '^✓' "$work/cached.log"

echo "== floor: bare mmdebstrap of the same packages, no cache"
t0=$(now)
mmdebstrap --mode=root --variant=apt --include="$pkgs" bookworm "$work/floor" > "$work/floor.log" 2>&1 \
  || { tail -30 "$work/floor.log"; exit 1; }
floor=$(elapsed "$t0" "$(now)")
rm -rf "$work/floor"

same=no
if cmp -s <(python3 -c 'import json,sys; print([(a["path"],a["sha256"]) for a in json.load(open(sys.argv[1]))["artifacts"]])' "$work/cold/manifest.json") \
          <(python3 -c 'import json,sys; print([(a["path"],a["sha256"]) for a in json.load(open(sys.argv[1]))["artifacts"]])' "$work/cached/manifest.json"); then
  same=yes
fi

echo "== mkosi: a bootable Debian disk image"
mkosi_result="mkosi not installed"
if command -v mkosi >/dev/null; then
  mkdir -p "$work/mkosi"
  t0=$(now)
  set +e
  (cd "$work/mkosi" && timeout 1800 mkosi --distribution debian --release bookworm --format gpt_ext4 --bootable \
     --package systemd-sysv,linux-image-amd64 --output "$work/mkosi/image.raw" build) > "$work/mkosi.log" 2>&1
  rc=$?
  set -e
  m=$(elapsed "$t0" "$(now)")
  # The mount that fails is the reason; the traceback after it is not.
  why=$(grep -m1 -iE 'unknown filesystem type|mount:' "$work/mkosi.log" || grep -iE 'error|fail' "$work/mkosi.log" | tail -1)
  mkosi_result="exit $rc after $(printf '%.1f' "$m") s: $why"
  tail -15 "$work/mkosi.log"
fi

# Where the time goes: every stage's own time (the "(12.3 s)" of its ✓
# line) and what no stage accounts for (package checks, checksums, moving
# and removing trees), for the cold and the cached build.
stages() {
  python3 - "$1" "$2" <<'PY'
import re, sys
total = float(sys.argv[2]); rows = []
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    m = re.match(r"^✓ (\S+)\s.*\((\d+\.\d) s\)$", line.rstrip())
    if m: rows.append((m.group(1), float(m.group(2))))
for name, sec in sorted(rows, key=lambda r: -r[1])[:8]:
    print(f"  {name:<22} {sec:7.1f} s")
print(f"  {'(outside any stage)':<22} {total - sum(s for _, s in rows):7.1f} s")
PY
}
echo "== stages, cold"; stages "$work/cold.log" "$cold"
echo "== stages, cached"; stages "$work/cached.log" "$cached"

printf '\n%-34s %8s\n' "what" "seconds"
printf '%-34s %8.1f\n' "floor: bare mmdebstrap (no cache)" "$floor"
printf '%-34s %8.1f  (%.2fx floor)\n' "foundry cold (empty cache)" "$cold" "$(echo "$cold / $floor" | bc -l)"
printf '%-34s %8.1f  (%.2fx floor)\n' "foundry cached" "$cached" "$(echo "$cached / $floor" | bc -l)"
echo "artifacts of cold and cached builds identical: $same"
echo "mkosi $(mkosi --version 2>/dev/null || true): $mkosi_result"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
