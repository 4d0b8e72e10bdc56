"""The Mininet CLI of `vpclab run`, in the lab's own words.

Mininet's CLI knows nodes by their Mininet names (v1, h1) and its pingall pings every
pair of hosts as if they shared one LAN: in a VPC lab that lists internal names, misses
the physical hosts and reports VMs of different VPCs as "dropped" (they must be). This
CLI keeps Mininet's (`ZIGI-VM1 ping -c 1 10.0.0.185`, `py`, `sh`, ...) and changes:

- nodes, net, dump, links: display names, the physical hosts included;
- pingall: every ordered pair inside each VPC, as a matrix per VPC; pairs across VPCs
  are tried too (where the address is not also the pinger's own VPC's) and reported only
  if one ever reaches: isolation is the expected result, not a failure;
- flows, trace, mapping, stats, capture: the vpclab commands, on this lab;
- tab completion of display names.
"""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from vpclab.running.lifecycle import CALLER_CWD

PING_WAIT = 1          # s a pingall ping waits for its reply
PARALLEL = 8           # pings at once


def vpc_matrix(vms: list[str], reached: Callable[[str, str], bool]) -> list[str]:
    """One VPC's pingall as text rows: a header of targets, then one row per source."""
    width = max([len(v) for v in vms] + [4])
    rows = [" " * width + "  " + "  ".join(f"{v:^{width}}" for v in vms)]
    for source in vms:
        cells = ["-" if source == target else ("ok" if reached(source, target) else "LOST")
                 for target in vms]
        rows.append(f"{source:<{width}}  " + "  ".join(f"{c:^{width}}" for c in cells))
    return rows


def pairs_by_vpc(vms: dict[str, tuple[str, str]]) -> tuple[dict[str, list[tuple[str, str]]],
                                                            list[tuple[str, str]]]:
    """vms: name -> (vpc, ip). The ordered pairs inside each VPC, and the pairs across VPCs
    worth trying: those whose target address no VM of the source's own VPC has (pinging
    it would reach that VM, in its own VPC: no leak to learn from)."""
    inside: dict[str, list[tuple[str, str]]] = {}
    across = []
    for source, (vpc, _) in vms.items():
        own = {ip for v, ip in vms.values() if v == vpc}
        inside.setdefault(vpc, [])
        for target, (other, ip) in vms.items():
            if target == source:
                continue
            if other == vpc:
                inside[vpc].append((source, target))
            elif ip not in own:
                across.append((source, target))
    return inside, across


def make_cli(fabric):
    """The CLI class for this runner's fabric (Mininet is imported only here)."""
    from mininet.cli import CLI

    class LabCLI(CLI):
        identchars = CLI.identchars + "-."   # display names like ZIGI-VM1
        prompt = f"vpclab:{fabric.state.name}> "

        # -- names -------------------------------------------------------------
        def _vms(self) -> dict[str, tuple[str, str]]:
            return {name: (plan.vm.vpc, str(plan.vm.ip)) for name, plan in fabric.vm_plans.items()}

        def _names(self) -> list[str]:
            return [*fabric.host_nodes, *fabric.vm_nodes]

        def completenames(self, text, *ignored):
            return super().completenames(text, *ignored) + \
                [n for n in self._names() if n.startswith(text)]

        def completedefault(self, text, *ignored):
            return [n for n in self._names() if n.startswith(text)]

        def do_nodes(self, _line):
            "List the lab's hosts and VMs (display names)."
            print(f"hosts: {' '.join(fabric.host_nodes)}")
            for name, plan in fabric.vm_plans.items():
                print(f"  {name:<16} {plan.vm.vpc:<16} {str(plan.vm.ip):<16} on {plan.vm.host}")

        def do_net(self, _line):
            "How the nodes are linked: each VM to its host's router, each host to the underlay."
            for host, hplan in fabric.plan.hosts.items():
                vms = [p for p in fabric.vm_plans.values() if p.vm.host == host]
                ports = ", ".join(f"{p.name} (port {p.ofport})" for p in vms) or "no VM"
                print(f"{host}: eth0 -- underlay ({hplan.host.underlay_ip}); br-int: {ports}")
            for name, plan in fabric.vm_plans.items():
                print(f"{name}: eth0 -- {plan.vm.host} br-int port {plan.ofport} ({plan.port_name})")

        def do_links(self, _line):
            "Every VM's link, by display names."
            for name, plan in fabric.vm_plans.items():
                print(f"{name}-eth0 <-> {plan.vm.host}-{plan.port_name}")

        def do_dump(self, _line):
            "Each node: kind, display name, address, pid."
            for host, node in fabric.host_nodes.items():
                ip = fabric.plan.hosts[host].host.underlay_ip
                print(f"<Host {host}: eth0:{ip} pid={node.pid}>")
            for name, node in fabric.vm_nodes.items():
                plan = fabric.vm_plans[name]
                print(f"<VM {name} ({plan.vm.vpc}): eth0:{plan.vm.ip} mac {plan.vm.mac} "
                      f"on {plan.vm.host} pid={node.pid}>")

        # -- pingall by VPC ------------------------------------------------------
        def _reached(self, pair: tuple[str, str]) -> bool:
            source, target = pair
            ip = fabric.vm_plans[target].vm.ip
            proc = fabric.vm_nodes[source].popen(
                ["ping", "-n", "-q", "-c", "1", "-W", str(PING_WAIT), str(ip)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            return proc.wait() == 0

        def do_pingall(self, _line):
            "Ping every ordered pair of VMs inside each VPC; across VPCs, report any that reach."
            vms = self._vms()
            inside, across = pairs_by_vpc(vms)
            todo = [p for pairs in inside.values() for p in pairs] + across
            print(f"*** ping every ordered pair inside each VPC (and {len(across)} pairs "
                  f"across VPCs, which must not reach)", flush=True)
            with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
                results = dict(zip(todo, pool.map(self._reached, todo)))
            for vpc, pairs in inside.items():
                members = [v for v, (x, _) in vms.items() if x == vpc]
                print(f"\n{vpc} ({len(members)} VMs)")
                print("\n".join(vpc_matrix(members, lambda a, b: results[(a, b)])))
            leaks = [p for p in across if results[p]]
            print(f"\n*** across VPCs: {len(across)} pairs not expected to reach: "
                  + ("none did" if not leaks else
                     "REACHED: " + ", ".join(f"{a} -> {b}" for a, b in leaks)))
            total = sum(len(p) for p in inside.values())
            ok = sum(results[p] for pairs in inside.values() for p in pairs)
            lost = round(100 * (total - ok) / total) if total else 0
            print(f"*** Results: {ok}/{total} reached inside VPCs ({lost}% dropped)")

        # -- the vpclab commands on this lab -----------------------------------------
        def _vpclab(self, verb: list[str], line: str) -> None:
            try:
                words = shlex.split(line)
            except ValueError as exc:          # an unclosed quote: say so, keep the CLI
                print(f"*** {exc}: {line}")
                return
            argv = [sys.executable, "-m", "vpclab", *verb, fabric.state.name, *words]
            where = os.environ.get(CALLER_CWD)
            subprocess.run(argv, stdin=subprocess.DEVNULL,
                           cwd=where if where and os.path.isdir(where) else None)

        def do_flows(self, line):
            "flows HOST [--raw]: the router's flow table in words."
            self._vpclab(["flows"], line)

        def do_trace(self, line):
            "trace VM --to ADDRESS [...]: a packet through the real router, in words."
            self._vpclab(["trace"], line)

        def do_mapping(self, line):
            "The mapping service's table (vpclab mapping list)."
            self._vpclab(["mapping", "list"], line)

        def do_stats(self, line):
            "The mapping service's and routers' counters (vpclab stats)."
            self._vpclab(["stats"], line)

        def do_capture(self, line):
            "capture --on NODE[:IFACE],... [--filter F] -- NODE CMD...: capture while CMD runs."
            self._vpclab(["capture"], line)

    return LabCLI
