#!/bin/sh
# clang-format over the C++ sources: `check` (default, for lint and CI) or `fix`.
set -e
cd "$(dirname "$0")/.."
files=$(find native -name '*.cc' -o -name '*.h' | sort)
if [ "${1:-check}" = fix ]; then exec clang-format -i $files; fi
exec clang-format --dry-run --Werror $files
