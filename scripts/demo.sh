#!/bin/sh
# The built-in demo: makes a 256 MiB file with a hole in the middle and hashes it with
# stripemover (O_DIRECT, sparse-aware) and with xxhsum; the two digests must agree.
set -e
cd "$(dirname "$0")/.."
dir=${STRIPEMOVER_DEMO_DIR:-/var/tmp/stripemover-demo}
mkdir -p "$dir"
f="$dir/sample.bin"
if [ ! -f "$f" ]; then
  head -c 64M /dev/urandom >"$f"
  truncate -s 192M "$f"
  head -c 64M /dev/urandom >>"$f"
fi
echo "stripemover hash --direct --sparse:"
ours=$(node bin/stripemover.js hash --direct --sparse "$f")
echo "  $ours"
echo "xxhsum -H1:"
theirs=$(xxhsum -H1 "$f" 2>/dev/null)
echo "  $theirs"
[ "$(echo "$ours" | awk '{print $1}')" = "$(echo "$theirs" | awk '{print $1}')" ] && echo "digests agree" || { echo "DIGESTS DIFFER" >&2; exit 1; }
