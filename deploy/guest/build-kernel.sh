#!/usr/bin/env bash
# Builds the hcnode test guest's Linux kernel from Debian's linux-source-6.1:
# `make tinyconfig` + kernel.fragment + `make olddefconfig`, everything built in.
#
# Usage: build-kernel.sh [--pvm] [--pvh] [--out DIR] [--force] [--jobs N]
#   --pvm      also apply pvm-guest.patch (needed only on PVM hosts, see kernel.sh)
#   --pvh      print the path of vmlinux (stripped ELF with the PVH note) instead of bzImage
#   --out DIR  cache root (default ${HCNODE_CACHE_DIR:-$HOME/.cache/hcnode}/guest)
#   --force    rebuild even if cached          --jobs N  make -j (default: nproc)
# Output: DIR/kernel-<hash>/{bzImage,vmlinux,config,build.log}, where <hash> covers this script,
# kernel.fragment's settings (not its comments), pvm-guest.patch (with --pvm), the linux-source-6.1 package version and the
# compiler version. A cached build is reused. The last line of stdout is the kernel's path.
# Takes ~6-7 min on 2 cores (run it under `nice -n 19` on a shared machine).
# Exit status: 0 the kernel's path is printed; 3 nothing was built because packages it needs
# are missing (an absent component: tests skip on it, or fail under CI=true); 1 anything else,
# a build that fails included.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
out="${HCNODE_CACHE_DIR:-$HOME/.cache/hcnode}/guest"
pvm=0 pvh=0 force=0 jobs=$(nproc)

die() { echo "build-kernel: error: $*" >&2; exit 1; }
log() { echo "build-kernel: $*" >&2; }

while [ $# -gt 0 ]; do
	case "$1" in
	--pvm) pvm=1 ;;
	--pvh) pvh=1 ;;
	--out) out=${2:?--out needs a directory}; shift ;;
	--force) force=1 ;;
	--jobs) jobs=${2:?}; shift ;;
	-h|--help) awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$0"; exit 0 ;;
	*) die "unknown argument: $1 (see --help)" ;;
	esac
	shift
done

pkg_version() { dpkg-query -W -f='${db:Status-Abbrev}|${Version}' "$1" 2>/dev/null | awk -F'|' '$1 ~ /^ii/ {print $2}'; }
need="linux-source-6.1 build-essential bc flex bison libelf-dev libssl-dev xz-utils"
missing=
for p in $need; do [ -n "$(pkg_version "$p")" ] || missing="$missing $p"; done
if [ -n "$missing" ]; then
	echo "build-kernel: error: missing package(s):$missing -- run $repo/deploy/install-deps.sh (or: apt-get install$missing)" >&2
	exit 3
fi
tarball=$(ls -1 /usr/src/linux-source-6.1.tar.xz 2>/dev/null || true)
[ -n "$tarball" ] || die "/usr/src/linux-source-6.1.tar.xz missing although linux-source-6.1 is installed"

inputs() {
	echo "format=1 pvm=$pvm"
	printf 'build-kernel.sh %s\n' "$(sha256sum <"$here/build-kernel.sh" | cut -d' ' -f1)"
	# the fragment's settings only: comments and blank lines do not force a rebuild
	printf 'kernel.fragment %s\n' "$(grep -Ev '^[[:space:]]*(#|$)' "$here/kernel.fragment" | sha256sum | cut -d' ' -f1)"
	[ "$pvm" = 1 ] && printf 'pvm-guest.patch %s\n' "$(sha256sum <"$here/pvm-guest.patch" | cut -d' ' -f1)"
	echo "linux-source-6.1=$(pkg_version linux-source-6.1) cc=$(gcc -dumpfullversion 2>/dev/null || gcc -dumpversion)"
}
hash=$(inputs | sha256sum | cut -c1-16)
dest="$out/kernel-$hash"
name=bzImage
[ "$pvh" = 1 ] && name=vmlinux

mkdir -p "$out"
exec 9>"$out/.build-kernel.lock"
flock 9

if [ "$force" = 0 ] && [ -s "$dest/bzImage" ] && [ -s "$dest/vmlinux" ]; then
	log "cached: $dest"
	echo "$dest/$name"
	exit 0
fi

work=$(mktemp -d "$out/.kbuild.XXXXXX")
trap 'rm -rf "$work"' EXIT
log "building in $work (log: $work/build.log), ~6-7 min on 2 cores"
tar -C "$work" -xf "$tarball"
src="$work/linux-source-6.1"
cd "$src"
if [ "$pvm" = 1 ]; then
	patch -p1 -s <"$here/pvm-guest.patch" || die "pvm-guest.patch does not apply to $(pkg_version linux-source-6.1)"
fi
{
	make -s ARCH=x86_64 tinyconfig
	scripts/kconfig/merge_config.sh -m -O . .config "$here/kernel.fragment"
	make -s ARCH=x86_64 olddefconfig
} >"$work/build.log" 2>&1 || { tail -n 30 "$work/build.log" >&2; die "configuration failed"; }

# Every option the fragment asks for must have survived olddefconfig (dependencies).
bad=
while IFS= read -r l; do
	case "$l" in CONFIG_*=*) ;; *) continue ;; esac
	opt=${l%%=*} val=${l#*=}
	if [ "$val" = n ]; then
		grep -q "^$opt=" .config && bad="$bad $opt(want n)"
	else
		grep -qxF "$l" .config || bad="$bad $opt(want $val, got $(grep "^$opt=" .config | cut -d= -f2- || echo unset))"
	fi
done <"$here/kernel.fragment"
[ -z "$bad" ] || log "warning: options not as in kernel.fragment:$bad"

# A line of progress every 30 s (the build is silent for minutes): elapsed time and objects so far.
started=$SECONDS
make -s ARCH=x86_64 -j"$jobs" bzImage vmlinux >>"$work/build.log" 2>&1 &
make_pid=$!
while kill -0 "$make_pid" 2>/dev/null; do
	for _ in $(seq 60); do kill -0 "$make_pid" 2>/dev/null && sleep 0.5; done
	kill -0 "$make_pid" 2>/dev/null || break
	log "still building the guest kernel: $((SECONDS - started)) s, $(find . -name '*.o' | wc -l) objects (~6-7 min in all on 2 cores)"
done
wait "$make_pid" || {
	tail -n 40 "$work/build.log" >&2
	die "kernel build failed (full log above is the tail of $work/build.log)"
}
log "kernel compiled in $((SECONDS - started)) s"
stage="$out/.kernel-$hash.tmp.$$"
rm -rf "$stage"
mkdir -p "$stage"
cp arch/x86/boot/bzImage "$stage/bzImage"
strip -o "$stage/vmlinux" vmlinux
cp .config "$stage/config"
cp "$work/build.log" "$stage/build.log"
inputs >"$stage/inputs"
rm -rf "$dest"
mv "$stage" "$dest"
log "built $dest ($(make -s kernelrelease))"
echo "$dest/$name"
