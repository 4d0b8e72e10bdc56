#!/usr/bin/env bash
# vpclab setup for Debian 12: system packages, .venv with pinned Python packages,
# and the `vpclab` command in /usr/local/bin. Needs root (re-runs itself with sudo).
# Idempotent: a second run with nothing to do takes a second or two.
# It starts no system-wide daemon: every lab runs its own Open vSwitch instances.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"
REPO=$PWD

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then
    echo "setup.sh: root needed for apt and /usr/local/bin; re-running with sudo" >&2
    exec sudo -- "$REPO/setup.sh" "$@"
  fi
  echo "setup.sh: run me as root (sudo is not installed)" >&2
  exit 2
fi

# Nothing root writes may land in the user's checkout as root's: no bytecode caches here,
# and .venv is given to the user behind sudo at the end (see "ownership" below).
export PYTHONDONTWRITEBYTECODE=1

fail() { echo "setup.sh: FAILED: $*" >&2; exit 2; }
step() { printf '%-44s' "$1"; }

# python-is-python3: `sudo python examples/first_ping.py` (sudo's PATH has no other `python`)
APT_PACKAGES=(openvswitch-switch openvswitch-common mininet tcpdump ethtool iputils-ping
              iputils-arping iperf3 traceroute busybox python3-venv python3-pip iproute2 net-tools procps util-linux
              python-is-python3)

step "Debian packages"
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || fail "apt-get update (is the network to Debian's mirrors up?)"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/vpclab-apt.log 2>&1 \
    || fail "apt-get install ${missing[*]}; see /tmp/vpclab-apt.log"
else
  echo "ok"
fi

step "Python venv (.venv, Debian's python3)"
if ! .venv/bin/python -c 'import mininet.net' 2>/dev/null; then
  rm -rf .venv
  /usr/bin/python3 -m venv --system-site-packages .venv || fail "python3 -m venv"
  echo "created"
else
  echo "ok"
fi

step "Python packages (requirements.txt)"
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat .venv/.requirements.sha256 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt \
    >/tmp/vpclab-pip.log 2>&1 || fail "pip install -r requirements.txt; see /tmp/vpclab-pip.log"
  echo "$want" > .venv/.requirements.sha256
  echo "installed"
else
  echo "ok"
fi

step "vpclab importable from .venv"
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$REPO" > "$site/vpclab-src.pth"
.venv/bin/python -c 'import vpclab.cli, os_ken, scapy, yaml, mininet.net' || fail "imports in .venv"
echo "ok"

step "vpclab command (/usr/local/bin/vpclab)"
launcher="#!/bin/sh
# vpclab launcher written by $REPO/setup.sh
exec $REPO/.venv/bin/python -m vpclab \"\$@\""
if [ "$(cat /usr/local/bin/vpclab 2>/dev/null)" != "$launcher" ]; then
  printf '%s\n' "$launcher" > /usr/local/bin/vpclab
  chmod 755 /usr/local/bin/vpclab
  echo "written"
else
  echo "ok"
fi

step "ownership (.venv belongs to you)"
if [ -n "${SUDO_UID:-}" ] && [ "${SUDO_UID}" != 0 ] && [ -d .venv ] && [ ! -L .venv ] \
   && [ "$(readlink -f .venv)" = "$REPO/.venv" ]; then
  # setup made .venv inside the user's own checkout: it is theirs, not root's
  chown -R --no-dereference "$SUDO_UID:${SUDO_GID:-$SUDO_UID}" .venv
  echo "given to uid $SUDO_UID"
else
  echo "ok"
fi

for tool in ovs-vswitchd ovsdb-server ovs-vsctl mnexec tcpdump nsenter ethtool; do
  command -v "$tool" >/dev/null || fail "$tool not found after install"
done
[ -f /usr/share/openvswitch/vswitch.ovsschema ] || fail "OVS schema missing (openvswitch-common)"

echo
echo "versions:"
echo "  $(ovs-vswitchd --version | head -n1)"
echo "  mininet $(.venv/bin/python -c 'import mininet.net as m; print(m.VERSION)')"
.venv/bin/python - <<'PY'
import importlib.metadata as md, sys
print(f"  python {sys.version.split()[0]} ({sys.executable})")
for name in ("os-ken", "scapy", "PyYAML", "pytest"):
    print(f"  {name} {md.version(name)}")
PY
echo "  $(tcpdump --version 2>&1 | head -n1)"
echo
echo "ready: try \`vpclab demo\`"
