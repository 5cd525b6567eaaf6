#!/bin/sh
# The built-in demo: makes a tree with the awkward cases (non-UTF-8 and newline names, hard
# links, a 1 GiB sparse file, xattrs, symlinks, a FIFO, 2,000 small files), copies it with
# verification, changes it, syncs it with --delete, and checks the copy against the source
# with tools other than stripemover: diff -r (contents) and rsync --dry-run (metadata).
set -eu
cd "$(dirname "$0")/.."
dir=${STRIPEMOVER_DEMO_DIR:-/var/tmp/stripemover-demo}
src="$dir/src" dst="$dir/dst"
rm -rf "$dir" && mkdir -p "$src/data" "$src/small"
i=0; while [ $i -lt 20 ]; do mkdir -p "$src/small/d$i"; j=0; while [ $j -lt 100 ]; do
  head -c $(( (i * 100 + j) * 37 % 65536 + 1 )) /dev/urandom >"$src/small/d$i/f$j"; j=$((j + 1)); done; i=$((i + 1)); done
head -c 96M /dev/urandom >"$src/data/large.bin"
truncate -s 1G "$src/data/sparse.img" && printf 'data in a hole' | dd of="$src/data/sparse.img" bs=1 seek=500000000 conv=notrunc 2>/dev/null
printf 'bytes' >"$src/$(printf 'caf\351 \377')" && printf 'nl' >"$src/$(printf 'new\nline')"
printf 'shared' >"$src/data/one" && ln "$src/data/one" "$src/data/two"
ln -s data/one "$src/link" && ln -s nowhere "$src/dangling" && mkfifo "$src/fifo"
setfattr -n user.project -v demo "$src/data/one" 2>/dev/null || true

echo "== stripemover copy --verify"
node bin/stripemover.js copy --verify "$src" "$dst"
echo "== change the source, then stripemover sync --delete"
printf 'changed' >"$src/small/d0/f1" && rm "$src/small/d1/f2" && printf 'new' >"$src/data/new"
node bin/stripemover.js sync --delete "$src" "$dst"
echo "== independent checks"
diff -r --no-dereference -x fifo "$src" "$dst" && echo "diff -r: contents identical"
[ -p "$dst/fifo" ] && echo "FIFO kept"
left=$(rsync -ain --dry-run --no-inc-recursive -H -X "$src/" "$dst/" | grep -v '^\.d' || true)
[ -z "$left" ] && echo "rsync -aHX --dry-run: nothing left to do (names, modes, times, links, xattrs all match)" || { echo "$left"; exit 1; }
[ "$(stat -c %i "$dst/data/one")" = "$(stat -c %i "$dst/data/two")" ] && echo "hard link kept"
echo "sparse file: $(du -h --apparent-size "$dst/data/sparse.img" | cut -f1) apparent, $(du -h "$dst/data/sparse.img" | cut -f1) allocated"

echo "== stripemover backup: a full snapshot, a change, an incremental one"
repo="$dir/repo"
node bin/stripemover.js backup --tag demo "$src" -r "$repo"
cp -a "$src" "$dir/as-first-backed-up"
printf 'changed again' >"$src/small/d2/f3" && rm "$src/small/d3/f4" && printf 'added' >"$src/data/added"
node bin/stripemover.js backup --tag demo "$src" -r "$repo"
node bin/stripemover.js snapshots -r "$repo"
first=$(node bin/stripemover.js snapshots -r "$repo" --json | head -1 | sed 's/.*"id":"\([^"]*\)".*/\1/')
echo "== what changed between the two snapshots"
node bin/stripemover.js diff -r "$repo" "$first" latest
echo "== stripemover verify --read-data: every byte in the repository hashed against its manifests"
node bin/stripemover.js verify --read-data -r "$repo"
echo "== restore both snapshots; compare each with the tree as it was (diff -r, not stripemover)"
node bin/stripemover.js restore "$first" "$dir/restored-first" -r "$repo"
diff -r --no-dereference -x fifo "$dir/as-first-backed-up" "$dir/restored-first" && echo "diff -r: the first snapshot restores the tree as it was then"
node bin/stripemover.js restore latest "$dir/restored-latest" -r "$repo"
diff -r --no-dereference -x fifo "$src" "$dir/restored-latest" && echo "diff -r: the latest snapshot restores the source as it is"
echo "space: $(du -sh "$src" | cut -f1) of source; the repository holds two snapshots in $(du -sh "$repo" | cut -f1) (unchanged files are hard links)"
