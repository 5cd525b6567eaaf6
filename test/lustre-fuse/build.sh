#!/bin/sh
# Builds the ostfs test file system: sh test/lustre-fuse/build.sh [OUTDIR]
# OUTDIR defaults to <repo>/build/test-double; rebuilds only when a source is newer than the binary.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${1:-$repo/build/test-double}
bin=$out/ostfs
need=0
if [ ! -x "$bin" ]; then need=1; fi
for src in "$here/ostfs.c" "$repo/test/lustre-double/layout_text.h" "$here/build.sh"; do
  if [ "$src" -nt "$bin" ]; then need=1; fi
done
if [ "$need" = 0 ]; then
  exit 0
fi
mkdir -p "$out"
# shellcheck disable=SC2046 # pkg-config prints several words
${CC:-cc} -std=c11 -O2 -g -Wall -Wextra -Werror -I"$repo/test/lustre-double" "$here/ostfs.c" \
  -o "$bin.tmp.$$" $(pkg-config --cflags --libs fuse3)
mv -f "$bin.tmp.$$" "$bin"
echo "built $bin"
