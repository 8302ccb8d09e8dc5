#!/usr/bin/env bash
# Installs what hcnode needs on Debian 12 (bookworm), from Debian's packages only, and nothing
# that is already there. Idempotent: with everything present it only checks (≈0.3 s).
#
#   deploy/install-deps.sh            # build + tests + dev cluster + guests
#   deploy/install-deps.sh --check    # list what is missing, install nothing (exit 1 if any)
set -euo pipefail

# Grouped by purpose; every name is a bookworm package (see machine-notes.md).
build=(g++ cmake ninja-build pkg-config make git)
libs=(librados-dev librbd-dev libglusterfs-dev libboost-dev libspdlog-dev libfmt-dev catch2
      nlohmann-json3-dev liburing-dev libseccomp-dev libcli11-dev zlib1g-dev libzstd-dev)
cluster=(ceph-mon ceph-osd ceph-mgr ceph-common python3-rados python3-rbd
         glusterfs-server glusterfs-common glusterfs-client)
guests=(qemu-system-x86 qemu-utils qemu-block-extra busybox-static fio e2fsprogs cpio)
tools=(clang libclang-rt-14-dev clang-16 libclang-rt-16-dev procps iproute2 psmisc util-linux coreutils python3 socat)

# Building the Linux guest's own kernel (deploy/guest/build-kernel.sh): whenever kernel.sh would
# build one, i.e. on hosts with hardware KVM, and on PVM hosts (these dev machines, see
# machine-notes.md) unless a ready kernel sits beside the checkout (the workspace's
# ../shared/guest-kernel) or HCNODE_GUEST_KERNEL names one.
kernel_build=(linux-source-6.1 build-essential bc flex bison libelf-dev libssl-dev xz-utils cpio)

all=("${build[@]}" "${libs[@]}" "${cluster[@]}" "${guests[@]}" "${tools[@]}")
if "$(dirname "${BASH_SOURCE[0]}")/guest/kernel.sh" --will-build; then
    all+=("${kernel_build[@]}")
fi

missing=()
for pkg in "${all[@]}"; do
    # "install ok installed" is the only state in which the package is usable.
    if [[ $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null) != "install ok installed" ]]; then
        missing+=("$pkg")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "install-deps: all ${#all[@]} packages present"
    exit 0
fi
if [[ ${1-} == --check ]]; then
    echo "install-deps: missing: ${missing[*]}"
    exit 1
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: missing packages: ${missing[*]}" >&2
    echo "install-deps: run as root (or: sudo apt-get install ${missing[*]})" >&2
    exit 1
fi

echo "install-deps: installing ${#missing[@]} package(s): ${missing[*]}"
t0=$SECONDS
export DEBIAN_FRONTEND=noninteractive
# An apt list older than a day (or none: a fresh machine) is refreshed first.
if [[ -z $(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -1) ]]; then
    apt-get update -qq
fi
if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/hcnode-install-deps.log 2>&1; then
    # A stale list is the usual cause of a failed install: refresh once and retry.
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/hcnode-install-deps.log 2>&1 || {
        tail -30 /tmp/hcnode-install-deps.log >&2
        echo "install-deps: apt-get install failed (full log: /tmp/hcnode-install-deps.log)" >&2
        exit 1
    }
fi
echo "install-deps: done in $((SECONDS - t0)) s"
