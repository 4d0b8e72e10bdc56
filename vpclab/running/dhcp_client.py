"""A DHCP VM's client: busybox udhcpc in the VM's own namespaces, with vpclab's script.

A VM with `dhcp: true` starts with no address and asks its host's virtual router, which
hands the question to the mapping service (vpclab/router/pipeline/services.py): DISCOVER,
OFFER, REQUEST, ACK, all on the host. The client writes nothing of the machine's: no
lease file (udhcpc keeps none), no hooks; the script below sets eth0 and writes only
/etc/resolv.conf, which in a VM is the VM's own file (a bind mount in its own mount
namespace, vpclab/running/identity.py). The script is root's, in the lab's tools folder.
"""
from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from vpclab.errors import VpclabError
from vpclab.running.shell import in_netns_of

SCRIPT_NAME = "udhcpc-script"
TIMEOUT = 15.0
SCRIPT = """#!/bin/sh
# vpclab: what busybox udhcpc runs in a DHCP VM (in the VM's own namespaces): the lease on
# eth0, its router as the default route, its resolver in the VM's own /etc/resolv.conf
case "$1" in
    deconfig)
        ip -4 addr flush dev "$interface"
        ip link set "$interface" up
        ;;
    bound|renew)
        ip -4 addr flush dev "$interface"
        ip addr add "$ip/${mask:-24}" dev "$interface"
        [ -n "$mtu" ] && ip link set "$interface" mtu "$mtu"
        for r in $router; do ip route replace default via "$r" dev "$interface"; break; done
        {
            echo "# from the VPC's DHCP, answered on the host (vpclab)"
            [ -n "$domain" ] && echo "search $domain"
            for d in $dns; do echo "nameserver $d"; done
            echo "options timeout:1 attempts:1"
        } > /etc/resolv.conf
        ;;
esac
exit 0
"""


def write_script(tools: Path) -> Path:
    """The script, in the lab's own tools folder (root's: nothing a user edits runs as root)."""
    path = tools / SCRIPT_NAME
    path.write_text(SCRIPT)
    path.chmod(0o755)
    return path


def command(script: Path) -> list[str]:
    """udhcpc in the foreground, quitting once it has a lease (or after 4 tries, 1 s apart),
    asking for the MTU, the domain and the hostname besides the defaults."""
    return ["busybox", "udhcpc", "-i", "eth0", "-f", "-q", "-n", "-t", "4", "-T", "1", "-A", "1",
            "-s", str(script), "-O", "mtu", "-O", "domain", "-O", "hostname"]


def lease_all(script: Path, vms: dict[str, int]) -> dict[str, str]:
    """Run the client in every DHCP VM at once (`vms`: name -> its node's PID); return what
    each client printed. Raises a VpclabError naming each VM that got no lease."""
    def one(item: tuple[str, int]) -> tuple[str, subprocess.CompletedProcess]:
        name, pid = item
        argv = in_netns_of(pid, command(script))
        try:
            return name, subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT,
                                        stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return name, subprocess.CompletedProcess(argv, 124, "", f"no answer in {TIMEOUT:g} s")

    with ThreadPoolExecutor(max_workers=16) as pool:
        done = dict(pool.map(one, vms.items()))
    failed = {name: r for name, r in done.items() if r.returncode != 0}
    if failed:
        raise VpclabError("no DHCP lease for " + ", ".join(
            f"{name} ({_last_line(r.stderr or r.stdout)})" for name, r in failed.items())
            + "; the mapping service's log says what it answered (vpclab logs LAB mapping-service)")
    return {name: r.stdout + r.stderr for name, r in done.items()}


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else "no output"
