#!/bin/sh
# Starts and stops an ostfs mount (see README.md).
#   ostfs.sh start BACKING MOUNTPOINT [ostfs options...]
#   ostfs.sh stop BACKING MOUNTPOINT
# The binary is built (if needed) into $OSTFS_BUILD_DIR, default <repo>/build/test-double.
# The daemon logs to BACKING/ostfs.log and its PID is kept in BACKING/ostfs.pid.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${OSTFS_BUILD_DIR:-$repo/build/test-double}

usage() {
  echo "usage: $0 start BACKING MOUNTPOINT [ostfs options...] | stop BACKING MOUNTPOINT" >&2
  exit 2
}

abspath() {
  case $1 in
  /*) printf '%s\n' "$1" ;;
  *) printf '%s/%s\n' "$PWD" "$1" ;;
  esac
}

is_mounted() {
  mountpoint -q "$1" 2>/dev/null && return 0
  awk -v m="$1" '$2 == m { found = 1 } END { exit !found }' /proc/self/mounts
}

# wait_exit PID TENTHS: waits up to TENTHS × 0.1 s for PID to exit; false if it is still alive.
wait_exit() {
  i=0
  while [ "$i" -lt "$2" ] && kill -0 "$1" 2>/dev/null; do
    sleep 0.1
    i=$((i + 1))
  done
  ! kill -0 "$1" 2>/dev/null
}

# The PID in the pid file if that process is alive and is ostfs, else nothing.
live_pid() {
  [ -f "$1" ] || return 0
  p=$(cat "$1" 2>/dev/null || true)
  case $p in '' | *[!0-9]*) return 0 ;; esac
  if kill -0 "$p" 2>/dev/null && [ "$(cat "/proc/$p/comm" 2>/dev/null)" = ostfs ]; then
    echo "$p"
  fi
}

[ $# -ge 3 ] || usage
cmd=$1
backing=$(abspath "$2")
mnt=$(abspath "$3")
shift 3
pidfile=$backing/ostfs.pid
log=$backing/ostfs.log

case $cmd in
start)
  if is_mounted "$mnt"; then
    echo "ostfs.sh: $mnt is already a mount point (stop it first)" >&2
    exit 1
  fi
  mkdir -p "$backing" "$mnt"
  mnt=$(cd "$mnt" && pwd -P)
  if is_mounted "$mnt"; then
    echo "ostfs.sh: $mnt is already a mount point (stop it first)" >&2
    exit 1
  fi
  sh "$here/build.sh" "$out" >/dev/null
  if [ -n "$(live_pid "$pidfile")" ]; then
    echo "ostfs.sh: an ostfs of $backing is already running (PID $(cat "$pidfile"))" >&2
    exit 1
  fi
  : >"$log"
  "$out/ostfs" -f "$@" "$backing" "$mnt" </dev/null >>"$log" 2>&1 &
  pid=$!
  echo "$pid" >"$pidfile"
  i=0
  while [ $i -lt 100 ]; do
    if is_mounted "$mnt"; then
      exit 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      break
    fi
    sleep 0.1
    i=$((i + 1))
  done
  echo "ostfs.sh: ostfs did not mount $mnt; log $log:" >&2
  cat "$log" >&2
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
  exit 1
  ;;
stop)
  rc=0
  if is_mounted "$mnt"; then
    if ! fusermount3 -u "$mnt" 2>/dev/null; then
      echo "ostfs.sh: $mnt is busy; lazy unmount" >&2
      umount -l "$mnt" || fusermount3 -uz "$mnt" || rc=1
    fi
  fi
  pid=$(live_pid "$pidfile")
  if [ -n "$pid" ]; then
    # Unmounted, the daemon exits by itself; give it a moment before asking it to.
    wait_exit "$pid" 20 || kill "$pid" 2>/dev/null || true
    if ! wait_exit "$pid" 100; then
      echo "ostfs.sh: PID $pid did not exit; SIGKILL" >&2
      kill -9 "$pid" 2>/dev/null || true
      rc=1
    fi
  fi
  rm -f "$pidfile"
  exit $rc
  ;;
*)
  usage
  ;;
esac
