#!/bin/bash
# Self-test of ostfs: bash test/lustre-fuse/selftest.sh [--keep] [--no-throttle]
# Mounts ostfs on a temporary directory, exercises it with ordinary tools, checks data, per-OST
# placement (object sizes in BACKING/ost*/) and throttling, stops it. Prints PASS/FAIL lines;
# exits non-zero when anything failed. Needs root (allow_other, trusted.* xattrs, chown).
set -u
here=$(cd "$(dirname "$0")" && pwd)
ctl=$here/ostfs.sh
keep=0
throttle=1
for a in "$@"; do
  case $a in
  --keep) keep=1 ;;
  --no-throttle) throttle=0 ;;
  *) echo "usage: $0 [--keep] [--no-throttle]" >&2; exit 2 ;;
  esac
done

tmp=$(mktemp -d /tmp/ostfs-selftest.XXXXXX)
chmod 755 "$tmp" # other users reach the mount too
B=$tmp/backing
M=$tmp/mnt
R=$tmp/ref
mkdir -p "$R"
NOSTS=4
fails=0
passes=0

pass() { echo "PASS $*"; passes=$((passes + 1)); }
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
check() { # check DESCRIPTION COMMAND...
  local d=$1
  shift
  if "$@"; then pass "$d"; else fail "$d"; fi
}
eq() { # eq DESCRIPTION GOT WANT
  if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: got [$2], want [$3]"; fi
}

cleanup() {
  sh "$ctl" stop "$B" "$M" >/dev/null 2>&1
  if [ $keep = 0 ]; then rm -rf "$tmp"; else echo "kept $tmp"; fi
}
trap cleanup EXIT

start() {
  if sh "$ctl" start "$B" "$M" "$@"; then
    pass "mount (ostfs $*)"
  else
    fail "mount (ostfs $*)"
    exit 1
  fi
}
stop() {
  if sh "$ctl" stop "$B" "$M" && ! mountpoint -q "$M" && [ ! -e "$B/ostfs.pid" ]; then
    pass "unmount"
  else
    fail "unmount"
  fi
}

lov() { getfattr --absolute-names --only-values -n trusted.lov "$1" 2>/dev/null; }
set_lov() { setfattr -n trusted.lov -v "$2" "$1"; }
fsize() { stat -c %s "$1" 2>/dev/null || echo 0; }
objects_of() { # every object of an inode, as ostK/NAME or mdt-data/NAME
  local p
  for p in "$B"/ost*/"$1".* "$B"/mdt-data/"$1".*; do
    [ -e "$p" ] && echo "${p#"$B"/}"
  done
}

# placement FILE [sparse]: each object of FILE's layout holds exactly the bytes that the layout
# maps there (for a sparse file: at most those), and no other object of the inode exists.
placement() {
  local f=$1 sparse=${2:-} ino size text bad=0 c=-1 allowed=" "
  ino=$(stat -c %i "$f")
  size=$(stat -c %s "$f")
  if ! text=$(lov "$f"); then
    if [ -n "$(objects_of "$ino")" ]; then echo "  $f: objects without a layout" >&2; return 1; fi
    return 0
  fi
  local start end pattern ss count flags pool osts
  while read -r start end pattern ss count flags pool osts; do
    if [ "$start" = plain ] || [ "$start" = composite ]; then continue; fi
    c=$((c + 1))
    local endv=$end
    [ "$end" = eof ] && endv=$((1 << 62))
    local top=$((size < endv ? size : endv)) r=0
    [ "$size" -gt "$start" ] && r=$((top - start))
    if [ "$pattern" = 2 ]; then
      local got
      got=$(fsize "$B/mdt-data/$ino.$c")
      allowed+="mdt-data/$ino.$c "
      if [ "$r" -gt 0 ] && [ $((flags & 16)) = 0 ] && [ -z "$sparse" ]; then
        echo "  $f: DoM component $c holds data but is not instantiated" >&2
        bad=1
      fi
      if { [ -z "$sparse" ] && [ "$got" != "$r" ]; } || [ "$got" -gt "$r" ]; then
        echo "  $f: mdt-data/$ino.$c is $got bytes, want $r" >&2
        bad=1
      fi
      continue
    fi
    if [ "$osts" = - ]; then
      if [ $((flags & 16)) != 0 ]; then echo "  $f: component $c flagged but has no OSTs" >&2; bad=1; fi
      if [ "$r" -gt 0 ] && [ -z "$sparse" ]; then
        echo "  $f: component $c holds data but is not instantiated" >&2
        bad=1
      fi
      continue
    fi
    if [ $((flags & 16)) = 0 ]; then echo "  $f: component $c has OSTs but no init flag" >&2; bad=1; fi
    local ol
    IFS=, read -ra ol <<<"$osts"
    if [ "${#ol[@]}" != "$count" ]; then echo "  $f: component $c: ${#ol[@]} OSTs for $count stripes" >&2; bad=1; fi
    local n=${#ol[@]} s
    for ((s = 0; s < n; s++)); do
      local width=$((ss * n)) rem want got
      rem=$((r % width))
      want=$((r / width * ss))
      if [ $rem -gt $((s * ss)) ]; then want=$((want + (rem - s * ss < ss ? rem - s * ss : ss))); fi
      got=$(fsize "$B/ost${ol[s]}/$ino.$c.$s")
      allowed+="ost${ol[s]}/$ino.$c.$s "
      if { [ -z "$sparse" ] && [ "$got" != "$want" ]; } || [ "$got" -gt "$want" ]; then
        echo "  $f: ost${ol[s]}/$ino.$c.$s is $got bytes, want $want" >&2
        bad=1
      fi
    done
  done <<<"$text"
  local o
  for o in $(objects_of "$ino"); do
    case $allowed in *" $o "*) ;; *) echo "  $f: stray object $o" >&2; bad=1 ;; esac
  done
  return $bad
}

# Random reference files, by size.
ref() {
  local p=$R/r$1
  [ -f "$p" ] || head -c "$1" /dev/urandom >"$p"
  echo "$p"
}

# copy_check NAME SIZE [LAYOUT]: cp a reference file of SIZE bytes into the mount (onto an empty
# file with LAYOUT when given), compare, check the placement.
VERIFY=()
LAST=
copy_check() {
  local name="$1 $2" size=$2 layout=${3:-} f="$M/$1 $2" src
  LAST=$f
  src=$(ref "$size")
  if [ -n "$layout" ]; then
    touch "$f" && set_lov "$f" "$layout" || { fail "$name: set layout"; return; }
  fi
  if ! cp "$src" "$f"; then fail "$name: cp"; return; fi
  if cmp -s "$src" "$f" && [ "$(stat -c %s "$f")" = "$size" ]; then pass "$name: $size bytes identical"; else fail "$name: $size bytes differ"; fi
  check "$name: placement" placement "$f"
  VERIFY+=("$f=$src")
}

MiB=1048576
K64=65536

######################################################################################################
echo "== functional tests ($NOSTS OSTs, no throttling) in $tmp"
start --osts $NOSTS --default-stripe-count 1 --default-stripe-size $MiB
eq "mount is fuse.ostfs" "$(awk -v m="$M" '$2 == m { print $1 " " $3 }' /proc/self/mounts)" "ostfs fuse.ostfs"
for d in mdt mdt-data ost0 ost1 ost2 ost3; do
  check "backing has $d/" test -d "$B/$d"
done

# --- default layouts
for size in 0 1 $((MiB - 1)) $MiB $((MiB + 1)) $((5 * MiB + 3)); do
  copy_check "default layout" $size
done
f=$M/def1
cp "$(ref $((MiB + 1)))" "$f"
ino=$(stat -c %i "$f")
eq "default layout: plain, 1 stripe of 1 MiB on OST ino % $NOSTS" "$(lov "$f")" \
  "$(printf 'plain\n0 eof 0 1048576 1 16 - %d\n' $((ino % NOSTS)))"
eq "default layout: object size" "$(fsize "$B/ost$((ino % NOSTS))/$ino.0.0")" $((MiB + 1))
touch "$M/empty"
check "empty file: no trusted.lov" sh -c "! getfattr --absolute-names -n trusted.lov '$M/empty' >/dev/null 2>&1"
check "empty file: trusted.lov not listed" sh -c "! getfattr --absolute-names -d -m - '$M/empty' 2>/dev/null | grep -q lov"
check "file with data: trusted.lov listed" sh -c "getfattr --absolute-names -d -m - '$f' 2>/dev/null | grep -q '^trusted.lov='"
check "hidden xattrs not listed" sh -c "! getfattr --absolute-names -d -m - '$f' 2>/dev/null | grep -q user.ostfs"

# --- 4 stripes of 64 KiB, not instantiated: OSTs consecutive from ino % N on the first write
L4=$(printf 'plain\n0 eof 0 65536 4 0 - -')
for size in 0 1 $((K64 - 1)) $K64 $((K64 + 1)) $((4 * K64 - 1)) $((4 * K64)) $((4 * K64 + 1)) $((12 * K64 + 1)) $((3 * MiB + 12345)); do
  copy_check "4x64K layout" $size "$L4"
done
f=$M/s4
touch "$f" && set_lov "$f" "$L4" && cp "$(ref $((4 * MiB + 7)))" "$f"
ino=$(stat -c %i "$f")
eq "4x64K: OSTs consecutive from ino % N" "$(lov "$f")" \
  "$(printf 'plain\n0 eof 0 65536 4 16 - %d,%d,%d,%d\n' $((ino % 4)) $(((ino + 1) % 4)) $(((ino + 2) % 4)) $(((ino + 3) % 4)))"
for ost in 0 1 2 3; do
  check "4x64K: ost$ost holds one object of the file" test "$(ls "$B/ost$ost" | grep -c "^$ino\.")" = 1
done

# --- explicit OST list
copy_check "OSTs 3,1" $((4 * MiB + 5)) "$(printf 'plain\n0 eof 0 1048576 2 16 - 3,1')"
F31=$LAST
ino=$(stat -c %i "$F31")
eq "OSTs 3,1: stripe 0 on ost3" "$(fsize "$B/ost3/$ino.0.0")" $((2 * MiB + 5))
eq "OSTs 3,1: stripe 1 on ost1" "$(fsize "$B/ost1/$ino.0.1")" $((2 * MiB))

# --- PFL: 1 stripe to 1 MiB, 2 to 8 MiB, 4 to EOF; components instantiated on the first write into them
PFL=$(printf 'composite\n0 1048576 0 1048576 1 0 - -\n1048576 8388608 0 1048576 2 0 - -\n8388608 eof 0 1048576 4 0 - -')
for size in 1 100000 $MiB $((MiB + 1)) $((8 * MiB - 1)) $((8 * MiB)) $((8 * MiB + 1)) $((10 * MiB + 3)); do
  copy_check "PFL" $size "$PFL"
done
f=$M/pfl-small
touch "$f" && set_lov "$f" "$PFL" && cp "$(ref 100000)" "$f"
ino=$(stat -c %i "$f")
eq "PFL, 100000 bytes: only component 0 instantiated" "$(lov "$f")" \
  "$(printf 'composite\n0 1048576 0 1048576 1 16 - %d\n1048576 8388608 0 1048576 2 0 - -\n8388608 eof 0 1048576 4 0 - -\n' $((ino % 4)))"
f=$M/pfl-big
touch "$f" && set_lov "$f" "$PFL" && cp "$(ref $((10 * MiB + 3)))" "$f"
ino=$(stat -c %i "$f")
eq "PFL, 10 MiB: components on OSTs from ino + earlier stripes" "$(lov "$f")" \
  "$(printf 'composite\n0 1048576 0 1048576 1 16 - %d\n1048576 8388608 0 1048576 2 16 - %d,%d\n8388608 eof 0 1048576 4 16 - %d,%d,%d,%d\n' \
    $((ino % 4)) $(((ino + 1) % 4)) $(((ino + 2) % 4)) $(((ino + 3) % 4)) $(((ino + 4) % 4)) $(((ino + 5) % 4)) $(((ino + 6) % 4)))"

# --- overstriping: 8 stripes on 4 OSTs, and 3 stripes all on OST 2
OS8=$(printf 'plain\n0 eof 4 65536 8 0 - -')
for size in 1 $((8 * K64 - 1)) $((8 * K64 + 1)) $((MiB + 100)); do
  copy_check "overstriping 8 on 4" $size "$OS8"
done
ino=$(stat -c %i "$LAST")
for ost in 0 1 2 3; do
  eq "overstriping 8 on 4: ost$ost holds 2 objects" "$(ls "$B/ost$ost" | grep -c "^$ino\.")" 2
done
copy_check "overstriping 2,2,2" $((3 * MiB + 1)) "$(printf 'composite\n0 eof 4 1048576 3 16 - 2,2,2')"
ino=$(stat -c %i "$LAST")
eq "overstriping 2,2,2: all 3 objects on ost2" "$(ls "$B/ost2" | grep -c "^$ino\.0\.")" 3

# --- data on MDT
DOM=$(printf 'composite\n0 131072 2 131072 0 0 - -\n131072 eof 0 1048576 2 0 - -')
for size in 1 1000 131072 131073 $((2 * MiB + 7)); do
  copy_check "DoM" $size "$DOM"
done
FDOM=$LAST
ino=$(stat -c %i "$FDOM")
eq "DoM: first 128 KiB in mdt-data" "$(fsize "$B/mdt-data/$ino.0")" 131072

# --- sparse files: truncate + dd seek
f=$M/sparse
rf=$R/sparse
truncate -s $((50 * MiB)) "$f"
truncate -s $((50 * MiB)) "$rf"
check "sparse: truncated file without layout reads zeros" cmp -s "$rf" "$f"
check "sparse: no layout, no objects before a write" sh -c "! getfattr --absolute-names -n trusted.lov '$f' >/dev/null 2>&1"
head -c $MiB /dev/urandom >"$R/chunk"
dd if="$R/chunk" of="$f" bs=$MiB seek=20 conv=notrunc status=none
dd if="$R/chunk" of="$rf" bs=$MiB seek=20 conv=notrunc status=none
check "sparse: dd seek=20M into 50M" cmp -s "$rf" "$f"
check "sparse: placement" placement "$f" sparse
sleep 1.2 # the kernel caches attributes for 1 s
blocks=$(stat -c %b "$f")
check "sparse: st_blocks $blocks counts only the written MiB" test "$blocks" -ge 2048 -a "$blocks" -le 4096
truncate -s $((20 * MiB + 1000)) "$f"
truncate -s $((20 * MiB + 1000)) "$rf"
check "sparse: shrink to 20M+1000" cmp -s "$rf" "$f"
ino=$(stat -c %i "$f")
eq "sparse: shrink cut the object" "$(fsize "$B/ost$((ino % 4))/$ino.0.0")" $((20 * MiB + 1000))
truncate -s $((30 * MiB)) "$f"
truncate -s $((30 * MiB)) "$rf"
check "sparse: grow to 30M reads zeros past the old end" cmp -s "$rf" "$f"
f=$M/sparse4
rf=$R/sparse4
touch "$f" && set_lov "$f" "$L4"
truncate -s $MiB "$f" "$rf"
for seek in 300 777; do
  dd if="$R/chunk" of="$f" bs=1000 seek=$seek count=3 conv=notrunc status=none
  dd if="$R/chunk" of="$rf" bs=1000 seek=$seek count=3 conv=notrunc status=none
done
check "sparse 4x64K: writes into holes" cmp -s "$rf" "$f"
check "sparse 4x64K: placement" placement "$f" sparse
f=$M/sparse-pfl
rf=$R/sparse-pfl
touch "$f" && set_lov "$f" "$PFL"
dd if="$R/chunk" of="$f" bs=$MiB seek=9 status=none
dd if="$R/chunk" of="$rf" bs=$MiB seek=9 status=none
check "sparse PFL: write at 9 MiB" cmp -s "$rf" "$f"
check "sparse PFL: only the last component instantiated" sh -c "getfattr --absolute-names --only-values -n trusted.lov '$f' | awk 'NR == 2 || NR == 3 { if (\$8 != \"-\") exit 1 } NR == 4 { if (\$8 == \"-\") exit 1 }'"
check "sparse PFL: placement" placement "$f" sparse
f=$M/sparse-dd
rf=$R/sparse-dd
dd if="$R/chunk" of="$f" bs=4096 seek=1000 count=3 status=none
dd if="$R/chunk" of="$rf" bs=4096 seek=1000 count=3 status=none
check "sparse: dd seek on a new file" cmp -s "$rf" "$f"

# --- the end of a layout that does not reach EOF
f=$M/short-layout
touch "$f" && set_lov "$f" "$(printf 'composite\n0 1048576 0 1048576 1 0 - -\n1048576 2097152 0 1048576 1 0 - -')"
out=$(dd if=/dev/zero of="$f" bs=$MiB count=3 status=none 2>&1)
check "write past the last component fails (EFBIG)" grep -q 'File too large' <<<"$out"
eq "write past the last component: size" "$(stat -c %s "$f")" $((2 * MiB))

# --- layout rules
f=$M/busy
cp "$(ref 1000)" "$f"
out=$(set_lov "$f" "$L4" 2>&1)
check "set layout on a file with data: EBUSY" grep -q 'busy' <<<"$out"
touch "$M/v"
for bad in "plain\n0 eof 0 1048576 5 0 - -" "plain\n0 eof 0 1048576 1 16 - 4" "plain\n0 eof 0 1048576 2 16 - 1,1" \
  "composite\n0 1048576 0 1048576 1 0 - -\n2097152 eof 0 1048576 1 0 - -" \
  "plain\n5 eof 0 1048576 1 0 - -" "plain\n0 eof 7 1048576 1 0 - -" "composite\n0 eof 0 1048576 1 0 - -\n0 eof 0 1 1 0 - -" \
  "striped\n0 eof 0 1 1 0 - -" "plain\n0 eof 0 1048576 2 16 - 1" "plain\n0 eof 4 1048576 300 0 - -" \
  "composite\n0 1048576 0 1048576 1 0 - -\n1048576 eof 2 1048576 0 0 - -"; do
  out=$(set_lov "$M/v" "$(printf "$bad")" 2>&1)
  check "invalid layout refused (EINVAL): $(printf "$bad" | tr '\n' '|')" grep -q 'Invalid argument' <<<"$out"
done
check "valid layout after refusals" set_lov "$M/v" "$(printf 'plain\n0 eof 4 1048576 6 0 - -')"
check "layout may be replaced while the file is empty" set_lov "$M/v" "$(printf 'plain\n0 eof 0 65536 0 0 - -')"
eq "stripe count 0 means the default" "$(lov "$M/v")" "$(printf 'plain\n0 eof 0 65536 1 0 - -\n')"
check "stripe count -1 means all OSTs" set_lov "$M/v" "$(printf 'plain\n0 eof 0 65536 -1 0 - -')"
eq "stripe count -1 stored as $NOSTS" "$(lov "$M/v" | awk 'NR == 2 { print $5 }')" $NOSTS
check "remove trusted.lov of an empty file" setfattr -x trusted.lov "$M/v"
check "removed trusted.lov is gone" sh -c "! getfattr --absolute-names -n trusted.lov '$M/v' >/dev/null 2>&1"
out=$(setfattr -n user.ostfs.lov -v x "$M/v" 2>&1)
check "the hidden layout xattr cannot be set directly" grep -q 'not permitted' <<<"$out"
check "the hidden layout xattr cannot be read directly" sh -c "! getfattr --absolute-names -n user.ostfs.lov '$f' >/dev/null 2>&1"
mkdir "$M/ldir"
out=$(set_lov "$M/ldir" "$L4" 2>&1)
check "trusted.lov on a directory: not supported" grep -q 'not supported' <<<"$out"

# --- namespace operations
mkdir -p "$M/d/e/f"
check "mkdir -p" test -d "$B/mdt/d/e/f"
check "rmdir" rmdir "$M/d/e/f"
check "rmdir of a non-empty directory fails" sh -c "! rmdir '$M/d' 2>/dev/null"
touch -d "2001-02-03 04:05:06.123456789 UTC" "$M/d/t"
eq "touch -d: ns mtime" "$(TZ=UTC stat -c %y "$M/d/t")" "2001-02-03 04:05:06.123456789 +0000"
touch -a -d "2002-01-01 00:00:00.5 UTC" "$M/d/t"
eq "touch -a leaves mtime (UTIME_OMIT)" "$(TZ=UTC stat -c '%x|%y' "$M/d/t")" "2002-01-01 00:00:00.500000000 +0000|2001-02-03 04:05:06.123456789 +0000"
before=$(date +%s)
touch "$M/d/t"
check "touch: UTIME_NOW" test "$(stat -c %Y "$M/d/t")" -ge "$before"
chmod 640 "$M/d/t"
eq "chmod" "$(stat -c %a "$M/d/t")" 640
eq "chmod in the backing" "$(stat -c %a "$B/mdt/d/t")" 640
chown 1234:5678 "$M/d/t"
eq "chown" "$(stat -c %u:%g "$M/d/t")" 1234:5678
mkfifo "$M/d/fifo"
eq "mkfifo" "$(stat -c %F "$M/d/fifo")" fifo
eq "mkfifo in the backing" "$(stat -c %F "$B/mdt/d/fifo")" fifo
(echo through-the-fifo >"$M/d/fifo" &)
eq "fifo passes data" "$(timeout 5 cat "$M/d/fifo")" through-the-fifo
mknod "$M/d/null" c 1 3
eq "mknod c 1 3" "$(stat -c '%F %t,%T' "$M/d/null")" "character special file 1,3"
ln -s ../def1 "$M/d/sym"
eq "ln -s / readlink" "$(readlink "$M/d/sym")" ../def1
check "symlink is followed" cmp -s "$M/d/sym" "$M/def1"
touch -h -d "2003-03-03 03:03:03 UTC" "$M/d/sym"
eq "touch -h on a symlink" "$(TZ=UTC stat -c %y "$M/d/sym")" "2003-03-03 03:03:03.000000000 +0000"
chown -h 1234:1234 "$M/d/sym"
eq "chown -h on a symlink" "$(stat -c %u:%g "$M/d/sym")" 1234:1234

# hard links share objects; the objects go with the last link
src=$(ref $((3 * MiB + 17)))
f=$M/hl
touch "$f" && set_lov "$f" "$L4" && cp "$src" "$f"
ino=$(stat -c %i "$f")
ln "$f" "$M/d/hl2"
eq "ln: same inode" "$(stat -c %i "$M/d/hl2")" "$ino"
eq "ln: 2 links" "$(stat -c %h "$M/d/hl2")" 2
check "ln: same data" cmp -s "$src" "$M/d/hl2"
eq "ln: same layout" "$(lov "$M/d/hl2")" "$(lov "$f")"
nobj=$(objects_of "$ino" | wc -l)
rm "$f"
eq "rm of one link keeps the objects" "$(objects_of "$ino" | wc -l)" "$nobj"
check "rm of one link: data still there" cmp -s "$src" "$M/d/hl2"
rm "$M/d/hl2"
eq "rm of the last link removes the objects" "$(objects_of "$ino" | wc -l)" 0

# mv
src=$(ref $((2 * MiB + 1)))
cp "$src" "$M/mv1"
ino=$(stat -c %i "$M/mv1")
mv "$M/mv1" "$M/d/e/mv2"
check "mv: data follows" cmp -s "$src" "$M/d/e/mv2"
eq "mv: same inode" "$(stat -c %i "$M/d/e/mv2")" "$ino"
check "mv: placement unchanged" placement "$M/d/e/mv2"
cp "$(ref 12345)" "$M/victim"
vino=$(stat -c %i "$M/victim")
mv "$M/d/e/mv2" "$M/victim"
check "mv over a file: data" cmp -s "$src" "$M/victim"
eq "mv over a file: its objects are gone" "$(objects_of "$vino" | wc -l)" 0
check "mv over a file: the moved file's objects stay" placement "$M/victim"
mv "$M/d/e" "$M/e2"
check "mv of a directory" test -d "$B/mdt/e2" -a ! -e "$B/mdt/d/e"
ln "$M/victim" "$M/victim-link"
cp "$(ref 999)" "$M/other"
mv "$M/other" "$M/victim"
check "mv over a file with another link keeps its objects" cmp -s "$src" "$M/victim-link"
if command -v python3 >/dev/null 2>&1; then
  cp "$(ref 111)" "$M/xa"
  cp "$(ref 222)" "$M/xb"
  out=$(
    python3 - "$M/xa" "$M/xb" <<'EOF'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
AT = -100
def ren(a, b, flags):
    r = libc.renameat2(AT, a.encode(), AT, b.encode(), flags)
    return 0 if r == 0 else ctypes.get_errno()
print(ren(sys.argv[1], sys.argv[2], 1), ren(sys.argv[1], sys.argv[2], 2), ren(sys.argv[1], sys.argv[2], 4))
EOF
  )
  eq "renameat2: NOREPLACE EEXIST, EXCHANGE ok, WHITEOUT refused" "$out" "17 0 22"
  check "renameat2 EXCHANGE swapped the data" sh -c "cmp -s '$(ref 111)' '$M/xb' && cmp -s '$(ref 222)' '$M/xa'"
  check "renameat2 EXCHANGE: placement a" placement "$M/xa"
  check "renameat2 EXCHANGE: placement b" placement "$M/xb"
fi

# unlinked while open: readable until closed, objects gone after
src=$(ref $((MiB + 3)))
cp "$src" "$M/open-rm"
ino=$(stat -c %i "$M/open-rm")
exec 3<"$M/open-rm"
rm "$M/open-rm"
check "unlinked open file: gone from the directory" test ! -e "$M/open-rm"
check "unlinked open file: still readable" cmp -s "$src" /dev/fd/3
exec 3<&-
for _ in 1 2 3 4 5 6 7 8 9 10; do [ -z "$(objects_of "$ino")" ] && break; sleep 0.2; done
eq "unlinked open file: objects removed after close" "$(objects_of "$ino" | wc -l)" 0

# O_TRUNC, append, overwrite in the middle
src=$(ref 300000)
cp "$src" "$M/tr"
cp "$(ref 1000)" "$M/tr"
check "cp onto a longer file truncates (O_TRUNC)" cmp -s "$(ref 1000)" "$M/tr"
check "O_TRUNC: placement" placement "$M/tr"
echo appended >>"$M/tr"
{ cat "$(ref 1000)"; echo appended; } >"$R/app"
check "append" cmp -s "$R/app" "$M/tr"
cp "$src" "$M/mid"
cp "$src" "$R/mid"
printf 'XYZ' | dd of="$M/mid" bs=1 seek=65535 conv=notrunc status=none
printf 'XYZ' | dd of="$R/mid" bs=1 seek=65535 conv=notrunc status=none
check "overwrite across a stripe boundary" cmp -s "$R/mid" "$M/mid"

# xattrs and ACLs pass through
setfattr -n user.color -v blue "$M/def1"
eq "user xattr" "$(getfattr --absolute-names --only-values -n user.color "$M/def1")" blue
eq "user xattr in the backing" "$(getfattr --absolute-names --only-values -n user.color "$B/mdt/def1")" blue
setfattr -x user.color "$M/def1"
check "removexattr" sh -c "! getfattr --absolute-names -n user.color '$M/def1' >/dev/null 2>&1"
if command -v setfacl >/dev/null 2>&1; then
  setfacl -m u:1234:r "$M/def1"
  check "POSIX ACL set and read back" sh -c "getfacl -p '$M/def1' 2>/dev/null | grep -q '^user:1234:r--'"
  check "POSIX ACL stored in the backing" sh -c "getfacl -p '$B/mdt/def1' 2>/dev/null | grep -q '^user:1234:r--'"
fi

# another user: creates files it owns, cannot write others'
mkdir "$M/pub" && chmod 1777 "$M/pub"
setpriv --reuid 1234 --regid 1234 --clear-groups sh -c "echo mine >'$M/pub/u'" 2>/dev/null
eq "file created by uid 1234 is owned by it" "$(stat -c %u:%g "$B/mdt/pub/u" 2>/dev/null)" 1234:1234
check "uid 1234 cannot write a root file (default_permissions)" \
  sh -c "! setpriv --reuid 1234 --regid 1234 --clear-groups sh -c 'echo x >>\"$M/def1\"' 2>/dev/null"
as_user_reads() { setpriv --reuid 1234 --regid 1234 --clear-groups cat "$1" | cmp -s - "$2"; }
check "uid 1234 can read a root file (allow_other)" as_user_reads "$M/def1" "$(ref $((MiB + 1)))"
check "statfs" sh -c "df '$M' >/dev/null"

# stats
st=$(getfattr --absolute-names --only-values -n user.ostfs.stats "$M")
eq "stats: one line per OST and the MDT" "$(echo "$st" | awk '{ print $1 }' | tr '\n' ' ')" "ost0 ost1 ost2 ost3 mdt "
check "stats: 5 numbers per line" sh -c "echo '$st' | awk 'NF != 5 { exit 1 }'"
setfattr -n user.ostfs.stats -v reset "$M"
eq "stats: reset" "$(getfattr --absolute-names --only-values -n user.ostfs.stats "$M" | awk '{ s += $2 + $3 + $4 + $5 } END { print s }')" 0
cat "$F31" >/dev/null
eq "stats: reading the 3,1 file counts on ost3 and ost1" \
  "$(getfattr --absolute-names --only-values -n user.ostfs.stats "$M" | awk '{ printf "%s=%s ", $1, $2 }')" \
  "ost0=0 ost1=$((2 * MiB)) ost2=0 ost3=$((2 * MiB + 5)) mdt=0 "
cat "$FDOM" >/dev/null
check "stats: DoM reads count on the MDT" sh -c "getfattr --absolute-names --only-values -n user.ostfs.stats '$M' | awk '\$1 == \"mdt\" && \$2 == 131072 { f = 1 } END { exit !f }'"
out=$(setfattr -n user.ostfs.stats -v bogus "$M" 2>&1)
check "stats: only 'reset' may be set" grep -q 'Invalid argument' <<<"$out"

eq "config xattr: osts" "$(getfattr --absolute-names --only-values -n user.ostfs.config "$M" | awk '$1 == "osts" { print $2 }')" $NOSTS

# concurrency: 17 writers at once into a pre-sized PFL file (components instantiated under races)
src=$(ref $((16 * MiB + 12345)))
f=$M/par
touch "$f" && set_lov "$f" "$(printf 'composite\n0 1048576 0 65536 2 0 - -\n1048576 8388608 4 131072 6 0 - -\n8388608 eof 0 1048576 4 0 - -')"
truncate -s $((16 * MiB + 12345)) "$f"
for i in $(seq 0 16); do dd if="$src" of="$f" bs=$MiB skip=$i seek=$i count=1 conv=notrunc status=none & done
wait
check "17 parallel writers into one PFL file" cmp -s "$src" "$f"
check "17 parallel writers: placement" placement "$f"
par_read() {
  local pids=() i p rc=0
  for i in $(seq 0 16); do
    cmp -s -i $((i * MiB)):$((i * MiB)) -n $MiB "$src" "$f" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  return $rc
}
check "17 parallel readers" par_read
# many small files at once
mkdir -p "$R/small" "$M/small"
for i in $(seq 1 200); do head -c $((i * 997)) /dev/urandom >"$R/small/f$i"; done
(cd "$R/small" && ls | xargs -P 16 -I{} cp {} "$M/small/{}")
bad=0
for i in $(seq 1 200); do cmp -s "$R/small/f$i" "$M/small/f$i" || bad=1; done
check "200 small files copied 16 at a time" test $bad = 0
inos=$(stat -c %i "$M"/small/*)
(cd "$M/small" && ls | xargs -P 16 rm)
left=0
for ino in $inos; do [ -z "$(objects_of "$ino")" ] || left=$((left + 1)); done
eq "removed 16 at a time: no objects left" $left 0

# request sizes the kernel sends
setfattr -n user.ostfs.stats -v reset "$M"
dd if=/dev/zero of="$M/req" bs=4M count=4 status=none
dd if="$M/req" of=/dev/null bs=4M status=none
reqs=$(getfattr --absolute-names --only-values -n user.ostfs.requests "$M")
echo "  requests for dd bs=4M: $(echo $reqs)"
eq "kernel sends 1 MiB reads" "$(echo "$reqs" | awk '$1 == "read_requests" { print $6 }')" $MiB
eq "kernel sends 1 MiB writes" "$(echo "$reqs" | awk '$1 == "write_requests" { print $6 }')" $MiB

# everything survives a remount
stop
start --osts $NOSTS --default-stripe-count 1 --default-stripe-size $MiB
bad=0
for v in "${VERIFY[@]}"; do
  fpath=${v%%=*}
  [ -e "$fpath" ] || continue # removed by a later test
  cmp -s "${v#*=}" "$fpath" || { echo "  differs after remount: $fpath" >&2; bad=1; }
done
check "remount: ${#VERIFY[@]} files identical" test $bad = 0
eq "remount: layouts kept" "$(lov "$M/pfl-big" | awk 'NR == 4 { print $6 }')" 16
stop

######################################################################################################
if [ $throttle = 1 ]; then
  echo "== throttling: 4 OSTs of 50000000 B/s"
  elapsed() { # elapsed COMMAND...: runs it, prints seconds
    local t0 t1
    t0=$(date +%s.%N)
    "$@"
    t1=$(date +%s.%N)
    echo "$t0 $t1" | awk '{ printf "%.2f", $2 - $1 }'
  }
  within() { awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x >= lo && x <= hi) }'; }
  rd() { dd if="$1" of=/dev/null bs=4M status=none; }
  rd2() { rd "$1" & rd "$2" & wait; }
  rd4() { rd "$1" & rd "$2" & rd "$3" & rd "$4" & wait; }
  wr() { dd if=/dev/zero of="$1" bs=4M count=$(($2 / 4)) status=none; }
  wr2() { wr "$1" 100 & wr "$2" 100 & wait; }
  wr4() { wr "$1" 24 & wr "$2" 24 & wr "$3" 24 & wr "$4" 24 & wait; }
  onost() { touch "$1" && set_lov "$1" "$(printf 'plain\n0 eof 0 1048576 1 16 - %d' "$2")"; }
  qmax() { getfattr --absolute-names --only-values -n user.ostfs.stats "$M" | awk -v o="$1" '$1 == o { print $5 }'; }

  start --osts $NOSTS --ost-bw 50000000 --ost-concurrency 1
  onost "$M/t0" 0 && onost "$M/t1" 1 && onost "$M/t2" 0
  t=$(elapsed wr2 "$M/t0" "$M/t1")
  if within "$t" 1.9 2.9; then pass "write 2 x 100 MiB on 2 OSTs at once: ${t}s (want ~2.1)"; else fail "write 2 x 100 MiB on 2 OSTs: ${t}s (want ~2.1)"; fi
  t=$(elapsed wr "$M/t2" 100)
  if within "$t" 1.9 2.9; then pass "write 100 MiB on 1 OST: ${t}s (want ~2.1)"; else fail "write 100 MiB on 1 OST: ${t}s (want ~2.1)"; fi
  for k in 0 1 2 3; do onost "$M/c$k" 2; done
  setfattr -n user.ostfs.stats -v reset "$M"
  t=$(elapsed rd "$M/t0")
  if within "$t" 1.9 2.9; then pass "read 100 MiB from 1 OST: ${t}s (want ~2.1)"; else fail "read 100 MiB from 1 OST: ${t}s (want ~2.1)"; fi
  t=$(elapsed rd2 "$M/t0" "$M/t1")
  if within "$t" 1.9 2.9; then pass "2 readers on different OSTs: ${t}s (want ~2.1)"; else fail "2 readers on different OSTs: ${t}s (want ~2.1)"; fi
  setfattr -n user.ostfs.stats -v reset "$M"
  t=$(elapsed rd2 "$M/t0" "$M/t2")
  if within "$t" 3.9 5.2; then pass "2 readers on the same OST: ${t}s (want ~4.2)"; else fail "2 readers on the same OST: ${t}s (want ~4.2)"; fi
  eq "2 readers on the same OST: ost0 max_queue" "$(qmax ost0)" 2
  busy=$(getfattr --absolute-names --only-values -n user.ostfs.stats "$M" | awk '$1 == "ost0" { printf "%.2f", $4 / 1e9 }')
  if within "$busy" 3.9 5.2; then pass "ost0 busy ${busy}s"; else fail "ost0 busy ${busy}s (want ~4.2)"; fi
  t=$(elapsed wr4 "$M/c0" "$M/c1" "$M/c2" "$M/c3")
  if within "$t" 1.9 2.9; then pass "4 writers of 24 MiB on one OST, C=1: ${t}s (want ~2.0)"; else fail "4 writers of 24 MiB on one OST, C=1: ${t}s (want ~2.0)"; fi
  # stripemover's way: create with a layout, size it (sparse), write the stripes in parallel
  f=$M/presized
  touch "$f" && set_lov "$f" "$(printf 'plain\n0 eof 0 52428800 2 16 - 2,3')" && truncate -s $((100 * MiB)) "$f"
  pw2() {
    dd if=/dev/zero of="$f" bs=1M count=48 conv=notrunc status=none &
    dd if=/dev/zero of="$f" bs=1M count=48 seek=$((50 * MiB)) oflag=seek_bytes conv=notrunc status=none &
    wait
  }
  t=$(elapsed pw2)
  if grep -q 'own mount' "$B/ostfs.log"; then
    if within "$t" 0.9 1.5; then pass "2 writers into one pre-sized file, 2 OSTs: ${t}s (want ~1.0: parallel direct writes)"; else fail "2 writers into one pre-sized file, 2 OSTs: ${t}s (want ~1.0)"; fi
  else
    echo "  (libfuse mount: writes to one file are serialized; 2 writers into one file: ${t}s)"
  fi
  stop

  echo "== throttling: the same backing, --ost-concurrency 4"
  start --osts $NOSTS --ost-bw 50000000 --ost-concurrency 4
  eq "remount: layout of t1" "$(lov "$M/t1")" "$(printf 'plain\n0 eof 0 1048576 1 16 - 1\n')"
  eq "remount: size of t1" "$(stat -c %s "$M/t1")" $((100 * MiB))
  setfattr -n user.ostfs.stats -v reset "$M"
  t=$(elapsed rd "$M/c0")
  if within "$t" 1.9 2.9; then pass "C=4: 1 reader of 24 MiB gets BW/4: ${t}s (want ~2.0)"; else fail "C=4: 1 reader of 24 MiB: ${t}s (want ~2.0)"; fi
  t=$(elapsed rd4 "$M/c0" "$M/c1" "$M/c2" "$M/c3")
  if within "$t" 1.9 2.9; then pass "C=4: 4 readers of 24 MiB share BW: ${t}s (want ~2.0)"; else fail "C=4: 4 readers of 24 MiB: ${t}s (want ~2.0)"; fi
  eq "C=4: 4 readers: ost2 max_queue" "$(qmax ost2)" 4
  # 16 concurrent requests (4 OSTs x 4 slots) need 16 FUSE threads: 16 files of 12 MiB, 4 per OST
  for k in $(seq 0 15); do onost "$M/m$k" $((k % 4)); done
  w16() { for k in $(seq 0 15); do wr "$M/m$k" 12 & done; wait; }
  r16() { for k in $(seq 0 15); do rd "$M/m$k" & done; wait; }
  t=$(elapsed w16)
  if within "$t" 0.9 1.5; then pass "C=4: 16 writers of 12 MiB on 4 OSTs: ${t}s (want ~1.0)"; else fail "C=4: 16 writers of 12 MiB on 4 OSTs: ${t}s (want ~1.0)"; fi
  t=$(elapsed r16)
  if within "$t" 0.9 1.5; then pass "C=4: 16 readers of 12 MiB on 4 OSTs: ${t}s (want ~1.0)"; else fail "C=4: 16 readers of 12 MiB on 4 OSTs: ${t}s (want ~1.0)"; fi
  stop
fi

echo "== $passes passed, $fails failed"
[ $fails = 0 ]
