#!/usr/bin/env bash
# Native checks, both through native/CMakeLists.txt (which reads native/build.json):
#  1. the C++ core's unit tests (native/test/*.cc) built with ASan + UBSan and run by ctest;
#  2. the liblustreapi test double (test/lustre-double) checked by its own smoke test;
#  3. the addon built the second way, with cmake-js in Debug, then loaded once by Node.
# node-gyp (scripts/build-native.mjs) owns build/; this script never writes there.
#
# Environment: CXX (compiler; default clang++, else g++), ASAN_BUILD_DIR (build-native-asan),
# CMAKEJS_OUT (build-cmake), JOBS (nproc). Extra arguments are passed to the test executable
# as name filters, e.g. scripts/test-native.sh copy_range.
# package.json runs it as `sh scripts/test-native.sh`: carry on in bash whatever the shell.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
jobs=${JOBS:-$(nproc)}
asan_dir=${ASAN_BUILD_DIR:-build-native-asan}
cmakejs_out=${CMAKEJS_OUT:-build-cmake}

step() { printf '\n== %s\n' "$*"; }
die() { printf 'test-native: %s\n' "$*" >&2; exit 1; }
elapsed() { printf '   (%ss)\n' "$(($(date +%s) - $1))"; }

if [[ -n ${CXX:-} ]]; then
  cxx=$CXX
elif command -v clang++ >/dev/null; then
  cxx=clang++
elif command -v g++ >/dev/null; then
  cxx=g++
else
  die "no C++ compiler (clang++ or g++)"
fi
cxx_path=$(command -v "$cxx") || die "compiler not found: $cxx"

# ---- 1. unit tests under the sanitizers --------------------------------------------------------
# A build directory configured with another compiler cannot be switched in place.
if [[ -f $asan_dir/CMakeCache.txt ]]; then
  cached=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$asan_dir/CMakeCache.txt")
  if [[ $(realpath "$cached" 2>/dev/null) != "$(realpath "$cxx_path")" ]]; then
    echo "   $asan_dir was configured with $cached: starting it afresh"
    rm -rf "$asan_dir"
  fi
fi

start=$(date +%s)
step "configure $asan_dir ($cxx_path, SANITIZE=ON, Debug)"
cmake -S native -B "$asan_dir" -DSANITIZE=ON -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER="$cxx_path" >/dev/null
elapsed "$start"

start=$(date +%s)
step "build native_tests"
cmake --build "$asan_dir" --parallel "$jobs"
elapsed "$start"

start=$(date +%s)
step "ctest (ASan: detect_leaks=1, UBSan: halt_on_error=1)"
export ASAN_OPTIONS="detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
if [[ $# -gt 0 ]]; then
  # Filtered run: call the executable directly (ctest runs it without arguments).
  "$asan_dir/native_tests" "$@"
else
  ctest --test-dir "$asan_dir" --output-on-failure
  # ctest shows the output only on failure; the summary is worth seeing either way.
  log=$asan_dir/Testing/Temporary/LastTest.log
  if [[ -f $log ]]; then
    grep -E '^(FAIL|skip) |known bug|build, [0-9]+ ms|^[0-9]+ passed, [0-9]+ failed' "$log" | sed 's/^/   /' || true
  fi
fi
elapsed "$start"

# ---- 2. the liblustreapi test double's own smoke test, under the sanitizers ---------------------
start=$(date +%s)
step "liblustreapi test double: smoke test (ASan + UBSan)"
sh test/lustre-double/build.sh "" asan | tail -1 | sed 's/^/   /'
elapsed "$start"

# ---- 3. the addon through cmake-js ------------------------------------------------------------
[[ $(realpath -m "$cmakejs_out") != "$root/build" ]] || die "CMAKEJS_OUT must not be build/ (node-gyp's)"

# With -d native, cmake-js looks for package.json (and its binary.napi_versions, which would
# select node-api-headers) in native/, finds none, and wants full Node headers: point it at
# this Node's own (distribution packages install them beside the binary) so it never
# downloads them. npm/npx export npm_config_nodedir from .npmrc; a plain shell does not.
if [[ -z ${npm_config_nodedir:-} ]]; then
  prefix=$(node -p "require('path').resolve(process.execPath, '..', '..')")
  if [[ -f $prefix/include/node/node_api.h ]]; then
    export npm_config_nodedir=$prefix
  else
    echo "   warning: no Node headers under $prefix/include/node; cmake-js may try to download them" >&2
  fi
fi

start=$(date +%s)
step "cmake-js build -d native --debug -O $cmakejs_out (headers: ${npm_config_nodedir:-cmake-js cache})"
node node_modules/cmake-js/bin/cmake-js build -d native --debug -O "$cmakejs_out" --parallel "$jobs" --log-level warn
addon=$cmakejs_out/Debug/stripemover.node
[[ -f $addon ]] || die "cmake-js did not produce $addon"
node -e "
  const m = require(require('path').resolve(process.argv[1]));
  for (const k of ['File', 'copyRange', 'hashFile', 'Xxh64']) if (!(k in m)) throw new Error('missing export ' + k);
  console.log('   loaded ' + process.argv[1] + ': ' + Object.keys(m).length + ' exports');
" "$addon"
elapsed "$start"

printf '\ntest-native: all passed\n'
