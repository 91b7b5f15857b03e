#!/bin/sh
# test_install.sh - `make install` into a directory of its own (DESTDIR),
# then what it installed: the files, the man page as man shows it, the tool
# finding an installed model by its bare name, a program linked through
# pkg-config against the installed library, static and shared, and
# `make uninstall` leaving nothing.
#
# Needs top_srcdir, top_builddir, MAKE, CC, PKG_CONFIG and the install
# directories (bindir, libdir, includedir, mandir, pkgdatadir); make check
# sets them all.  Prints one line per failed check and ends with
# "N passed, N failed".

top_srcdir=${top_srcdir:-$(dirname "$0")/..}
top_builddir=${top_builddir:-.}
data=${NABLA_DATA:-/usr/share/datasets/fashion-mnist}
for v in MAKE CC PKG_CONFIG bindir libdir includedir mandir pkgdatadir; do
    eval "value=\${$v:-}"
    if [ -z "$value" ]; then
        echo "test_install: \$$v is not set (run it through make check)" >&2
        exit 99
    fi
done
for tool in man "$PKG_CONFIG"; do
    if ! command -v "$tool" > /dev/null 2>&1; then
        echo "SKIP: no $tool"
        exit 77
    fi
done
if [ ! -d "$data" ]; then
    echo "test_install: no data at $data (install Debian's dataset-fashion-mnist)" >&2
    exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_install.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT INT TERM
dest=$tmp/dest

passed=0
failed=0
pass() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }
# check WHAT COMMAND...: COMMAND succeeds.
check() {
    what=$1
    shift
    if "$@"; then pass; else fail "$what"; fi
}

# The make of make check, not its jobserver (not passed to tests): the
# tree is built already, so install only copies.
if MAKEFLAGS= MFLAGS= $MAKE -C "$top_builddir" install DESTDIR="$dest" > "$tmp/install.log" 2>&1; then
    pass
else
    fail "make install DESTDIR=$dest: $(tail -n 5 "$tmp/install.log")"
    echo "$passed passed, $failed failed"
    exit 1
fi

# ---- the files ------------------------------------------------------------------

# Every model and page of the source tree, so that a new one cannot be left
# out of Makefile.am's lists.
share=$dest$pkgdatadir
for f in "$top_srcdir"/models/*.json "$top_srcdir"/docs/*.md "$top_srcdir"/docs/img/* "$top_srcdir"/README.md; do
    rel=${f#"$top_srcdir"/}
    check "$rel is not installed in $pkgdatadir" test -f "$share/$rel"
done
for f in "$bindir/nabla" "$includedir/nabla.h" "$libdir/libnabla.a" "$libdir/pkgconfig/nabla.pc"; do
    check "$f is not installed" test -f "$dest$f"
done

# ---- the man page -----------------------------------------------------------------

page=$dest$mandir/man1/nabla.1
MANWIDTH=80 LC_ALL=C man --warnings -l "$page" > "$tmp/man" 2> "$tmp/man.err"
check "man -l nabla.1 fails" test $? -eq 0
check "man -l nabla.1 warns: $(head -c 300 "$tmp/man.err")" test ! -s "$tmp/man.err"
for section in NAME SYNOPSIS DESCRIPTION OPTIONS VERBS "EXIT STATUS" ENVIRONMENT FILES; do
    check "the man page has no $section" grep -qx "$section" "$tmp/man"
done
check "the man page does not name $pkgdatadir/models" grep -qF "$pkgdatadir/models" "$tmp/man"
nabla=$top_builddir/tools/nabla
for var in $("$nabla" --help | sed -n 's/^  \(NABLA_[A-Z_]*\) .*/\1/p'); do
    check "the man page's ENVIRONMENT lacks $var" grep -qx "       $var" "$tmp/man"
done
# Each verb a subsection, with each option of its help.
verbs=$(sed -n 's/^VERB(\([a-z]*\),.*/\1/p' "$top_srcdir/tools/verbs.def")
for verb in $verbs; do
    awk -v v="$verb" '/^   [a-z]+$/ {on = $1 == v} on' "$tmp/man" > "$tmp/sub"
    if [ -s "$tmp/sub" ]; then pass; else fail "the man page has no subsection $verb"; continue; fi
    for flag in $("$nabla" "$verb" --help | sed -n 's/^  \(-h, \)\{0,1\}\(--[a-z0-9-]*\).*/\2/p'); do
        check "the man page's $verb lacks $flag" grep -q -- "$flag" "$tmp/sub"
    done
done

# ---- the installed tool -----------------------------------------------------------

# The library from $dest, not one installed elsewhere.
LD_LIBRARY_PATH=$dest$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export LD_LIBRARY_PATH
# DESTDIR moves the models from where the tool looks: NABLA_MODELS says where.
NABLA_MODELS=$share/models "$dest$bindir/nabla" summary lenet > "$tmp/out" 2>&1
check "nabla summary lenet (installed): $(head -c 300 "$tmp/out")" grep -qx "Total params: 106,154" "$tmp/out"
ldd "$dest$bindir/nabla" > "$tmp/ldd" 2>&1
check "the installed nabla does not load $dest$libdir/libnabla: $(grep nabla "$tmp/ldd")" \
    grep -qF "$dest$libdir/libnabla.so" "$tmp/ldd"

# ---- linking against it through pkg-config ----------------------------------------

# nabla.pc moved to $dest, as --define-variable cannot: it would move the
# directories of the packages nabla requires too.
mkdir "$tmp/pc"
sed -e "s|^libdir=.*|libdir=$dest$libdir|" -e "s|^includedir=.*|includedir=$dest$includedir|" \
    "$dest$libdir/pkgconfig/nabla.pc" > "$tmp/pc/nabla.pc"
pc() {
    PKG_CONFIG_PATH=$tmp/pc $PKG_CONFIG "$@" nabla
}
cflags=$(pc --cflags) && libs=$(pc --libs) && static=$(pc --static --libs)
check "pkg-config nabla fails" test $? -eq 0
src=$top_srcdir/examples/train_lenet.c
run_lenet() {
    "$1" --model "$share/models/lenet.json" --data "$data" --limit 256 --epochs 1 > "$tmp/run" 2>&1
    check "$1 fails: $(tail -c 300 "$tmp/run")" test $? -eq 0
}

# Static: Debian ships no libcjson.a, libzip.a nor libmpi.a, so libnabla.a is
# linked in and its dependencies shared; --static must still name each of
# them, or the link fails.  $sanitize: a sanitized libnabla needs its runtime.
static=$(echo " $static " | sed "s| -lnabla | $dest$libdir/libnabla.a |")
# shellcheck disable=SC2086
$CC ${sanitize:-} $cflags -o "$tmp/lenet-static" "$src" $static > "$tmp/cc" 2>&1
check "static link: $CC ... $static: $(head -c 600 "$tmp/cc")" test $? -eq 0
if [ -x "$tmp/lenet-static" ]; then
    ldd "$tmp/lenet-static" > "$tmp/ldd" 2>&1
    if grep -q libnabla "$tmp/ldd"; then fail "the static program loads libnabla.so"; else pass; fi
    run_lenet "$tmp/lenet-static"
fi

# Shared: pkg-config --libs alone.
# shellcheck disable=SC2086
$CC ${sanitize:-} $cflags -o "$tmp/lenet-shared" "$src" $libs > "$tmp/cc" 2>&1
check "shared link: $CC ... $libs: $(head -c 600 "$tmp/cc")" test $? -eq 0
if [ -x "$tmp/lenet-shared" ]; then
    ldd "$tmp/lenet-shared" > "$tmp/ldd" 2>&1
    check "the shared program does not load $dest$libdir/libnabla" grep -qF "$dest$libdir/libnabla.so" "$tmp/ldd"
    run_lenet "$tmp/lenet-shared"
fi

# ---- uninstall ---------------------------------------------------------------------

MAKEFLAGS= MFLAGS= $MAKE -C "$top_builddir" uninstall DESTDIR="$dest" > "$tmp/uninstall.log" 2>&1
check "make uninstall: $(tail -n 5 "$tmp/uninstall.log")" test $? -eq 0
left=$(find "$dest" ! -type d | head -n 5)
check "make uninstall leaves $left" test -z "$left"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
