#!/usr/bin/env bash
# Installs what nabla needs from Debian's packages (only what is missing),
# then bootstraps, configures and builds it.
#   scripts/setup.sh [--sanitize]   build in build/ and install it into
#                                   .local/ (or build in build-sanitize/ with
#                                   AddressSanitizer + UBSan)
set -euo pipefail
cd "$(dirname "$0")/.."

# openmpi-bin and libopenmpi-dev for data-parallel training (configure
# finds them; --without-mpi builds without, and MPICH works as well);
# graphviz for the README's `nabla graph | dot`, which tests/test_readme.sh runs;
# man-db for `man nabla`, which tests/test_install.sh reads;
# libmicrohttpd-dev for `nabla serve`, and curl, chromium, nodejs and npm to test its page.
packages=(gcc make autoconf automake libtool pkg-config check libcjson-dev
          libpng-dev zlib1g-dev libzip-dev libopenblas-dev valgrind dataset-fashion-mnist
          openmpi-bin libopenmpi-dev graphviz man-db libmicrohttpd-dev curl chromium nodejs npm)

missing=()
for p in "${packages[@]}"; do
    # NodeSource's nodejs carries its own npm, and conflicts with Debian's.
    [ "$p" = npm ] && command -v npm >/dev/null && continue
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# playwright-core, at package-lock.json's version, for tests/test_browser.sh;
# without it that test is skipped, so a failure here does not stop setup.
if [ ! -d tests/browser/node_modules/playwright-core ]; then
    npm ci --prefix tests/browser --no-audit --no-fund --silent >/dev/null 2>&1 ||
        echo "setup: npm could not install playwright-core: tests/test_browser.sh will be skipped"
fi

# The clone's own prefix: installing needs no root, and the README's
# commands then run as written.
build=build
prefix=$PWD/.local
flags=(--prefix="$prefix")
if [ "${1:-}" = "--sanitize" ]; then
    build=build-sanitize
    flags=(--enable-sanitizers)
fi

[ -x configure ] && [ configure -nt configure.ac ] && [ configure -nt Makefile.am ] ||
    autoreconf -fi >/dev/null 2>&1 || autoreconf -fi
mkdir -p "$build"
if [ ! -f "$build/Makefile" ]; then
    (cd "$build" && ../configure -q "${flags[@]}")
fi
make -C "$build" -s -j"$(nproc)" >/dev/null
echo "setup: built in $build/"
# Only into .local/: a build/ configured before with another prefix is
# left for `make install` by hand.
if [ "$build" = build ]; then
    if [ "$(sed -n 's/^prefix = //p' "$build/Makefile")" = "$prefix" ]; then
        make -C "$build" -s install >/dev/null
        echo "setup: installed in .local/ (export PATH=$prefix/bin:\$PATH)"
    else
        echo "setup: $build/ was configured for another prefix: not installed (rm -r $build/ to start over)"
    fi
fi
