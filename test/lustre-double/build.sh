#!/bin/sh
# Builds the liblustreapi test double.
#
#   sh test/lustre-double/build.sh [OUTDIR] [lib|smoke|asan]
#
#   lib    (default) OUTDIR/liblustreapi.so.1
#   smoke  also OUTDIR/llapi-smoke, then runs it against OUTDIR/liblustreapi.so.1
#   asan   both built with -fsanitize=address,undefined under OUTDIR/asan, then runs the smoke test
#
# OUTDIR defaults to <repo>/build/test-double. CC (default cc) and EXTRA_CFLAGS are honoured.
# Outputs are rebuilt only when a source (or this script) is newer, and replaced atomically so a
# process loading the library never sees a half-written file.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${1:-$repo/build/test-double}
target=${2:-lib}
CC=${CC:-cc}
warn="-std=c11 -Wall -Wextra -Werror"
san=""

case $target in
  lib | smoke) ;;
  asan)
    out=$out/asan
    san="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"
    ;;
  *)
    echo "usage: sh $0 [OUTDIR] [lib|smoke|asan]" >&2
    exit 2
    ;;
esac
mkdir -p "$out"

# stale OUTPUT SOURCE...: true when OUTPUT is missing or older than a source.
stale() {
  o=$1
  shift
  [ -e "$o" ] || return 0
  [ -n "$(find "$@" -newer "$o" 2>/dev/null)" ]
}

lib=$out/liblustreapi.so.1
if stale "$lib" "$here/llapi_double.c" "$here/layout_text.h" "$here/build.sh"; then
  # Hidden by default: only the llapi_* functions marked API are exported.
  # shellcheck disable=SC2086 # word splitting of the flag lists is intended
  $CC $warn -shared -fPIC -O2 -g -fvisibility=hidden $san ${EXTRA_CFLAGS:-} \
    -Wl,-soname,liblustreapi.so.1 -o "$lib.tmp" "$here/llapi_double.c"
  mv -f "$lib.tmp" "$lib"
  echo "built $lib"
fi

# The export list is part of the contract (no changelog calls, nothing but llapi_*).
if command -v nm >/dev/null 2>&1; then
  extra=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TWDBRV]$/ && $3 !~ /^llapi_/ { print $3 }')
  if [ -n "$extra" ]; then
    echo "error: $lib exports non-llapi symbols: $extra" >&2
    exit 1
  fi
fi

[ "$target" = lib ] && exit 0

smoke=$out/llapi-smoke
if stale "$smoke" "$here/smoke.c" "$here/layout_text.h" "$here/build.sh"; then
  # shellcheck disable=SC2086
  $CC $warn -O1 -g -pthread $san ${EXTRA_CFLAGS:-} -o "$smoke.tmp" "$here/smoke.c" -ldl
  mv -f "$smoke.tmp" "$smoke"
  echo "built $smoke"
fi

if [ -n "$san" ]; then
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
    "$smoke" "$lib"
else
  "$smoke" "$lib"
fi
