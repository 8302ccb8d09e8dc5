#!/usr/bin/env bash
# shellcheck disable=SC2015  # `check && ok ... || bad ...`: ok always succeeds
# Integration test: the real `hcctl` binary against the dev cluster's RBD and Gluster pools.
#   hcctl_image_test.sh HCCTL
# Per pool (rbd, gluster): import a 16 MiB raw file (pattern + zero holes) --golden, info/ls in
# table and -o json, clone, export the clone and compare with the source (data read through the
# clone), rm ordering (the golden image refuses removal while a clone depends on it), flatten,
# resize, du, rm --flatten-children, stdin import / stdout export; snapshots on RBD (and their
# refusal on Gluster). Compressed qcow2 sources (`qemu-img convert -c`, deflate and zstd, as
# cloud images ship) import into both pools and export equal to the raw file they came from;
# on Gluster one is also kept as qcow2 (--keep-qcow2), marked golden and cloned, and the
# clone reads the compressed golden image's data. qcow2 files as qemu-img creates them (they
# end inside a sector) import through their backing file, and are kept, cloned and exported. Then bad input: every error is a non-zero exit with exactly ONE line
# "hcctl: <reason>" on stderr (2 = usage, 1 = operation) and nothing on stdout.
# Needs the dev cluster's environment (deploy/devcluster.sh env). Exit 0 pass, 1 fail, 77 skip
# (CI=true: a missing component fails).
set -uo pipefail
hcctl=${1:?usage: hcctl_image_test.sh HCCTL}
# shellcheck source=tests/integration/skip.sh
source "$(dirname "${BASH_SOURCE[0]}")/skip.sh"
[[ -x $hcctl ]] || { echo "FAIL: $hcctl is not executable"; exit 1; }
[[ -n ${HCNODE_CEPH_CONF:-} && -r ${HCNODE_CEPH_CONF:-} ]] || skip "no dev cluster (HCNODE_CEPH_CONF)"
[[ -n ${HCNODE_GLUSTER_HOST:-} && -n ${HCNODE_GLUSTER_VOLUME:-} ]] || skip "no dev cluster (HCNODE_GLUSTER_HOST)"
command -v qemu-img >/dev/null || skip "qemu-img (qemu-utils) not installed"
PY=/usr/bin/python3
# The pools come from the dev cluster's environment (storage/pool_config.hpp): no config file.
unset HCNODE_STORAGE_CONFIG

work=$(mktemp -d)
tag=it$$-$RANDOM
passed=0 failed=0
created=()  # POOL/NAME, removed at exit (clones before their parents: reverse order)
cleanup() {
    local i
    for ((i = ${#created[@]} - 1; i >= 0; i--)); do
        "$hcctl" image rm --no-progress "${created[i]}" >/dev/null 2>&1 || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

ok() { echo "ok   $1"; passed=$((passed + 1)); }
bad() {
    echo "FAIL $1: $2"
    [[ -s $work/out ]] && sed 's/^/    stdout: /' "$work/out" | head -20
    [[ -s $work/err ]] && sed 's/^/    stderr: /' "$work/err" | head -20
    failed=$((failed + 1))
}
# run ARGS...: hcctl with stdout/stderr captured in $work/out, $work/err; sets $rc.
# The test build's AddressSanitizer notes gfapi's swapcontext once per process on stderr
# ("==PID==WARNING: ASan doesn't fully support makecontext/swapcontext ..."): that line is the
# sanitizer's, not hcctl's, and is dropped before stderr is judged.
run() {
    "$hcctl" "$@" >"$work/out" 2>"$work/err.raw" </dev/null
    rc=$?
    grep -v "^==[0-9]*==WARNING: ASan doesn't fully support makecontext/swapcontext" \
        "$work/err.raw" >"$work/err" || true
}
# expect_ok NAME ARGS...: exit 0.
expect_ok() {
    local name=$1
    shift
    run "$@"
    if [[ $rc -eq 0 ]]; then ok "$name"; return 0; fi
    bad "$name" "hcctl $* exited $rc, want 0"
    return 1
}
# expect_error NAME WANT_RC REGEX ARGS...: exit WANT_RC, nothing on stdout, one stderr line
# "hcctl: ..." matching REGEX.
expect_error() {
    local name=$1 want=$2 re=$3
    shift 3
    run "$@"
    local lines
    lines=$(wc -l <"$work/err")
    if [[ $rc -ne $want ]]; then
        bad "$name" "hcctl $* exited $rc, want $want"
    elif [[ $lines -ne 1 ]]; then
        bad "$name" "hcctl $* wrote $lines lines on stderr, want exactly 1"
    elif ! grep -q '^hcctl: ' "$work/err"; then
        bad "$name" "the error line does not start with 'hcctl: '"
    elif ! grep -Eqi -- "$re" "$work/err"; then
        bad "$name" "the error line does not match /$re/"
    elif [[ -s $work/out ]]; then
        bad "$name" "an error printed something on stdout"
    else
        ok "$name ($(cat "$work/err"))"
    fi
}
# json_check NAME PYTHON_EXPR: evaluates the expression with j = the JSON on $work/out.
json_check() {
    local name=$1 expr=$2 why
    if why=$("$PY" -c "
import json, sys
j = json.load(open(sys.argv[1]))
ok = bool($expr)
print('' if ok else 'false: ' + sys.argv[2] + '; got: ' + json.dumps(j)[:600])
sys.exit(0 if ok else 1)" "$work/out" "$expr" 2>&1); then
        ok "$name"
    else
        bad "$name" "$why"
    fi
}

# A 16 MiB raw source: 4 MiB pattern, 4 MiB zeros, 4 MiB pattern, 4 MiB zeros (sparse import).
src=$work/source.raw
"$PY" - "$src" <<'EOF'
import hashlib, sys
mib = 1 << 20
with open(sys.argv[1], "wb") as f:
    for block in range(16):
        if (block // 4) % 2 == 0:
            f.write(b"".join(hashlib.sha256(b"%d-%d" % (block, i)).digest() for i in range(mib // 32)))
        else:
            f.write(bytes(mib))
EOF
size=$(stat -c %s "$src")

# --- help and usage (no cluster needed) -------------------------------------------------------
for cmd in "" "image" "image clone" "image import" "image snap" "image snap create" "pool ls"; do
    # shellcheck disable=SC2086
    if run $cmd --help && [[ $rc -eq 0 ]] && grep -q '^usage: hcctl' "$work/out"; then
        ok "help: hcctl $cmd --help"
    else
        bad "help: hcctl $cmd --help" "exit $rc or no usage line"
    fi
done

expect_ok "pool ls" pool ls &&
    { grep -q '^NAME ' "$work/out" && grep -Eq '^rbd +rbd ' "$work/out" && grep -Eq '^gluster +gluster ' "$work/out" &&
          ok "pool ls table lists rbd and gluster" || bad "pool ls table" "no header or pool rows"; }
expect_ok "pool ls -o json" pool ls -o json &&
    json_check "pool ls json: rbd and gluster reachable" \
        "{p['name'] for p in j if p['reachable']} >= {'rbd', 'gluster'}"

# --- per pool ---------------------------------------------------------------------------------
for pool in rbd gluster; do
    golden=$pool/$tag-golden
    clone=$pool/$tag-clone
    created+=("$golden" "$clone")
    expect_ok "$pool: import --golden" --no-progress image import "$src" "$golden" --golden || continue
    expect_ok "$pool: info -o json" image info "$golden" -o json &&
        json_check "$pool: golden info" "j['golden'] and j['size'] == $size and j['format'] == 'raw' and j['pool'] == '$pool'"
    if [[ $pool == rbd ]]; then
        json_check "$pool: golden snapshot exists" "any(s['name'] == 'golden' for s in j['snapshots'])"
        json_check "$pool: sparse import (used < size)" "j['used'] < j['size']"
    fi
    expect_ok "$pool: info (table)" image info "$golden" &&
        { grep -Eq '^golden: +yes' "$work/out" && grep -Eq '^size: +16 MiB' "$work/out" &&
              ok "$pool: info table shows golden and 16 MiB" || bad "$pool: info table" "no 'golden: yes' / 'size: 16 MiB'"; }

    expect_ok "$pool: clone" image clone "$golden" "$clone"
    expect_error "$pool: clone onto an existing name" 1 "exist" image clone "$golden" "$clone"
    expect_ok "$pool: clone info -o json" image info "$clone" -o json &&
        json_check "$pool: clone has the golden image as parent" \
            "j['parent'] is not None and j['parent'].split('@')[0] == '$golden' and j['size'] == $size and not j['golden']"
    [[ $pool == gluster ]] && json_check "$pool: clone is a qcow2 overlay" "j['format'] == 'qcow2' and j['backing_chain']"
    expect_ok "$pool: golden lists its clone" image info "$golden" -o json &&
        json_check "$pool: children" "'$clone' in j['children'] or any('$clone' in s['children'] for s in j['snapshots'])"

    expect_ok "$pool: ls -o json" image ls "$pool" -o json &&
        json_check "$pool: ls json has golden and clone" \
            "{'$tag-golden', '$tag-clone'} <= {i['name'] for i in j} and [i for i in j if i['name'] == '$tag-golden'][0]['golden']"
    expect_ok "$pool: ls (table)" image ls "$pool" &&
        { head -1 "$work/out" | grep -Eq '^NAME +SIZE +FORMAT +GOLDEN +PARENT' &&
              grep -Eq "^$tag-clone +16 MiB +(raw|qcow2) +- +$golden" "$work/out" &&
              ok "$pool: ls table columns" || bad "$pool: ls table" "header or clone row not as expected"; }

    expect_ok "$pool: export the clone" --no-progress image export "$clone" "$work/$pool-clone.raw" &&
        { cmp -s "$src" "$work/$pool-clone.raw" && ok "$pool: clone reads the golden data" ||
              bad "$pool: clone data" "exported clone differs from the source"; }

    expect_error "$pool: rm golden refused while a clone depends on it" 1 "$tag-clone" image rm "$golden"
    expect_ok "$pool: flatten" --no-progress image flatten "$clone"
    expect_ok "$pool: flattened clone info" image info "$clone" -o json &&
        json_check "$pool: no parent after flatten" "j['parent'] is None and j['format'] == 'raw'"
    expect_ok "$pool: flattened clone keeps its data" --no-progress image export "$clone" "$work/$pool-flat.raw" &&
        { cmp -s "$src" "$work/$pool-flat.raw" && ok "$pool: flattened data equal" ||
              bad "$pool: flattened data" "differs from the source"; }

    expect_ok "$pool: resize grow" image resize "$clone" --size 32M &&
        expect_ok "$pool: resized info" image info "$clone" -o json &&
        json_check "$pool: size 32 MiB" "j['size'] == 32 << 20"
    expect_error "$pool: shrink refused without --allow-shrink" 1 "shrink" image resize "$clone" --size 16M
    expect_ok "$pool: shrink with --allow-shrink" image resize "$clone" --size 16M --allow-shrink

    expect_ok "$pool: du -o json" image du "$pool" -o json &&
        json_check "$pool: du lists the images" "{'$tag-golden', '$tag-clone'} <= {e['name'] for e in j['images']} and j['total_provisioned'] >= 2 * $size"
    expect_ok "$pool: du one image (table)" image du "$clone" &&
        { grep -q "^$tag-clone " "$work/out" && ok "$pool: du table row" || bad "$pool: du table" "no row for the clone"; }

    expect_ok "$pool: rm flattened clone" image rm "$clone"
    expect_ok "$pool: rm golden once no clone depends on it" image rm "$golden"
    expect_error "$pool: info of a removed image" 1 "exist|not found" image info "$golden"

    # rm --flatten-children: the clone survives its golden image, with the same data.
    golden2=$pool/$tag-golden2
    clone2=$pool/$tag-clone2
    created+=("$golden2" "$clone2")
    # stdin import (raw) with --size, then golden mark as its own command.
    if "$hcctl" image import --no-progress - "$golden2" --size "$size" <"$src" >"$work/out" 2>"$work/err"; then
        ok "$pool: import from stdin"
    else
        bad "$pool: import from stdin" "exit $?"
    fi
    expect_ok "$pool: golden mark" image golden mark "$golden2"
    expect_ok "$pool: clone 2" image clone "$golden2" "$clone2"
    expect_ok "$pool: rm --flatten-children" --no-progress image rm "$golden2" --flatten-children
    if "$hcctl" image export --no-progress "$clone2" - 2>"$work/err" | cmp -s - "$src"; then
        ok "$pool: clone 2 data intact after its golden image was removed (export to stdout)"
    else
        bad "$pool: clone 2 after rm --flatten-children" "exported data differ"
    fi
    expect_ok "$pool: rm clone 2" image rm "$clone2"

    # Snapshots: RBD only.
    snapimg=$pool/$tag-snap
    created+=("$snapimg")
    expect_ok "$pool: create" image create "$snapimg" --size 4M
    if [[ $pool == rbd ]]; then
        expect_ok "$pool: snap create" image snap create "$snapimg@s1"
        expect_ok "$pool: snap ls -o json" image snap ls "$snapimg" -o json &&
            json_check "$pool: snapshot s1 listed" "[s['name'] for s in j] == ['s1'] and j[0]['size'] == 4 << 20"
        expect_ok "$pool: snap rollback" --no-progress image snap rollback "$snapimg@s1"
        expect_ok "$pool: clone of a named snapshot" image clone "$snapimg@s1" "$pool/$tag-snapclone"
        created+=("$pool/$tag-snapclone")
        expect_error "$pool: snap rm refused while cloned" 1 "$tag-snapclone" image snap rm "$snapimg@s1"
        expect_ok "$pool: rm snapshot clone" image rm "$pool/$tag-snapclone"
        expect_ok "$pool: snap rm" image snap rm "$snapimg@s1"
    else
        expect_error "$pool: snapshots refused on file pools" 1 "snapshot|support" image snap create "$snapimg@s1"
        expect_error "$pool: clone of a non-golden image refused" 1 "golden" image clone "$snapimg" "$pool/$tag-x"
    fi
    expect_ok "$pool: rm" image rm "$snapimg"
done

# --- compressed qcow2 sources ---------------------------------------------------------------------
# 8 MiB: compressible clusters (a small alphabet), incompressible ones (QEMU stores those
# uncompressed: the image mixes both) and zeroes.
comp=$work/compressible.raw
"$PY" - "$comp" <<'EOF'
import random, sys
rnd = random.Random(77)
out = bytearray()
for c in range(128):
    kind = c % 4
    if kind in (0, 1):
        out += bytes(rnd.choice(b"cloud image ") for _ in range(65536))
    elif kind == 2:
        out += rnd.randbytes(65536)
    else:
        out += bytes(65536)
open(sys.argv[1], "wb").write(out)
EOF
for ctype in zlib zstd; do
    cimg=$work/cloud-$ctype.qcow2
    if ! qemu-img convert -c -f raw -O qcow2 -o compression_type=$ctype "$comp" "$cimg" >"$work/out" 2>"$work/err"; then
        bad "qemu-img convert -c ($ctype)" "exit $?"
        continue
    fi
    # qemu-img check's statistics line: "..., N% compressed clusters" with N > 0.
    if qemu-img check "$cimg" 2>&1 | grep -Eq '[1-9][0-9.]*% compressed clusters'; then
        ok "qemu-img convert -c wrote compressed clusters ($ctype)"
    else
        bad "compressed source ($ctype)" "qemu-img check reports no compressed clusters"
    fi
    for pool in rbd gluster; do
        cname=$pool/$tag-c$ctype
        created+=("$cname")
        expect_ok "$pool: import of a compressed qcow2 ($ctype)" --no-progress image import "$cimg" "$cname" &&
            expect_ok "$pool: export of the compressed import ($ctype)" --no-progress image export "$cname" "$work/c-$pool-$ctype.raw" &&
            { cmp -s "$comp" "$work/c-$pool-$ctype.raw" && ok "$pool: compressed import ($ctype) reads as the raw file" ||
                  bad "$pool: compressed import ($ctype)" "exported data differ from the raw file"; }
        expect_ok "$pool: rm compressed import ($ctype)" image rm "$cname"
    done
    # Kept as qcow2 on Gluster: the golden image itself is compressed, its clone an overlay.
    kgold=gluster/$tag-k$ctype
    kclone=gluster/$tag-k$ctype-clone
    created+=("$kgold" "$kclone")
    expect_ok "gluster: import --keep-qcow2 --golden of a compressed qcow2 ($ctype)" \
        --no-progress image import "$cimg" "$kgold" --keep-qcow2 --golden &&
        expect_ok "gluster: kept compressed golden info ($ctype)" image info "$kgold" -o json &&
        json_check "gluster: kept as qcow2 ($ctype)" "j['format'] == 'qcow2' and j['golden']" &&
        expect_ok "gluster: clone of the compressed golden ($ctype)" image clone "$kgold" "$kclone" &&
        expect_ok "gluster: export of the clone ($ctype)" --no-progress image export "$kclone" "$work/kc-$ctype.raw" &&
        { cmp -s "$comp" "$work/kc-$ctype.raw" && ok "gluster: clone of a compressed golden ($ctype) reads as the raw file" ||
              bad "gluster: clone of a compressed golden ($ctype)" "exported data differ from the raw file"; }
    expect_ok "gluster: rm clone of the compressed golden ($ctype)" image rm "$kclone"
    expect_ok "gluster: rm compressed golden ($ctype)" image rm "$kgold"
done

# --- qcow2 files as qemu-img creates them: they end inside a sector -----------------------------
# A fresh `qemu-img create` image ends 8 bytes into its L1 table's cluster (196616 bytes); the
# qcow2 spec allows that, and hcctl reads such files as they are: an overlay of the raw source
# imports (as raw) with the data of its backing file, and an empty image kept as qcow2 on
# Gluster (copied verbatim) shows its info, is marked golden and cloned, and the clone exports.
qov=$work/qemu-overlay.qcow2
qempty=$work/qemu-empty.qcow2
if qemu-img create -q -f qcow2 -b "$src" -F raw "$qov" && qemu-img create -q -f qcow2 "$qempty" 16M &&
    (($(stat -c %s "$qov") % 512 != 0 && $(stat -c %s "$qempty") % 512 != 0)); then
    ok "qemu-img create: overlay of $(stat -c %s "$qov") bytes, empty image of $(stat -c %s "$qempty") bytes"
    created+=("rbd/$tag-qov")
    expect_ok "rbd: import of a qemu-img overlay" --no-progress image import "$qov" "rbd/$tag-qov" &&
        expect_ok "rbd: export of the imported overlay" --no-progress image export "rbd/$tag-qov" "$work/qov.raw" &&
        { cmp -s "$src" "$work/qov.raw" && ok "rbd: the imported qemu-img overlay reads as its backing file" ||
              bad "rbd: imported qemu-img overlay" "exported data differ from the source"; }
    expect_ok "rbd: rm imported overlay" image rm "rbd/$tag-qov"
    qgold=gluster/$tag-qempty
    qclone=gluster/$tag-qempty-clone
    created+=("$qgold" "$qclone")
    truncate -s 16M "$work/zero16.raw"
    expect_ok "gluster: import --keep-qcow2 --golden of an empty qemu-img image" \
        --no-progress image import "$qempty" "$qgold" --keep-qcow2 --golden &&
        expect_ok "gluster: info of the kept qemu-img image" image info "$qgold" -o json &&
        json_check "gluster: kept qemu-img image is qcow2 of 16 MiB" "j['format'] == 'qcow2' and j['size'] == 16 << 20 and j['golden']" &&
        expect_ok "gluster: clone of the qemu-img image" image clone "$qgold" "$qclone" &&
        expect_ok "gluster: export of that clone" --no-progress image export "$qclone" "$work/qclone.raw" &&
        { cmp -s "$work/zero16.raw" "$work/qclone.raw" && ok "gluster: clone of the empty qemu-img image reads as zeroes" ||
              bad "gluster: clone of the empty qemu-img image" "exported data are not 16 MiB of zeroes"; }
    expect_ok "gluster: rm clone of the qemu-img image" image rm "$qclone"
    expect_ok "gluster: rm the qemu-img image" image rm "$qgold"
else
    bad "qemu-img create" "failed, or its files are whole sectors (this test needs them not to be)"
fi

# --- killed clones: whatever a SIGKILL leaves, nothing half-made passes for a valid image -------
# hcctl processes killed at a spread of moments (connecting, inside the clone, after it). Then
# every name is either a whole clone of the golden image (ls shows it, info has the parent and
# no "incomplete"), or incomplete (hidden from ls, marked by ls --all and info), or absent; rm
# clears what is there. (Deterministic coverage of the incomplete case: storage_test.cpp.)
for pool in rbd gluster; do
    kgold=$pool/$tag-gk
    created+=("$kgold")
    expect_ok "$pool: golden image for the kill test" image create "$kgold" --size 64M
    expect_ok "$pool: golden mark (kill test)" image golden mark "$kgold"
    delays=(0.05 0.2 0.35 0.5 0.65 0.8 1.0 1.3)
    for i in "${!delays[@]}"; do
        created+=("$pool/$tag-k$i")
        "$hcctl" image clone "$kgold" "$pool/$tag-k$i" >/dev/null 2>&1 </dev/null &
        pid=$!
        sleep "${delays[i]}"
        kill -9 "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    run -o json image ls "$pool"
    cp "$work/out" "$work/ls.json"
    run -o json image ls --all "$pool"
    cp "$work/out" "$work/ls-all.json"
    complete=0 incomplete=0 absent=0 misfits=0
    for i in "${!delays[@]}"; do
        name=$tag-k$i
        run -o json image info "$pool/$name"
        if [[ $rc -ne 0 ]]; then
            if "$PY" -c "import json,sys; sys.exit(any(i['name']==sys.argv[2] for i in json.load(open(sys.argv[1]))))" \
                "$work/ls-all.json" "$name"; then
                absent=$((absent + 1))
            else
                bad "$pool: killed clone $name" "listed by ls --all, but info fails: $(cat "$work/err")"
                misfits=$((misfits + 1))
            fi
            continue
        fi
        # Parent as info reports it: RBD "POOL/GOLDEN@golden", files "POOL/GOLDEN".
        if why=$("$PY" -c '
import json, sys
info = json.load(open(sys.argv[1]))
shown = {i["name"]: i for i in json.load(open(sys.argv[2]))}
every = {i["name"]: i for i in json.load(open(sys.argv[3]))}
name, golden = sys.argv[4], sys.argv[5]
if info.get("incomplete"):
    ok = name not in shown and bool(every.get(name, {}).get("incomplete"))
    print("incomplete" if ok else "incomplete, but listed by ls (or not marked by ls --all)")
else:
    ok = (info.get("parent") or "").split("@")[0] == golden and name in shown
    print("complete" if ok else "not incomplete, but parent %r, listed %s" % (info.get("parent"), name in shown))
sys.exit(0 if ok else 1)' "$work/out" "$work/ls.json" "$work/ls-all.json" "$name" "$kgold"); then
            if [[ $why == complete ]]; then complete=$((complete + 1)); else incomplete=$((incomplete + 1)); fi
        else
            bad "$pool: killed clone $name" "$why"
            misfits=$((misfits + 1))
        fi
        expect_ok "$pool: rm killed clone $name ($why)" image rm "$pool/$name"
    done
    # The summary passes only on what the loop found: every clone classified, none misfit.
    summary="${#delays[@]} killed clones: $complete complete, $incomplete incomplete, $absent absent"
    if ((misfits == 0 && complete + incomplete + absent == ${#delays[@]})); then
        ok "$pool: $summary; none half-made and valid"
    else
        bad "$pool: $summary" "$misfits half-made or misreported (listed above)"
    fi
    # Leftovers a kill may leave besides (file pools: the clone's temporary) go with purge.
    expect_ok "$pool: purge --min-age 0" image purge "$pool" --min-age 0
    expect_ok "$pool: ls --all after purge" -o json image ls --all "$pool" &&
        json_check "$pool: nothing of the killed clones is left" \
            "not [i['name'] for i in j if '$tag-k' in i['name']]"
done
expect_error "purge: bad --min-age" 2 "min-age" image purge rbd --min-age soon

# --- bad input: one line, right exit status -----------------------------------------------------
expect_error "bad image name" 2 "name" image info 'rbd/bad name!'
expect_error "name without pool" 2 "POOL/NAME|pool" image info just-a-name
expect_error "snapshot where none is allowed" 2 "snapshot" image info "rbd/$tag@s1"
expect_error "bad size (not a multiple of 512)" 2 "512" image create "rbd/$tag-bad" --size 1000
expect_error "bad size (junk)" 2 "size" image create "rbd/$tag-bad" --size 12Q
expect_error "missing --size" 2 "size" image create "rbd/$tag-bad"
expect_error "unknown pool" 1 "pool" image info "nosuchpool/$tag"
expect_error "no such image" 1 "exist|not found" image info "rbd/$tag-missing"
expect_error "missing arguments" 2 "missing" image clone "rbd/$tag-golden"
expect_error "extra argument" 2 "unexpected" image info "rbd/$tag" extra
expect_error "unknown command" 2 "unknown command" image frobnicate
expect_error "unknown option" 2 "unknown option" image ls --frob
expect_error "bad output format" 2 "output" -o yaml pool ls
expect_error "no command" 2 "missing command" image
expect_error "missing import source" 1 "no-such-file|exist|No such" --no-progress image import "$work/no-such-file" "rbd/$tag-x"
expect_error "snap create without @SNAP" 2 "SNAP" image snap create "rbd/$tag"
expect_error "clone of a missing image" 1 "exist|not found|golden" image clone "rbd/$tag-nothing" "rbd/$tag-nothing2"

echo "$passed passed, $failed failed"
((failed == 0))
