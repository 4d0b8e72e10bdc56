"""Read a topology YAML file into a `Topology`, collecting every error at once.

Each problem becomes an `Issue` with the YAML path of the bad value, what is
wrong and a hint, so one run of `vpclab validate` shows a student everything
to fix (netlab's habit) instead of one error per run (FAUCET's slip).
"""
from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass
from ipaddress import AddressValueError, IPv4Address, IPv4Network, NetmaskValueError
from pathlib import Path
from typing import Any

import yaml

from vpclab.errors import VpclabError
from vpclab.model.names import DISPLAY_NAME_RULE, LAB_NAME_RULE, is_display_name, is_lab_name
from vpclab.model.routes_validation import RoutesChecks
from vpclab.model.topology import (
    DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_ENTRIES, DEFAULT_MISS_RATE, DEFAULT_UNDERLAY_CIDR, ENCAPS,
    DEFAULT_TTL, FIRST_VNI, MANAGEMENT_CIDR, MAPPING_MODES, ROUTER_MAC, Host, Subnet, Topology, Vm, Vpc,
)

MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
ENI = re.compile(r"^eni-[0-9a-f]{1,17}$")
MAX_HOSTS = 1024       # each host runs its own Open vSwitch (~25 MB): 1,024 is ~25 GB
MAX_VNI = 2**24 - 1

TOP_KEYS = ("name", "description", "encap", "mapping", "defaults", "underlay", "hosts", "vpcs",
            "vms")
UNDERLAY_KEYS = ("cidr",)
DEFAULTS_KEYS = ("ttl",)
MAPPING_KEYS = ("mode", "idle_timeout", "max_entries", "miss_rate")
HOST_KEYS = ("underlay_ip",)
VPC_KEYS = ("cidr", "vni", "subnets", "route_tables")
VM_KEYS = ("vpc", "host", "ip", "mac", "eni", "source_dest_check", "ttl", "subnet", "dhcp")


@dataclass(frozen=True)
class Issue:
    path: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        text = f"{self.path}: {self.message}" if self.path else self.message
        return f"{text}\n    hint: {self.hint}" if self.hint else text


class TopologyError(VpclabError):
    """A topology file with one or more issues."""

    def __init__(self, source: str, issues: list[Issue]):
        self.source = source
        self.issues = issues
        count = f"{len(issues)} error{'s' if len(issues) != 1 else ''}"
        body = "\n".join(f"  {issue}" for issue in issues)
        super().__init__(f"{source}: {count}\n{body}")


def load_topology(path: str | Path) -> Topology:
    """Read and validate a topology file; raise TopologyError listing all issues."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise TopologyError(str(path), [Issue("", f"cannot read the file: {exc.strerror}",
                                              "check the path; shipped labs are in topologies/")])
    return parse_topology(text, str(path))


def parse_topology(text: str, source: str = "<topology>") -> Topology:
    raw = _read_yaml(text, source)
    if raw is None:  # only comments
        raise TopologyError(source, [Issue("", "the file is empty",
                                           "start from topologies/seed.yaml")])
    return check_topology(raw, source)


def check_topology(raw: Any, source: str = "<topology>", live: bool = False) -> Topology:
    """Validate an already-parsed topology (a file's, or a running lab's after a change).
    `live`: a running lab's inventory, where a route may target a VM deleted since (a
    blackhole, as in AWS); a file may not start with one."""
    checker = _Checker(live)
    topology = checker.topology(raw)
    if checker.issues:
        raise TopologyError(source, checker.issues)
    assert topology is not None
    return topology


def topology_to_raw(topology: Topology) -> dict[str, Any]:
    """The YAML form of a topology, every default made explicit (inverse of check_topology)."""
    return {
        "name": topology.name, "description": topology.description, "encap": topology.encap,
        "mapping": {"mode": topology.mapping_mode, "idle_timeout": topology.idle_timeout,
                    "max_entries": topology.max_entries, "miss_rate": topology.miss_rate},
        "underlay": {"cidr": str(topology.underlay)},
        "defaults": {"ttl": topology.default_ttl},
        "hosts": {h.name: {"underlay_ip": str(h.underlay_ip)} for h in topology.hosts.values()},
        "vpcs": {v.name: _vpc_to_raw(v) for v in topology.vpcs.values()},
        "vms": {vm.name: _vm_to_raw(vm, topology.default_ttl) for vm in topology.vms.values()},
    }


def _vpc_to_raw(vpc: Vpc) -> dict[str, Any]:
    """A VPC's YAML form; subnets and route tables only if it has them (an older file's
    form stays exactly what it was)."""
    raw: dict[str, Any] = {"cidr": str(vpc.cidr), "vni": vpc.vni}
    if vpc.subnets:
        raw["subnets"] = {s.name: {"cidr": str(s.cidr), **({"route_table": s.route_table}
                                                           if s.route_table else {})}
                          for s in vpc.subnets.values()}
    if vpc.route_tables:
        raw["route_tables"] = {name: [{"destination": str(r.destination), "target": r.target}
                                      for r in routes]
                               for name, routes in vpc.route_tables.items()}
    return raw


def _vm_to_raw(vm: Vm, default_ttl: int) -> dict[str, Any]:
    raw: dict[str, Any] = {"vpc": vm.vpc, "host": vm.host, "ip": str(vm.ip), "mac": vm.mac,
                           "eni": vm.eni}
    if not vm.source_dest_check:
        raw["source_dest_check"] = False
    if vm.ttl != default_ttl:
        raw["ttl"] = vm.ttl
    if vm.subnet is not None:
        raw["subnet"] = vm.subnet
    if vm.dhcp:
        raw["dhcp"] = True
    return raw


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML silently keeps the last of two equal keys; a lab must not."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, (str, int, float, bool, type(None))):
                raise yaml.constructor.ConstructorError(
                    None, None, f"a key must be a plain name or number, not {_kind(key)}",
                    key_node.start_mark)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first at line {seen[key].line + 1})",
                    key_node.start_mark)
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep)


def _read_yaml(text: str, source: str) -> Any:
    if not text.strip():
        raise TopologyError(source, [Issue("", "the file is empty",
                                           "start from topologies/seed.yaml")])
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise TopologyError(source, [Issue("", f"not valid YAML{where}: {problem}",
                                           "check indentation and quoting there")])


def default_mac(vpc: str, vm: str) -> str:
    """A stable locally-administered unicast MAC for a VM without one."""
    digest = hashlib.sha256(f"mac/{vpc}/{vm}".encode()).digest()
    return "02:" + ":".join(f"{b:02x}" for b in digest[:5])


def default_eni(vpc: str, vm: str) -> str:
    """A stable AWS-shaped ENI id (eni- and 17 hex digits)."""
    return "eni-" + hashlib.sha256(f"eni/{vpc}/{vm}".encode()).hexdigest()[:17]


def _did_you_mean(word: str, choices: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.5)
    known = ", ".join(choices) if choices else "none defined"
    return f"did you mean {close[0]!r}? known: {known}" if close else f"known: {known}"


class _Checker(RoutesChecks):
    """Walks the raw YAML once, recording issues and building the model."""

    suggest = staticmethod(_did_you_mean)

    def __init__(self, live: bool = False) -> None:
        super().__init__()
        self.issues: list[Issue] = []
        self.warnings: list[str] = []
        self.live = live

    def add(self, path: str, message: str, hint: str = "") -> None:
        self.issues.append(Issue(path, message, hint))

    def warn(self, text: str) -> None:
        """Accepted, but worth saying (`vpclab validate` and `up` print it)."""
        self.warnings.append(text)

    @staticmethod
    def kind(value: Any) -> str:
        return _kind(value)

    # -- generic shapes ------------------------------------------------------
    def mapping(self, value: Any, path: str, keys: tuple[str, ...], empty_ok: bool = True) -> dict:
        if value is None and empty_ok:
            return {}
        if not isinstance(value, dict):
            self.add(path, f"must be a mapping, got {_kind(value)}",
                     f"write it as `key: value` lines indented under {path}")
            return {}
        for key in value:
            if key not in keys:
                self.add(f"{path}.{key}" if path else str(key), "unknown key",
                         _did_you_mean(key, keys))
        return value

    def named_section(self, raw: dict, key: str) -> dict:
        value = raw.get(key)
        if value is None:
            self.add(key, "is missing", f"add a `{key}:` section with at least one entry")
            return {}
        if not value and isinstance(value, dict):
            self.add(key, f"must be a non-empty mapping of names, got {_kind(value)}",
                     "see topologies/seed.yaml")
            return {}
        return self.names(value, key, "", "topologies/seed.yaml")

    def names(self, value: Any, path: str, what: str, example: str) -> dict[str, Any]:
        """A mapping of names (hosts, VPCs, subnets, route tables): bad names reported and
        left out, so one mistake is not reported again by what names it."""
        if not isinstance(value, dict):
            self.add(path, f"must be a {'non-empty ' if not what else ''}mapping of "
                     f"{what + ' ' if what else ''}names, got {_kind(value)}", f"see {example}")
            return {}
        for name in value:
            if not is_display_name(name):
                self.add(f"{path}.{name}", "bad name", DISPLAY_NAME_RULE)
        return {n: v for n, v in value.items() if is_display_name(n)}

    def choice(self, value: Any, path: str, choices: tuple[str, ...], default: str) -> str:
        if value is None:
            return default
        if value not in choices:
            self.add(path, f"{value!r} is not one of {', '.join(choices)}", f"default is {default}")
            return default
        return value

    def ip(self, value: Any, path: str) -> IPv4Address | None:
        try:
            return IPv4Address(str(value))
        except (AddressValueError, ValueError):
            self.add(path, f"{value!r} is not an IPv4 address", "write it like 10.0.0.148")
            return None

    # -- sections ------------------------------------------------------------
    def topology(self, raw: Any) -> Topology | None:
        if not isinstance(raw, dict):
            self.add("", f"the file must be a YAML mapping, got {_kind(raw)}",
                     "start from topologies/seed.yaml")
            return None
        self.mapping(raw, "", TOP_KEYS)
        name = self.lab_name(raw.get("name"))
        description = raw.get("description") or ""
        if not isinstance(description, str):
            self.add("description", f"must be text, got {_kind(description)}")
        encap = self.choice(raw.get("encap"), "encap", ENCAPS, "geneve")
        mode, idle, max_entries, miss_rate = self.mapping_section(raw.get("mapping"))
        underlay = self.underlay_section(raw.get("underlay"))
        hosts = self.hosts(self.named_section(raw, "hosts"), underlay)
        vpcs = self.vpcs(self.named_section(raw, "vpcs"))
        default_ttl = self.defaults_section(raw.get("defaults"))
        vms = self.vms(raw.get("vms"), hosts, vpcs, default_ttl)
        named = set(raw["vms"]) if isinstance(raw.get("vms"), dict) else set()
        self.route_targets(vpcs, vms, named)
        return Topology(name, str(description), encap, mode, idle, max_entries, miss_rate,
                        hosts, vpcs, vms, underlay=underlay or DEFAULT_UNDERLAY_CIDR,
                        default_ttl=default_ttl, warnings=tuple(self.warnings))

    def lab_name(self, value: Any) -> str:
        if value is None:
            self.add("name", "is missing", "add e.g. `name: seed` (lowercase letters, digits, '-')")
            return "invalid"
        if not is_lab_name(value):
            self.add("name", f"{value!r} is not a valid lab name", LAB_NAME_RULE)
            return "invalid"
        return value

    def mapping_section(self, value: Any) -> tuple[str, int, int, int]:
        section = self.mapping(value, "mapping", MAPPING_KEYS)
        mode = self.choice(section.get("mode"), "mapping.mode", MAPPING_MODES, "on-demand")
        idle = self.whole(section.get("idle_timeout", DEFAULT_IDLE_TIMEOUT), "mapping.idle_timeout",
                          1, 65535, DEFAULT_IDLE_TIMEOUT, "a number of seconds")
        most = self.whole(section.get("max_entries", DEFAULT_MAX_ENTRIES), "mapping.max_entries",
                          1, 1_000_000, DEFAULT_MAX_ENTRIES, "a number of cached mappings per router")
        rate = self.whole(section.get("miss_rate", DEFAULT_MISS_RATE), "mapping.miss_rate",
                          1, 100_000, DEFAULT_MISS_RATE, "a number of packet-ins per second per VM")
        return mode, idle, most, rate

    def defaults_section(self, value: Any) -> int:
        """`defaults: {ttl: N}`: what every VM gets unless it says otherwise."""
        section = self.mapping(value, "defaults", DEFAULTS_KEYS)
        return self.ttl(section.get("ttl", DEFAULT_TTL), "defaults.ttl", DEFAULT_TTL)

    def ttl(self, value: Any, path: str, default: int) -> int:
        return self.whole(value, path, 1, 255, default, "a TTL (a VM's IPv4 default TTL)")

    def whole(self, value: Any, path: str, low: int, high: int, default: int, what: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.add(path, f"{value!r} is not {what} from {low} to {high}", f"default is {default}")
            return default
        return value

    def underlay_section(self, value: Any) -> IPv4Network | None:
        """The hosts' physical network; None if it was given but is unusable."""
        section = self.mapping(value, "underlay", UNDERLAY_KEYS)
        if "cidr" not in section:
            return DEFAULT_UNDERLAY_CIDR
        network = self.network(section["cidr"], "underlay.cidr", "192.168.100.0/24")
        if network is None:
            return None
        if not 8 <= network.prefixlen <= 30:
            self.add("underlay.cidr", f"/{network.prefixlen} is not a usable underlay",
                     "use a prefix from /8 to /30, e.g. 10.254.0.0/16 for many hosts")
            return None
        if network.overlaps(MANAGEMENT_CIDR) or not _is_unicast_network(network):
            self.add("underlay.cidr", f"{network} cannot be the hosts' network",
                     f"use a unicast range outside {MANAGEMENT_CIDR} (the lab's control network), "
                     "e.g. 192.168.100.0/24 or 10.254.0.0/16")
            return None
        return network

    def hosts(self, raw: dict, underlay: IPv4Network | None) -> dict[str, Host]:
        net = underlay or DEFAULT_UNDERLAY_CIDR
        if len(raw) > MAX_HOSTS:
            self.add("hosts", f"{len(raw)} hosts; vpclab runs at most {MAX_HOSTS}",
                     "each host runs its own Open vSwitch (about 25 MB each)")
        elif underlay is not None and len(raw) > net.num_addresses - 2:
            self.add("hosts", f"{len(raw)} hosts do not fit the underlay {net} "
                              f"({net.num_addresses - 2} addresses)",
                     "set a bigger one, e.g. `underlay: {cidr: 10.254.0.0/16}`")
        wanted: dict[str, IPv4Address | None] = {}
        owner: dict[IPv4Address, str] = {}
        for name, body in raw.items():
            path = f"hosts.{name}"
            body = self.mapping(body, path, HOST_KEYS)
            ip = None
            if "underlay_ip" in body:
                ip = self.underlay_ip(body["underlay_ip"], f"{path}.underlay_ip", underlay)
                if ip is not None and ip in owner:
                    self.add(f"{path}.underlay_ip", f"{ip} is already used by host {owner[ip]}",
                             "every host needs its own underlay IP; omit it to get one assigned")
                    ip = None
                elif ip is not None:
                    owner[ip] = name
            wanted[name] = ip
        free = (ip for ip in net.hosts() if ip not in owner)
        return {name: Host(name, i, ip or next(free, net.network_address))
                for i, (name, ip) in enumerate(wanted.items(), start=1)}

    def underlay_ip(self, value: Any, path: str, underlay: IPv4Network | None) -> IPv4Address | None:
        ip = self.ip(value, path)
        if ip is None or underlay is None:      # a bad underlay was reported already
            return ip
        usable = (ip in underlay and ip not in (underlay.network_address, underlay.broadcast_address))
        if not usable:
            self.add(path, f"{ip} is outside the underlay {underlay}",
                     f"pick an address from {underlay} (the lab's physical network), or set "
                     "`underlay: {cidr: ...}` to the range you want")
            return None
        return ip

    def vpcs(self, raw: dict) -> dict[str, Vpc]:
        cidrs: dict[str, IPv4Network] = {}
        vnis: dict[str, int | None] = {}
        layouts: dict[str, tuple] = {}
        owner: dict[int, str] = {}
        for name, body in raw.items():
            path = f"vpcs.{name}"
            body = self.mapping(body, path, VPC_KEYS, empty_ok=False)
            cidr = self.cidr(body.get("cidr"), f"{path}.cidr") if body else None
            vni = self.vni(body.get("vni"), f"{path}.vni", owner, name) if body else None
            layouts[name] = self.vpc_layout(name, body, cidr) if body else ({}, {})
            if cidr is not None:
                cidrs[name] = cidr
            vnis[name] = vni
        used = set(owner)
        free = (n for n in range(FIRST_VNI, MAX_VNI) if n not in used)
        return {name: Vpc(name, cidrs[name], vnis[name] or next(free), *layouts[name])
                for name in vnis if name in cidrs}

    def network(self, value: Any, path: str, example: str) -> IPv4Network | None:
        if value is None:
            self.add(path, "is missing", f"add e.g. `cidr: {example}`")
            return None
        try:
            network = IPv4Network(str(value), strict=False)
        except (AddressValueError, NetmaskValueError, ValueError):
            self.add(path, f"{value!r} is not an IPv4 CIDR", f"write it like {example}")
            return None
        if str(network) != str(value):
            self.add(path, f"{value} has host bits set", f"did you mean {network}?")
            return None
        return network

    def cidr(self, value: Any, path: str) -> IPv4Network | None:
        """A VPC's CIDR. Any AWS-valid block works, the lab's own networks included: VPC
        addresses live only in VMs and inside tunnels, never beside the underlay."""
        network = self.network(value, path, "10.0.0.0/24")
        if network is None:
            return None
        if not 16 <= network.prefixlen <= 28:
            self.add(path, f"/{network.prefixlen} is outside what a VPC allows",
                     "AWS VPC CIDRs are /16 to /28")
            return None
        if not _is_unicast_network(network):
            self.add(path, f"{network} is not a unicast range a VPC can use",
                     "use a private range such as 10.0.0.0/16, 172.31.0.0/16 or 192.168.0.0/24")
            return None
        return network

    def vni(self, value: Any, path: str, owner: dict[int, str], vpc: str) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_VNI:
            self.add(path, f"{value!r} is not a VNI", f"a whole number from 1 to {MAX_VNI}")
            return None
        if value in owner:
            self.add(path, f"VNI {value} is already used by VPC {owner[value]}",
                     "every VPC needs its own VNI; omit it to get one assigned")
            return None
        owner[value] = vpc
        return value

    def vms(self, value: Any, hosts: dict[str, Host], vpcs: dict[str, Vpc],
            default_ttl: int = DEFAULT_TTL) -> dict[str, Vm]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.add("vms", f"must be a mapping of VM names, got {_kind(value)}")
            return {}
        raw = {n: v for n, v in value.items() if n in self.named_vms(value)}
        for name in [n for n in raw if n in hosts]:
            self.add(f"vms.{name}", f"{name} is already the name of a host",
                     "hosts and VMs share one namespace of names (`vpclab exec LAB NAME`, "
                     "captures, traces): rename the VM, e.g. vm-" + name)
            del raw[name]
        vms: dict[str, Vm] = {}
        seen_ip: dict[tuple[str, IPv4Address], str] = {}
        seen_mac: dict[str, str] = {}
        seen_eni: dict[str, str] = {}
        for index, (name, body) in enumerate(raw.items(), start=1):
            vm = self.vm(name, index, body, hosts, vpcs, default_ttl)
            if vm is None:
                continue
            path = f"vms.{name}"
            if (vm.vpc, vm.ip) in seen_ip:
                self.add(f"{path}.ip", f"{vm.ip} is already used by {seen_ip[vm.vpc, vm.ip]} in {vm.vpc}",
                         "an IP is unique within its VPC (other VPCs may reuse it)")
                continue
            if vm.mac in seen_mac:
                self.add(f"{path}.mac", f"{vm.mac} is already used by {seen_mac[vm.mac]}",
                         "every ENI needs its own MAC; omit it to get one generated")
                continue
            if vm.eni in seen_eni:
                self.add(f"{path}.eni", f"{vm.eni} is already used by {seen_eni[vm.eni]}",
                         "every ENI id is unique; omit it to get one generated")
                continue
            seen_ip[vm.vpc, vm.ip], seen_mac[vm.mac], seen_eni[vm.eni] = name, name, name
            vms[name] = vm
        return vms

    def named_vms(self, value: dict) -> set[str]:
        good = set()
        for name in value:
            if is_display_name(name):
                good.add(name)
            else:
                self.add(f"vms.{name}", "bad name", DISPLAY_NAME_RULE)
        return good

    def vm(self, name: str, index: int, body: Any, hosts: dict[str, Host],
           vpcs: dict[str, Vpc], default_ttl: int = DEFAULT_TTL) -> Vm | None:
        path = f"vms.{name}"
        body = self.mapping(body, path, VM_KEYS, empty_ok=False)
        if not body:
            if isinstance(body, dict):
                self.add(path, "is empty", "every VM needs vpc, host and ip")
            return None
        ok = True
        for key in ("vpc", "host", "ip"):
            if key not in body:
                self.add(f"{path}.{key}", "is missing", "every VM needs vpc, host and ip")
                ok = False
        vpc_name, host = body.get("vpc"), body.get("host")
        for key, value, known, what in (("vpc", vpc_name, vpcs, "VPC"), ("host", host, hosts, "host")):
            if key not in body:
                continue
            if not isinstance(value, str):
                self.add(f"{path}.{key}", f"must be a {what} name, got {_kind(value)}",
                         f"known: {', '.join(known) or 'none defined'}")
                ok = False
            elif value not in known:
                self.add(f"{path}.{key}", f"unknown {what} {value!r}", _did_you_mean(value, list(known)))
                ok = False
        ip = self.ip(body["ip"], f"{path}.ip") if "ip" in body else None
        vpc = vpcs.get(vpc_name) if isinstance(vpc_name, str) else None
        fits, subnet = self.vm_place(body, path, vpc, ip) if vpc else (True, None)
        dhcp = self.vm_dhcp(body, path, vpc)
        ok = ok and fits and dhcp is not None
        mac = self.mac(body.get("mac"), f"{path}.mac")
        eni = body.get("eni")
        if eni is not None and (not isinstance(eni, str) or not ENI.fullmatch(eni)):
            self.add(f"{path}.eni", f"{eni!r} is not an ENI id", "write it like eni-0b2c (eni- and up to 17 hex digits)")
            ok = False
        check = body.get("source_dest_check", True)
        if not isinstance(check, bool):
            self.add(f"{path}.source_dest_check", f"{check!r} is not true or false",
                     "false lets a NAT or appliance VM send and receive traffic not its own")
            ok = False
        ttl = self.ttl(body.get("ttl", default_ttl), f"{path}.ttl", default_ttl)
        if not ok or ip is None or mac is False:
            return None
        return Vm(name, index, vpc_name, host, ip, mac or default_mac(vpc_name, name),
                  eni or default_eni(vpc_name, name), check, ttl, subnet, bool(dhcp))

    def ip_fits(self, ip: IPv4Address, vpc: Vpc, path: str, subnet: Subnet | None = None) -> bool:
        """In the VPC, and not one of the addresses AWS reserves in its subnet (the VPC's
        CIDR when it has no subnets): the network, .1 (the router), .2 (DNS), .3, and the
        broadcast address."""
        net = vpc.cidr
        if ip not in net:
            self.add(path, f"{ip} is outside {vpc.name} ({net})",
                     f"pick an address in {net[4]}-{net[-2]}")
            return False
        net = subnet.cidr if subnet else net
        where = f"subnet {subnet.name} ({net})" if subnet else str(net)
        if ip < net[4] or ip == net[-1]:
            self.add(path, f"{ip} is reserved by AWS in {where}",
                     f"the first four ({net[0]}-{net[3]}) and the last ({net[-1]}) addresses are "
                     f"reserved; pick one in {net[4]}-{net[-2]}")
            return False
        return True

    def mac(self, value: Any, path: str) -> str | None | bool:
        """The MAC in canonical lower case, None if absent, False if bad."""
        if value is None:
            return None
        text = str(value).lower()
        if not MAC.fullmatch(text):
            self.add(path, f"{value!r} is not a MAC address",
                     "write it like 02:00:5e:ad:58:40 (quote it in YAML)")
            return False
        if int(text[:2], 16) & 1 or text == "00:00:00:00:00:00":
            self.add(path, f"{text} is not a unicast MAC", "the first byte must be even, e.g. 02:...")
            return False
        if text == ROUTER_MAC:
            self.add(path, f"{text} is the VPC router's own MAC (every subnet's .1)",
                     "give the VM another MAC, or leave `mac` out for a generated one")
            return False
        return text


def _is_unicast_network(network: IPv4Network) -> bool:
    return not (network.is_multicast or network.is_loopback or network.is_link_local
                or network.is_unspecified or network.is_reserved)


def _kind(value: Any) -> str:
    return {type(None): "nothing", bool: "true/false", int: "a number", float: "a number",
            str: "text", list: "a list", dict: "a mapping"}.get(type(value), type(value).__name__)
