#!/usr/bin/env bash
# Builds the three .deb packages of BUILD_DIR with CPack into OUT (emptied
# first), for the tests that inspect and install them (CMakeLists.txt here).
# Usage: deb_build.sh BUILD_DIR OUT
set -euo pipefail
build=$1 out=$2
rm -rf "$out"
mkdir -p "$out"
out=$(cd "$out" && pwd)
(cd "$build" && cpack -G DEB -B "$out" >"$out/cpack.log" 2>&1) ||
  { cat "$out/cpack.log"; echo "FAIL: cpack"; exit 1; }
rm -rf "$out/_CPack_Packages"
ls "$out"/*.deb
