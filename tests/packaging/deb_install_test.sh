#!/usr/bin/env bash
# Installs, upgrades, removes and purges the three .deb packages in a
# throwaway root: an overlay of / in a private mount namespace, every write
# going to a temp dir, so the host's own files, dpkg database and users are
# left alone. Checks what docs/packages.md promises:
#   - without systemd running (a chroot) the maintainer scripts call neither
#     systemctl nor deb-systemd-invoke, and still enable the units;
#   - remove and upgrade keep /var/lib/fabu-agent, /var/lib/fabu-coordinator
#     and the fabu-coordinator user; purge deletes them, and keeps an
#     application under /opt/fabu/apps;
#   - with systemd running (stand-ins for systemctl and deb-systemd-invoke
#     log their calls) install starts nothing, upgrade try-restarts, and
#     removing a package stops only the unit it installed;
#   - fabu-cli takes /usr/bin/fabu over from fabu-coordinator 0.1.0.
# Usage: deb_install_test.sh DEB_DIR (deb_build.sh made DEB_DIR)
set -euo pipefail
debs=$(cd "$1" && pwd)
if [[ $(id -u) -ne 0 ]]; then
  echo "SKIP: installing packages into a throwaway root needs root (a mount namespace," \
    "overlayfs, chroot); CI runs the tests as root"
  exit 77
fi
for tool in unshare mount chroot dpkg systemctl deb-systemd-helper; do
  command -v "$tool" >/dev/null ||
    { echo "FAIL: $tool is not installed (scripts/bootstrap installs it)"; exit 1; }
done
if [[ ${FABU_DEB_INSTALL_INSIDE:-} != 1 ]] && ! unshare --mount true 2>/dev/null; then
  echo "SKIP: root here may not make a mount namespace (a container without CAP_SYS_ADMIN);" \
    "the throwaway root needs one"
  exit 77
fi

# Outside: make the temp dir and run this script again in a mount namespace.
if [[ ${FABU_DEB_INSTALL_INSIDE:-} != 1 ]]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/upper" "$work/work" "$work/root"
  FABU_DEB_INSTALL_INSIDE=1 unshare --mount --propagation private "$0" "$debs" "$work"
  exit $?
fi

work=$2
root=$work/root
mount -t overlay overlay -o "lowerdir=/,upperdir=$work/upper,workdir=$work/work" "$root"
mount --bind /dev "$root/dev"
mount -t proc proc "$root/proc"
# man-db's trigger (it rebuilds the whole manual index) is not under test.
rm -f "$root/var/lib/man-db/auto-update"
mkdir -p "$root/tmp/debs"
cp "$debs"/*.deb "$root/tmp/debs/"
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }
dpkg_in_root() {
  in_root dpkg --force-confdef "$@" >"$work/dpkg.log" 2>&1 ||
    { cat "$work/dpkg.log"; echo "FAIL: dpkg $*"; exit 1; }
}
fail=0
say() { echo "FAIL: $*"; fail=1; }
exists() { [[ -e $root$1 || -L $root$1 ]]; }
want() { exists "$1" || say "$2: $1 is missing"; }
gone() { ! exists "$1" || say "$2: $1 is still there"; }
has_user() { in_root getent passwd fabu-coordinator >/dev/null; }
log=/var/log/fabu-systemd-calls.log
calls() { cat "$root$log" 2>/dev/null || true; }
agent=/tmp/debs/$(cd "$debs" && ls fabu-agent_*.deb)
coordinator=/tmp/debs/$(cd "$debs" && ls fabu-coordinator_*.deb)
cli=/tmp/debs/$(cd "$debs" && ls fabu-cli_*.deb)
wants=/etc/systemd/system/multi-user.target.wants

# Stand-ins that log the calls that would reach a running systemd; offline
# calls (`systemctl --root=/ preset`, made by deb-systemd-helper to enable a
# unit) go on to the real systemctl.
mv "$root/usr/bin/systemctl" "$root/usr/bin/systemctl.real"
cat >"$root/usr/bin/systemctl" <<STANDIN
#!/bin/sh
case "\$1" in --root=*) exec /usr/bin/systemctl.real "\$@" ;; esac
echo "systemctl \$*" >>$log
STANDIN
printf '#!/bin/sh\necho "deb-systemd-invoke $*" >>%s\n' "$log" >"$root/usr/bin/deb-systemd-invoke"
chmod 0755 "$root/usr/bin/systemctl" "$root/usr/bin/deb-systemd-invoke"

echo "== without systemd running"
rm -rf "$root/run/systemd/system"
dpkg_in_root -i "$coordinator" "$agent"
gone /usr/bin/fabu "fabu-coordinator without fabu-cli"
dpkg_in_root -i "$cli"
in_root fabu --version >/dev/null || say "fabu --version fails once installed"
in_root fabu-agent --version >/dev/null || say "fabu-agent --version fails once installed"
[[ $(stat -c %a "$root/var/lib/fabu-agent") == 700 ]] || say "/var/lib/fabu-agent is not 0700"
want /opt/fabu/apps install
has_user || say "install: no fabu-coordinator user"
want $wants/fabu-agent.service "install (enabled)"
want $wants/fabu-coordinator.service "install (enabled)"
# What the daemons would have made.
echo '{}' >"$root/var/lib/fabu-agent/agent.json"
mkdir -p "$root/opt/fabu/apps/web/releases" "$root/var/lib/fabu-coordinator"
echo db >"$root/var/lib/fabu-coordinator/coordinator.db"
dpkg_in_root -i "$cli" "$coordinator" "$agent"  # an upgrade
want /var/lib/fabu-agent/agent.json upgrade
want /var/lib/fabu-coordinator/coordinator.db upgrade
has_user || say "upgrade removed the fabu-coordinator user"
dpkg_in_root -r fabu-agent fabu-coordinator fabu-cli
gone /usr/bin/fabu-agent remove
gone /usr/bin/fabu remove
gone $wants/fabu-agent.service "remove (disabled)"
gone $wants/fabu-coordinator.service "remove (disabled)"
want /var/lib/fabu-agent/agent.json remove
want /var/lib/fabu-coordinator/coordinator.db remove
has_user || say "remove removed the fabu-coordinator user"
# Installed again after a remove: the data is used, the unit left disabled.
dpkg_in_root -i "$agent"
want /var/lib/fabu-agent/agent.json "install after remove"
gone $wants/fabu-agent.service "install after remove (the removal's disable is kept)"
dpkg_in_root -r fabu-agent
dpkg_in_root -P fabu-agent fabu-coordinator fabu-cli
gone /var/lib/fabu-agent purge
gone /var/lib/fabu-coordinator purge
has_user && say "purge left the fabu-coordinator user"
in_root getent group fabu-coordinator >/dev/null && say "purge left the fabu-coordinator group"
want /opt/fabu/apps/web/releases "purge (an application the agent deployed)"
[[ -z $(calls) ]] || say "without systemd the scripts called: $(calls)"
rm -rf "$root/opt/fabu"

echo "== with systemd running (stand-ins)"
mkdir -p "$root/run/systemd/system"
dpkg_in_root -i "$cli" "$coordinator" "$agent"
calls | grep -v 'daemon-reload' | grep . && say "install started something: $(calls)"
want $wants/fabu-agent.service "install after purge (enabled again)"
: >"$root$log"
dpkg_in_root -i "$cli" "$coordinator" "$agent"  # an upgrade
calls | grep -qx 'deb-systemd-invoke try-restart fabu-agent.service' ||
  say "upgrade did not try-restart fabu-agent: $(calls)"
calls | grep -q ' stop ' && say "upgrade stopped a unit: $(calls)"
: >"$root$log"
dpkg_in_root -r fabu-agent
[[ $(calls | grep -v 'daemon-reload') == 'deb-systemd-invoke stop fabu-agent.service' ]] ||
  say "removing fabu-agent called: $(calls)"
: >"$root$log"
dpkg_in_root -r fabu-coordinator
[[ $(calls | grep -v 'daemon-reload') == 'deb-systemd-invoke stop fabu-coordinator.service' ]] ||
  say "removing fabu-coordinator called: $(calls)"
: >"$root$log"
dpkg_in_root -r fabu-cli
[[ -z $(calls) ]] || say "removing fabu-cli called: $(calls)"
dpkg_in_root -P fabu-agent fabu-coordinator
gone /var/lib/fabu-agent purge
has_user && say "purge left the fabu-coordinator user"

echo "== upgrade from fabu-coordinator 0.1.0, which carried /usr/bin/fabu"
# That package, remade: the coordinator's with fabu added, version 0.1.0.
old=$work/old
dpkg-deb -R "$root$coordinator" "$old"
dpkg-deb --fsys-tarfile "$root$cli" | tar -x -C "$old" ./usr/bin/fabu
sed -i -e 's/^Version: .*/Version: 0.1.0/' -e '/^Recommends:/d' "$old/DEBIAN/control"
dpkg-deb --root-owner-group -b "$old" "$root/tmp/debs/old.deb" >/dev/null
dpkg_in_root -i /tmp/debs/old.deb
[[ $(in_root dpkg -S /usr/bin/fabu) == "fabu-coordinator: /usr/bin/fabu" ]] ||
  say "the remade 0.1.0 package does not carry /usr/bin/fabu"
# fabu-cli first, as apt may order it (apt passes --auto-deconfigure): it
# takes the file over (Replaces) and the old coordinator is deconfigured
# until its own upgrade (Breaks).
dpkg_in_root --auto-deconfigure -i "$cli" "$coordinator"
[[ $(in_root dpkg -S /usr/bin/fabu) == "fabu-cli: /usr/bin/fabu" ]] ||
  say "after the upgrade /usr/bin/fabu is not fabu-cli's: $(in_root dpkg -S /usr/bin/fabu)"
in_root fabu --version >/dev/null || say "fabu --version fails after the upgrade"
dpkg_in_root -P fabu-cli fabu-coordinator

((fail == 0)) && echo "deb packages: install, upgrade, remove and purge as promised"
exit "$fail"
