#!/usr/bin/env bash
# The Debian packages hold what an operator installs: the daemons, the CLI,
# the systemd units, the install guides and the maintainer scripts.
# Usage: deb_contents_test.sh BUILD_DIR
set -euo pipefail
build=$1
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
(cd "$build" && cpack -G DEB -B "$out" >"$out/cpack.log" 2>&1) ||
  { cat "$out/cpack.log"; echo "FAIL: cpack"; exit 1; }
fail=0
expect() { # expect DEB PATH
  if ! dpkg-deb --contents "$1" | awk '{print $6}' | grep -qx "./$2"; then
    echo "FAIL: $(basename "$1") lacks $2"
    fail=1
  fi
}
agent=$(ls "$out"/fabu-agent_*.deb)
coordinator=$(ls "$out"/fabu-coordinator_*.deb)
expect "$agent" usr/bin/fabu-agent
expect "$agent" usr/lib/systemd/system/fabu-agent.service
expect "$agent" usr/share/doc/fabu-agent/install.md
expect "$coordinator" usr/bin/fabu-coordinator
expect "$coordinator" usr/bin/fabu
expect "$coordinator" usr/lib/systemd/system/fabu-coordinator.service
expect "$coordinator" usr/share/doc/fabu-coordinator/install.md
for deb in "$agent" "$coordinator"; do
  dpkg-deb --ctrl-tarfile "$deb" | tar -t | grep -qx './postinst' ||
    { echo "FAIL: $(basename "$deb") has no postinst"; fail=1; }
  dpkg-deb --field "$deb" Depends | grep -q 'libc6' ||
    { echo "FAIL: $(basename "$deb") declares no library dependencies"; fail=1; }
done
if dpkg-deb --contents "$agent" | grep -q 'fabu-coordinator'; then
  echo "FAIL: the agent package carries coordinator files"
  fail=1
fi
((fail == 0)) && echo "deb packages: contents as expected"
exit "$fail"
