#!/usr/bin/env bash
# Builds a minimal initramfs for the Linux test guest: busybox (static) and the same /init as
# the root image (deploy/guest/init), as an UNCOMPRESSED newc cpio. It lets the VMM boot Linux
# to userspace before any disk exists (the VMM issue's Linux test) — uncompressed because on
# PVM hosts the guest kernel's gunzip runs emulated (~70 s, guest-kernel/README.md).
#
#   build-initramfs.sh [--out DIR]     prints the image path as the last line of stdout
#
# Cached in ${HCNODE_CACHE_DIR:-$HOME/.cache/hcnode}/guest/initramfs-<hash>.cpio, rebuilt only
# when this script, /init or the busybox package change.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${HCNODE_CACHE_DIR:-$HOME/.cache/hcnode}/guest
while [[ $# -gt 0 ]]; do
    case $1 in
        --out) out=${2:?}; shift ;;
        -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build-initramfs: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
die() { echo "build-initramfs: error: $*" >&2; exit 1; }
command -v cpio >/dev/null || die "cpio missing: run deploy/install-deps.sh"
dpkg-query -W busybox-static >/dev/null 2>&1 || die "busybox-static missing: run deploy/install-deps.sh"
busybox=/bin/busybox  # from busybox-static: no shared libraries needed in the initramfs

hash=$( { echo v1; sha256sum "$0" "$here/init"; dpkg-query -W busybox-static; } | sha256sum | cut -c1-16)
mkdir -p "$out"
image=$out/initramfs-$hash.cpio
if [[ -s $image ]]; then
    echo "$image"
    exit 0
fi
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,etc/hcnode/fio,root}
cp "$busybox" "$stage/bin/busybox"
for applet in $("$busybox" --list); do
    [[ -e $stage/bin/$applet ]] || ln -s busybox "$stage/bin/$applet"
done
install -m 0755 "$here/init" "$stage/init"
# The kernel opens /dev/console before /init runs; devtmpfs may not be mounted yet.
mknod -m 600 "$stage/dev/console" c 5 1 2>/dev/null || true
mknod -m 666 "$stage/dev/null" c 1 3 2>/dev/null || true
(cd "$stage" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet --owner=0:0) > "$image.tmp"
mv "$image.tmp" "$image"
echo "built $image ($(du -k "$image" | cut -f1) KiB)" >&2
echo "$image"
