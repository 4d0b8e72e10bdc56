"""A learner's tunnel, in place of the service's own (classroom exercise 03).

The learner writes, Ryu-app style, two functions (hook "tunnel", one file):

    def encapsulate(router, destination):
        # a VM on `router` sends to `destination`, a VM on another host
        return {"vni": 1001, "remote_ip": "192.168.100.2"}

    def deliver(router, arrival):
        # a packet came out of the tunnel on `router`
        return 5                # the port of the VM it is for, or None: drop it

`router` is the virtual router asked (its host, its underlay IP, its VMs' ports with their
mappings); `destination` is the mapping of the VM the packet is for; `arrival` is what a
receiver reads from a tunnelled packet: the header's VNI and the inner destination IP
and MAC (a VXLAN receiver has nothing else: no VPC name, no ENI). The service builds every flow as usual, then asks the learner for what the
tunnel part of a flow must be: the header of each forwarding entry that tunnels (the
answer replaces its VNI and outer destination) and the port of each delivery entry. A
failed call or a refused answer makes that flow drop: the router forwards nothing the
learner did not say. Each distinct question is asked once per lab (answers are the
learner's decisions, cached as flows are), so a hanging function costs its time limit
once, not at every packet.
"""
from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address

from ryu_apps.learner_part import BadAnswer, LearnerPart, NoAnswer, mapping_argument, \
    router_argument, short
from vpclab.router.mapping import MappingTable
from vpclab.router.pipeline import DELIVER, PRIO_ENTRY, Flow, Router
from vpclab.router.sync import decode_cookie

MAX_VNI = (1 << 24) - 1


def parse_header(result: object) -> tuple[int, IPv4Address]:
    """encapsulate's answer: (VNI, outer destination), or BadAnswer saying what is wrong."""
    if not isinstance(result, dict) or set(result) != {"vni", "remote_ip"}:
        raise BadAnswer(f"encapsulate must return {{'vni': number, 'remote_ip': 'A.B.C.D'}}, "
                        f"not {short(result)}")
    vni, remote = result["vni"], result["remote_ip"]
    if not isinstance(vni, int) or isinstance(vni, bool) or not 0 <= vni <= MAX_VNI:
        raise BadAnswer(f"a VNI is a number from 0 to {MAX_VNI} (24 bits), not {short(vni)}")
    try:
        if not isinstance(remote, str):
            raise ValueError(remote)
        address = IPv4Address(remote)
    except ValueError:
        raise BadAnswer(f"remote_ip is a host's IPv4 address as a string, not {short(remote)}") \
            from None
    if address.is_unspecified or address.is_multicast or address.is_loopback or \
            address == IPv4Address("255.255.255.255"):
        raise BadAnswer(f"remote_ip is one host's underlay address, not {remote} (no host has it)")
    return vni, address


def parse_port(result: object, router: Router) -> int | None:
    """deliver's answer: one of the router's VM ports, or None."""
    if result is None:
        return None
    ports = sorted(p.ofport for p in router.ports)
    if not isinstance(result, int) or isinstance(result, bool) or result not in ports:
        raise BadAnswer(f"deliver returns the port number of one of {router.host}'s VMs "
                        f"({', '.join(map(str, ports)) or 'it has none'}) or None, not {short(result)}")
    return result


def tunnel_header(flow: Flow) -> bool:
    """Does this flow put packets into the tunnel (it sets the header's VNI)?"""
    return any(a[:2] == ("set", "tunnel_id") for a in flow.actions)


def with_header(flow: Flow, vni: int, remote: IPv4Address) -> Flow:
    def rewrite(action: tuple) -> tuple:
        if action[:2] == ("set", "tunnel_id"):
            return ("set", "tunnel_id", vni)
        if action[:2] == ("set", "tun_ipv4_dst"):
            return ("set", "tun_ipv4_dst", str(remote))
        return action
    return replace(flow, actions=tuple(rewrite(a) for a in flow.actions))


def delivery_port(flow: Flow) -> int | None:
    """The VM port a delivery entry outputs to (None: not a VM's delivery entry)."""
    if flow.table != DELIVER or flow.priority != PRIO_ENTRY or len(flow.actions) != 1:
        return None
    action = flow.actions[0]
    return action[1] if action[0] == "output" else None


class LearnerTunnel(LearnerPart):
    HOOK = "tunnel"

    def __init__(self, service, code):
        super().__init__(service, code)
        self.headers: dict[tuple, tuple[int, IPv4Address] | None] = {}
        self.ports: dict[tuple, int | None] = {}

    def rewrite(self, router: Router, flows: list[Flow], table: MappingTable) -> list[Flow]:
        """The flows with the learner's tunnel in them (a flow it did not answer drops)."""
        out = []
        for flow in flows:
            if tunnel_header(flow):
                key = decode_cookie(flow.cookie)
                mapping = table.lookup(*key) if key else None
                header = self.header(router, mapping) if mapping else None
                flow = with_header(flow, *header) if header else replace(flow, actions=())
            elif (port := delivery_port(flow)) is not None:
                local = router.port_by_number(port)
                mine = self.port(router, local.mapping.vni, local.mapping.ip,
                                 local.mapping.mac) if local else None
                flow = replace(flow, actions=(("output", mine),) if mine else ())
            out.append(flow)
        return out

    def header(self, router: Router, destination) -> tuple[int, IPv4Address] | None:
        key = (router.host, destination)
        if key not in self.headers:
            where = dict(host=router.host, destination=f"{destination.vpc}:{destination.ip}")
            try:
                header, output = self.ask(
                    "encapsulate", (router_argument(router, self.underlay_ip(router.host)),
                                    mapping_argument(destination)), parse_header, **where)
                self.answered("encapsulate", output, **where, vni=header[0],
                              remote_ip=str(header[1]))
            except NoAnswer:
                header = None
            self.headers[key] = header
        return self.headers[key]

    def port(self, router: Router, vni: int, ip, mac: str) -> int | None:
        """The learner's port for a tunnelled packet to (vni, ip, mac) on this router."""
        key = (router.host, router.ports, vni, str(ip), mac.lower())
        if key not in self.ports:
            arrival = {"vni": vni, "dst_ip": str(ip), "dst_mac": mac.lower()}
            where = dict(host=router.host, arrival=f"{vni}:{ip}:{mac.lower()}")
            try:
                port, output = self.ask(
                    "deliver", (router_argument(router, self.underlay_ip(router.host)), arrival),
                    lambda r: parse_port(r, router), **where)
                self.answered("deliver", output, **where, port=port)
            except NoAnswer:
                port = None
            self.ports[key] = port
        return self.ports[key]
