#!/usr/bin/env bash
# E2E fixture: the Foundry VM base image, built once and cached.
#
#   tests/e2e/lib/base-image.sh [EXTRA foundry platform base-image OPTIONS...]
#
# Prints the path of a qcow2 base image on stdout (nothing else goes to
# stdout). The image lives in $FOUNDRY_TEST_CACHE/base-image (default
# /var/cache/foundry-test/base-image) with the .debs it was made from in
# apt/ beside it. It is reused while its stamp matches: the sha256 of
# `foundry --version` and of `foundry platform base-image --print-inputs`,
# which lists every input that decides the image (recipe version and the
# text of every file the recipe writes, suite, packages, apt sources, disk
# options). Any change there, or a missing image, rebuilds it. New package
# versions on the mirror alone do not (delete the directory to force that).
#
# Environment:
#   FOUNDRY_TEST_CACHE  cache root (default /var/cache/foundry-test)
#   FOUNDRY_BIN         the foundry binary (default: build/src/cli/foundry
#                       next to this source tree)
#
# Concurrent callers are serialised with flock. The stamp is removed before
# a build and written only after it succeeded (the image itself is replaced
# atomically by foundry), so a failed or interrupted build is never reused.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache_root=${FOUNDRY_TEST_CACHE:-/var/cache/foundry-test}
dir=$cache_root/base-image
foundry=${FOUNDRY_BIN:-$here/../../../build/src/cli/foundry}
image=$dir/base.qcow2
stamp=$dir/stamp

if [ ! -x "$foundry" ]; then
  echo "base-image.sh: no foundry binary at $foundry (build it, or set FOUNDRY_BIN)" >&2
  exit 2
fi
mkdir -p "$dir"

# Everything the image depends on, then its hash.
args=(platform base-image -o "$image" --cache "$dir/apt" "$@")
want=$( { "$foundry" --version; "$foundry" "${args[@]}" --print-inputs; } | sha256sum | cut -d' ' -f1)

exec 9>"$dir/.lock"
flock 9

if [ -f "$image" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "base-image.sh: reusing $image (stamp ${want:0:12})" >&2
  echo "$image"
  exit 0
fi

echo "base-image.sh: building $image (inputs ${want:0:12}; log in $dir/build.log)" >&2
rm -f "$stamp"
start=$(date +%s)
if ! "$foundry" --verbose "${args[@]}" > "$dir/build.log" 2>&1; then
  echo "base-image.sh: build failed; the end of $dir/build.log:" >&2
  tail -n 30 "$dir/build.log" >&2
  exit 1
fi
printf '%s\n' "$want" > "$stamp.tmp"
mv -f "$stamp.tmp" "$stamp"
echo "base-image.sh: built $image in $(( $(date +%s) - start )) s" >&2
echo "$image"
