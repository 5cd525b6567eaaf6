#!/bin/sh
# Installs the Debian packages stripemover builds and tests with. Idempotent; needs root
# (or sudo). Nothing else is downloaded: npm packages come from `npm ci`.
set -e
pkgs="g++ make python3 cmake pkg-config libxxhash-dev xxhash attr acl rsync clang clang-format libclang-rt-14-dev time rclone fuse3 libfuse3-dev xfsprogs e2fsprogs"
missing=$(dpkg-query -W -f='${Status} ${Package}\n' $pkgs 2>/dev/null | awk '$3 == "installed" {print $4}' | sort >/tmp/.sm-have; for p in $pkgs; do grep -qx "$p" /tmp/.sm-have || echo "$p"; done)
rm -f /tmp/.sm-have
[ -z "$missing" ] && exit 0
sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
echo "stripemover setup: installing $missing"
$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
