#!/usr/bin/env bash
# The Debian packages hold what an operator installs and nothing twice:
# fabu-agent the agent, fabu-coordinator the coordinator, fabu-cli the fabu
# command line; each its unit, guides, manual page, copyright and changelog,
# files owned by root with Debian's modes, its maintainer scripts (POSIX sh,
# set -e), and lintian finds no error. A lintian warning must be one
# docs/packages.md explains.
# Usage: deb_contents_test.sh SOURCE_DIR DEB_DIR (deb_build.sh made DEB_DIR)
set -euo pipefail
src=$1 debs=$2
for tool in dpkg-deb lintian; do
  command -v "$tool" >/dev/null ||
    { echo "FAIL: $tool is not installed (scripts/bootstrap installs it)"; exit 1; }
done
fail=0
say() { echo "FAIL: $*"; fail=1; }
agent=$(ls "$debs"/fabu-agent_*.deb)
coordinator=$(ls "$debs"/fabu-coordinator_*.deb)
cli=$(ls "$debs"/fabu-cli_*.deb)
files() { dpkg-deb --contents "$1" | awk '{print $6}' | grep -v '/$' | sed 's|^\./|/|'; }
expect() { # expect DEB PATH
  files "$1" | grep -qx "$2" || say "$(basename "$1") lacks $2"
}
for pkg in agent coordinator cli; do
  deb=$(ls "$debs"/fabu-${pkg}_*.deb)
  expect "$deb" /usr/share/doc/fabu-$pkg/copyright
  expect "$deb" /usr/share/doc/fabu-$pkg/changelog.Debian.gz
done
expect "$agent" /usr/bin/fabu-agent
expect "$agent" /usr/lib/systemd/system/fabu-agent.service
expect "$agent" /usr/share/doc/fabu-agent/install.md
expect "$coordinator" /usr/bin/fabu-coordinator
expect "$coordinator" /usr/lib/systemd/system/fabu-coordinator.service
expect "$coordinator" /usr/share/doc/fabu-coordinator/install.md
expect "$cli" /usr/bin/fabu
expect "$agent" /usr/share/man/man1/fabu-agent.1.gz
expect "$coordinator" /usr/share/man/man1/fabu-coordinator.1.gz
expect "$cli" /usr/share/man/man1/fabu.1.gz

# No file in two packages; fabu only in fabu-cli, whose workstation needs
# neither daemon.
dupes=$( (files "$agent"; files "$coordinator"; files "$cli") | sort | uniq -d)
[[ -z $dupes ]] || say "files in more than one package: $dupes"
files "$coordinator" | grep -qx /usr/bin/fabu && say "fabu-coordinator still carries /usr/bin/fabu"
files "$agent" | grep -q fabu-coordinator && say "fabu-agent carries coordinator files"
files "$cli" | grep -qv '^/usr/bin/fabu$\|^/usr/share/doc/fabu-cli/\|^/usr/share/man/man1/fabu.1.gz$' &&
  say "fabu-cli carries more than the CLI: $(files "$cli" | tr '\n' ' ')"
dpkg-deb --field "$coordinator" Recommends | grep -q '^fabu-cli (= ' ||
  say "fabu-coordinator does not recommend fabu-cli"
for field in Breaks Replaces; do
  dpkg-deb --field "$cli" "$field" | grep -q '^fabu-coordinator (<< ' ||
    say "fabu-cli does not $field the fabu-coordinator that carried /usr/bin/fabu"
done

for deb in "$agent" "$coordinator" "$cli"; do
  name=$(basename "$deb")
  dpkg-deb --field "$deb" Depends | grep -q 'libc6' || say "$name declares no library dependencies"
  # Owner root/root; directories and programs 0755, other files 0644.
  while read -r mode owner _ _ _ path; do
    if [[ $mode == d* ]]; then
      want=drwxr-xr-x
    elif [[ $path == ./usr/bin/* ]]; then
      want=-rwxr-xr-x
    else
      want=-rw-r--r--
    fi
    [[ $mode == "$want" ]] || say "$name: $path has mode $mode, not $want"
    [[ $owner == root/root ]] || say "$name: $path is owned by $owner"
  done < <(dpkg-deb --contents "$deb")
done

# Maintainer scripts: the daemons' packages have postinst, prerm and postrm,
# 0755, POSIX sh with set -e; fabu-cli has none.
for deb in "$agent" "$coordinator"; do
  name=$(basename "$deb")
  ctrl=$(mktemp -d)
  dpkg-deb --control "$deb" "$ctrl"
  for script in postinst prerm postrm; do
    if [[ ! -f $ctrl/$script ]]; then say "$name has no $script"; continue; fi
    [[ $(stat -c %a "$ctrl/$script") == 755 ]] || say "$name: $script is not 0755"
    head -1 "$ctrl/$script" | grep -qx '#!/bin/sh' || say "$name: $script is not #!/bin/sh"
    grep -qx 'set -e' "$ctrl/$script" || say "$name: $script lacks set -e"
    sh -n "$ctrl/$script" || say "$name: $script is not valid sh"
    if command -v checkbashisms >/dev/null; then
      checkbashisms "$ctrl/$script" || say "$name: $script is not POSIX sh"
    fi
  done
  rm -rf "$ctrl"
done
dpkg-deb --ctrl-tarfile "$cli" | tar -t | grep -q 'inst$\|rm$' && say "fabu-cli has maintainer scripts"

# lintian: no error; every warning explained in docs/packages.md.
report=$(lintian --no-cfg --fail-on none --tag-display-limit 0 "$agent" "$coordinator" "$cli" 2>&1)
echo "$report"
grep -q '^E: ' <<<"$report" && say "lintian reports errors"
while read -r tag; do
  grep -q "\`$tag\`" "$src/docs/packages.md" ||
    say "lintian warning $tag is not explained in docs/packages.md"
done < <(sed -n 's/^W: [^ ]*: \([^ ]*\).*/\1/p' <<<"$report" | sort -u)

((fail == 0)) && echo "deb packages: contents as expected"
exit "$fail"
