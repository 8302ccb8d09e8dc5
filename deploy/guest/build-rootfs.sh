#!/usr/bin/env bash
# Builds the hcnode test guest's root filesystem: a raw ext4 image with busybox (static),
# fio (Debian's dynamically linked binary plus every library it needs), a SysV-shm stand-in
# for kernels without CONFIG_SYSVIPC, the fio job files and /sbin/init (deploy/guest/init).
#
# Usage: build-rootfs.sh [--out DIR] [--size-mib N] [--fio-libs slim|full] [--force]
#   --out DIR      where the image goes (default ${HCNODE_CACHE_DIR:-$HOME/.cache/hcnode}/guest)
#   --size-mib N   image size in MiB (default 64; 128 is enough for --fio-libs full)
#   --fio-libs     slim (default): fio's engine libraries that cannot work in this guest
#                  (rbd, rados, gfapi, nbd, rdma, pmem) are replaced by stubs with the same
#                  soname and symbol versions that abort if called; every other library is the
#                  host's. full: copy every library ldd lists (~85 MB; fio then needs ~110 s
#                  more to start in a PVM guest, where each page fault is emulated)
#   --force        rebuild even if the cached image exists
# The image is rootfs-<hash>.ext4, with a stable symlink rootfs.ext4 beside it; <hash> covers
# this script, init, the fio jobs, shmshim.c, the size, the library mode, the busybox-static and fio package
# versions and the identity (path, size, mtime) of every host file copied in. A cached image
# is reused when the hash matches. The last line of stdout is the image's path.
# No loop mounts: mkfs.ext4 -d populates the image from a staging directory. As root, device
# nodes /dev/console, /dev/null and /dev/ttyS0 are created too (devtmpfs replaces them at boot).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=
size_mib=
fio_libs=slim
force=0

die() { echo "build-rootfs: error: $*" >&2; exit 1; }
log() { echo "build-rootfs: $*" >&2; }

while [ $# -gt 0 ]; do
	case "$1" in
	--out) out=${2:?--out needs a directory}; shift 2 ;;
	--out=*) out=${1#*=}; shift ;;
	--size-mib) size_mib=${2:?--size-mib needs a number}; shift 2 ;;
	--size-mib=*) size_mib=${1#*=}; shift ;;
	--fio-libs) fio_libs=${2:?--fio-libs needs slim or full}; shift 2 ;;
	--fio-libs=*) fio_libs=${1#*=}; shift ;;
	--force) force=1; shift ;;
	-h|--help) awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$0"; exit 0 ;;
	*) die "unknown argument: $1 (see --help)" ;;
	esac
done
case "$fio_libs" in slim|full) ;; *) die "--fio-libs is slim or full" ;; esac
if [ -z "$size_mib" ]; then
	if [ "$fio_libs" = full ]; then size_mib=128; else size_mib=64; fi
fi
case "$size_mib" in ''|*[!0-9]*) die "--size-mib must be a whole number of MiB" ;; esac
[ -n "$out" ] || out="${HCNODE_CACHE_DIR:-$HOME/.cache/hcnode}/guest"

# --- required host packages -------------------------------------------------------------
pkg_version() { dpkg-query -W -f='${db:Status-Abbrev}|${Version}' "$1" 2>/dev/null | awk -F'|' '$1 ~ /^ii/ {print $2}'; }
missing=()
for p in busybox-static fio e2fsprogs libc-bin; do
	[ -n "$(pkg_version "$p")" ] || missing+=("$p")
done
command -v cc >/dev/null 2>&1 || missing+=("gcc")
if [ ${#missing[@]} -gt 0 ]; then
	die "missing package(s): ${missing[*]} -- run $repo/deploy/install-deps.sh (or: apt-get install ${missing[*]})"
fi
busybox_bin=/bin/busybox
fio_bin=$(command -v fio || true)
[ -x "$busybox_bin" ] || die "$busybox_bin not found although busybox-static is installed"
[ -n "$fio_bin" ] || die "fio not on PATH although the fio package is installed"
if ldd "$busybox_bin" >/dev/null 2>&1; then
	die "$busybox_bin is dynamically linked: install busybox-static (it replaces busybox)"
fi

# --- what goes into the image ----------------------------------------------------------
# ldd lines: "libx.so.1 => /path/libx.so.1 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)"
libs=$(ldd "$fio_bin" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u)
if ldd "$fio_bin" | grep -q 'not found'; then
	die "fio has unresolved libraries on this host: $(ldd "$fio_bin" | grep 'not found' | tr -s ' \t' ' ')"
fi
[ -n "$libs" ] || die "ldd listed no libraries for $fio_bin"
all_libs=$libs

# slim: fio's direct dependencies outside this set become stubs (stub_libs: "soname path")
keep_re='^(ld-linux-x86-64\.so\.2|libc\.so\.6|libm\.so\.6|libz\.so\.1|libaio\.so\.1|libnuma\.so\.1)$'
stub_libs=
if [ "$fio_libs" = slim ]; then
	libs=
	while read -r soname; do
		path=$(ldd "$fio_bin" | awk -v n="$soname" '$1 == n && $2 == "=>" {print $3}')
		[ -n "$path" ] || die "ldd does not resolve fio's $soname"
		if [[ "$soname" =~ $keep_re ]]; then
			libs="$libs $path $(ldd "$path" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}')"
		else
			stub_libs="$stub_libs $soname:$path"
		fi
	done < <(readelf -d "$fio_bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
	interp_path=$(ldd "$fio_bin" | awk '$1 ~ /^\// {print $1}')
	# shellcheck disable=SC2086  # word lists
	libs=$(printf '%s\n' $libs $interp_path | sort -u)
fi

inputs() {
	echo "format=2 size_mib=$size_mib fio_libs=$fio_libs as_root=$([ "$(id -u)" = 0 ] && echo 1 || echo 0)"
	for f in build-rootfs.sh init shmshim.c; do
		printf '%s %s\n' "$f" "$(sha256sum <"$here/$f" | cut -d' ' -f1)"
	done
	for f in "$here"/fio/*.fio; do
		printf 'fio/%s %s\n' "${f##*/}" "$(sha256sum <"$f" | cut -d' ' -f1)"
	done
	echo "busybox-static=$(pkg_version busybox-static) fio=$(pkg_version fio) cc=$(cc -dumpfullversion 2>/dev/null || cc -dumpversion)"
	for f in "$busybox_bin" "$fio_bin" $all_libs; do
		stat -L -c '%n %s %Y' "$f"
	done
}
hash=$(inputs | sha256sum | cut -c1-16)
img="$out/rootfs-$hash.ext4"
link="$out/rootfs.ext4"

mkdir -p "$out"
exec 9>"$out/.build-rootfs.lock"
flock 9  # one builder at a time per output directory

if [ "$force" = 0 ] && [ -s "$img" ]; then
	log "cached: $img"
	ln -sfn "rootfs-$hash.ext4" "$link.tmp.$$" && mv -Tf "$link.tmp.$$" "$link"
	echo "$img"
	exit 0
fi

stage=$(mktemp -d "$out/.stage.XXXXXX")
tmpimg="$out/.rootfs-$hash.ext4.tmp.$$"
cleanup() { rm -rf "$stage" "$tmpimg"; }
trap cleanup EXIT

log "staging in $stage"
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,lib,lib64,dev,proc,sys,tmp,run,root,mnt,etc/hcnode/fio,lib/hcnode,var/tmp}
chmod 1777 "$stage/tmp" "$stage/var/tmp"

# busybox and its applet links (our init replaces the init/linuxrc applets)
cp "$busybox_bin" "$stage/bin/busybox"
while read -r applet; do
	case "$applet" in sbin/init|linuxrc|bin/busybox) continue ;; esac
	[ -e "$stage/$applet" ] || [ -L "$stage/$applet" ] || ln -s /bin/busybox "$stage/$applet"
done < <("$busybox_bin" --list-full)

# fio, its libraries at the paths ldd resolved them to, and the dynamic loader
cp -L "$fio_bin" "$stage/usr/bin/fio"
for l in $libs; do
	mkdir -p "$stage$(dirname "$l")"
	cp -L "$l" "$stage$l"
done
# Stubs: same soname and symbol versions as the real library, defining exactly the functions
# fio imports from it (fio is linked with BIND_NOW, so all must resolve at start-up); each
# writes "hcnode-guest: <lib>: <function> is not available" and aborts if ever called.
make_stub() {  # soname realpath destpath
	local soname=$1 real=$2 dest=$3 d
	d=$(mktemp -d "$stage/.stub.XXXXXX")
	# fio's undefined dynamic symbols: "name version" ("Base" = unversioned)
	objdump -T "$fio_bin" | awk '$4 == "*UND*" || $3 == "*UND*" {v=$(NF-1); gsub(/[()]/, "", v); print $NF, v}' \
		| sort -u >"$d/undef"
	nm -D --defined-only "$real" | awk '{n=$NF; sub(/@.*/, "", n); print n}' | sort -u >"$d/defined"
	awk 'NR == FNR {def[$1] = 1; next} ($1 in def)' "$d/defined" "$d/undef" >"$d/syms"
	[ -s "$d/syms" ] || die "fio imports nothing from $soname: cannot stub it"
	{
		echo '#include <stdlib.h>'
		echo '#include <unistd.h>'
		echo 'static void fail(const char *f) {'
		echo '	static const char p[] = "hcnode-guest: '"$soname"': ";'
		echo '	size_t n = 0; while (f[n]) n++;'
		echo '	(void)!write(2, p, sizeof p - 1); (void)!write(2, f, n);'
		# shellcheck disable=SC2028  # the \n is C's
		echo '	(void)!write(2, " is not available in this guest\n", 32); abort(); }'
		awk '{printf "void %s(void) { fail(\"%s\"); }\n", $1, $1}' "$d/syms"
	} >"$d/stub.c"
	awk '$2 != "Base" {print $2}' "$d/syms" | sort -u >"$d/versions"
	local vs=()
	if [ -s "$d/versions" ]; then
		awk 'NR == FNR {if ($2 == "Base") base = base " " $1 ";"; else sy[$2] = sy[$2] " " $1 ";"; next}
			{printf "%s {\n  global:%s%s\n", $1, sy[$1], (FNR == 1 ? base : "")
			 if (FNR == 1) print "  local: *;"
			 print "};"}' "$d/syms" "$d/versions" >"$d/version.map"
		# shellcheck disable=SC2054
		vs=(-Wl,--version-script="$d/version.map")
	fi
	mkdir -p "$(dirname "$dest")"
	cc -shared -fPIC -O1 -Wall -Wno-builtin-declaration-mismatch -Wl,-soname,"$soname" "${vs[@]}" \
		-o "$dest" "$d/stub.c" || die "cannot build the stub for $soname"
	rm -rf "$d"
}
for e in $stub_libs; do
	make_stub "${e%%:*}" "${e#*:}" "$stage${e#*:}"
done

# the loader must be where PT_INTERP says
interp=$(readelf -l "$fio_bin" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
[ -n "$interp" ] || die "cannot read fio's program interpreter"
[ -e "$stage$interp" ] || { mkdir -p "$stage$(dirname "$interp")"; cp -L "$interp" "$stage$interp"; }

# SysV shm stand-in for kernels without CONFIG_SYSVIPC (see shmshim.c)
cc -shared -fPIC -O2 -Wall -o "$stage/lib/hcnode/libshmshim.so" "$here/shmshim.c"

# init, jobs, a few /etc files
install -m 0755 "$here/init" "$stage/sbin/init"
ln -s sbin/init "$stage/init"
install -m 0644 "$here"/fio/*.fio "$stage/etc/hcnode/fio/"
echo "root:x:0:0:root:/root:/bin/sh" >"$stage/etc/passwd"
echo "root:x:0:" >"$stage/etc/group"
echo "guest" >"$stage/etc/hostname"
printf '%s\n' /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu/ceph >"$stage/etc/ld.so.conf"
ldconfig -r "$stage" 2>/dev/null || log "ldconfig -r failed (harmless: the loader searches the default paths)"
{
	echo "hash=$hash"
	inputs
} >"$stage/etc/hcnode/rootfs-inputs"

if [ "$(id -u)" = 0 ]; then
	mknod -m 600 "$stage/dev/console" c 5 1
	mknod -m 666 "$stage/dev/null" c 1 3
	mknod -m 660 "$stage/dev/ttyS0" c 4 64
fi

# Prove fio runs from the image's own files (host kernel, image's loader and libraries),
# with the shm stand-in preloaded as in a guest without SysV IPC.
if [ "$(id -u)" = 0 ] && command -v chroot >/dev/null; then
	head -c 4194304 /dev/zero >"$stage/tmp/fio-selftest"
	if ! chroot "$stage" /usr/bin/env LD_PRELOAD=/lib/hcnode/libshmshim.so \
		/usr/bin/fio --name=selftest --filename=/tmp/fio-selftest --ioengine=psync --rw=randread \
		--bs=4k --size=4M --io_size=1M --output-format=terse >"$out/.fio-selftest.$$" 2>&1; then
		cat "$out/.fio-selftest.$$" >&2; rm -f "$out/.fio-selftest.$$"
		die "fio does not run from the staged image (chroot self-test above)"
	fi
	rm -f "$out/.fio-selftest.$$" "$stage/tmp/fio-selftest"
	chroot "$stage" /bin/sh -n /sbin/init || die "init does not parse with the image's busybox sh"
	log "self-test ok: fio and busybox sh run from the staged tree (libraries: $fio_libs)"
else
	log "not root: skipping the chroot self-test of fio"
fi

need_kib=$(du -sk "$stage" | cut -f1)
# ext4 overhead here: journal (4 MiB at this size), inode tables, bitmaps, slack
min_mib=$(( need_kib / 1024 + need_kib / 1024 / 10 + 12 ))
[ "$size_mib" -ge "$min_mib" ] || die "--size-mib $size_mib is too small: contents need about $min_mib MiB"

uuid=$(printf '%s' "$hash" | sha256sum | sed -E 's/^(.{8})(.{4})(.{4})(.{4})(.{12}).*/\1-\2-\3-\4-\5/')
rm -f "$tmpimg"
truncate -s "${size_mib}M" "$tmpimg"
mkfs.ext4 -q -F -L hcnode-root -U "$uuid" -b 4096 -I 256 -N 4096 -m 0 \
	-E lazy_itable_init=0,lazy_journal_init=0,root_owner=0:0 \
	-d "$stage" "$tmpimg" >&2 || die "mkfs.ext4 failed (image size $size_mib MiB, contents $((need_kib / 1024)) MiB)"
mv -f "$tmpimg" "$img"
ln -sfn "rootfs-$hash.ext4" "$link.tmp.$$" && mv -Tf "$link.tmp.$$" "$link"
# keep the three newest images (another checkout may share the cache), drop older ones
ls -1t "$out"/rootfs-*.ext4 2>/dev/null | tail -n +4 | while read -r old; do rm -f "$old"; done
log "built $img ($size_mib MiB, contents $((need_kib / 1024)) MiB)"
echo "$img"
