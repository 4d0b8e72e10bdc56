"""The VPC router, for real, in both mapping modes (topologies/vpc-router.yaml): app-1's
subnet routes web's through fw, a firewall appliance on another host; every subnet's .1 is
answered on the host; the router never shows in a traceroute, the appliance does; a route
removed bypasses the appliance; a deleted target is a blackhole until it is back; app-1
gets its address by DHCP and names from the VPC's .2, all answered on its host."""
import hashlib
import re
from pathlib import Path

import pytest
import yaml

from tests.integration.labtools import REPO
from vpclab.running import dhcp_client
from vpclab.running.ovs import TOOLS
from vpclab.model.topology import ROUTER_MAC

TOPOLOGY = REPO / "topologies" / "vpc-router.yaml"
TRACES = REPO / "traces" / "vpc-router"
WEB, FW, APP = "10.50.1.10", "10.50.9.9", "10.50.2.20"
MACHINE_RESOLV = hashlib.sha256(Path("/etc/resolv.conf").read_bytes()).hexdigest()  # before any lab


def lookup(lab, vm: str, call: str) -> str:
    """A name lookup through the VM's own resolver (glibc, /etc/resolv.conf): its answer, or
    the error's name."""
    code = (f"import socket\ntry: print(socket.{call})\n"
            "except OSError as e: print(type(e).__name__, e.args[0])")
    return lab.exec(vm, "python3", "-c", code).stdout.strip()


@pytest.fixture(scope="module", params=["on-demand", "preload", "on-demand-vxlan"])
def lab(request, vpclab_module_lab):
    mode, _, encap = request.param.partition("-vxlan")
    raw = yaml.safe_load(TOPOLOGY.read_text())
    raw["encap"] = "vxlan" if request.param.endswith("vxlan") else "geneve"
    name = {"on-demand": "vpcr-od", "preload": "vpcr-pre", "on-demand-vxlan": "vpcr-vx"}
    return vpclab_module_lab(raw, name=name[request.param], mode=mode)


def test_app_reaches_web_through_the_firewall(lab, tmp_path):
    lab.exec("app-1", "ip", "neigh", "flush", "dev", "eth0")
    with lab.capture(["app-1", "fw", "web-1", "hv-c:eth0"], tmp_path, filter="icmp or arp") as cap:
        ping = lab.exec("app-1", "ping", "-n", "-c", "1", "-W", "2", WEB)
    assert ping.ok, ping.stdout + ping.stderr
    seen = cap.lines()
    app, fw, web = ("\n".join(seen[p]) for p in ("app-1", "fw", "web-1"))
    # the gateway answered with the router's MAC, on the host: no ARP on the underlay
    assert f"Request who-has 10.50.2.1 tell {APP}" in app
    assert f"Reply 10.50.2.1 is-at {ROUTER_MAC}" in app
    assert not [line for line in seen["hv-c:eth0"] if "ARP" in line]
    # the request went through fw (in and out of its one NIC); the reply did not (web's
    # subnet routes locally, as AWS does: the example's routing is one-way)
    assert len(re.findall(rf"{APP} > {WEB}: ICMP echo request", fw)) == 2
    assert "echo reply" not in fw
    assert f"{APP} > {WEB}: ICMP echo request" in web
    assert f"{WEB} > {APP}: ICMP echo reply" in app


def test_traceroute_shows_the_appliance_and_not_the_router(lab):
    trace = lab.exec("app-1", "traceroute", "-n", "-I", "-q", "1", "-w", "2", "-m", "4", WEB)
    hops = re.findall(r"^\s*(\d+)\s+(\S+)", trace.stdout, re.MULTILINE)
    assert hops == [("1", FW), ("2", WEB)], trace.stdout
    assert "10.50.2.1" not in trace.stdout


def test_routes_show_the_tables_and_who_caches_them(lab):
    lab.exec("app-1", "ping", "-n", "-c", "1", "-W", "2", WEB)
    rows = {(r["vpc"], r["table"], r["destination"]): r for r in lab.routes()}
    via_fw = rows[("shop", "via-fw", "10.50.1.0/24")]
    assert (via_fw["target"], via_fw["target_ip"], via_fw["state"]) == ("fw", FW, "active")
    assert rows[("shop", "main", "10.50.0.0/16")]["subnets"] == ["dmz", "web"]
    assert rows[("staging", "main", "10.50.0.0/16")]["subnets"] == ["web"]
    if lab.topology.mapping_mode == "preload":
        assert via_fw["cached_on"] is None
    else:
        assert via_fw["cached_on"] == ["hv-c"]          # only app-1's router asked


def test_a_route_removed_bypasses_the_appliance_and_invalidates_only_where_cached(lab, tmp_path):
    assert lab.ping("app-1", WEB)
    report = lab.delete_route("via-fw", "10.50.1.0/24")
    try:
        if lab.topology.mapping_mode == "on-demand":
            assert report.invalidated == ["hv-c"]
        with lab.capture(["fw", "web-1"], tmp_path, filter="icmp") as cap:
            assert lab.ping("app-1", WEB)
        assert cap.lines()["fw"] == [] and cap.lines()["web-1"]
    finally:
        lab.add_route("via-fw", "10.50.1.0/24", "fw")
    with lab.capture(["fw"], tmp_path / "again", filter="icmp") as cap:
        assert lab.ping("app-1", WEB)
    assert any(f"{APP} > {WEB}" in line for line in cap.lines()["fw"])


def test_a_deleted_target_is_a_blackhole_until_it_is_back(lab):
    assert lab.ping("app-1", WEB)
    lab.delete_vm("fw")
    try:
        states = {(r["table"], r["destination"]): r["state"] for r in lab.routes()}
        assert states[("via-fw", "10.50.1.0/24")] == "blackhole"
        assert not lab.ping("app-1", WEB, wait=1)
    finally:
        lab.add_vm("fw", vpc="shop", host="hv-b", ip=FW, source_dest_check=False)
    states = {(r["table"], r["destination"]): r["state"] for r in lab.routes()}
    assert states[("via-fw", "10.50.1.0/24")] == "active"
    assert lab.ping("app-1", WEB, count=2)


def test_every_flow_of_the_vpc_router_is_explained(lab):
    assert lab.ping("app-1", WEB)
    for host in ("hv-a", "hv-b", "hv-c"):
        lines = lab.flows(host)
        assert [str(line) for line in lines if not line.known] == [], host
        stages = {line.stage for line in lines}
        assert {"ROUTE", "NEXTHOP"} <= stages
    texts = "\n".join(str(line) for line in lab.flows("hv-c"))
    assert f"10.50.2.1 in shop is-at {ROUTER_MAC} (the VPC router: subnet app's .1)" in texts
    assert "DNS from app-1" in texts and "DHCP from app-1" in texts


def test_the_first_ping_matches_the_documented_traces(lab, tmp_path):
    """A fresh lab (cold caches and ARP): app-1 -> fw -> web-1 as traces/vpc-router/ says."""
    raw = yaml.safe_load(TOPOLOGY.read_text())
    raw["encap"] = lab.topology.encap
    fresh = lab.__class__(raw, name=f"{lab.name}-t", mode=lab.topology.mapping_mode)
    with fresh:
        with fresh.capture(["app-1", "fw", "web-1"], tmp_path, filter="icmp or arp") as cap:
            assert fresh.exec("app-1", "ping", "-n", "-c", "1", "-W", "2", WEB).ok
        comparison = cap.compare(TRACES)
    assert comparison.match, str(comparison)


def test_the_dhcp_vm_booted_with_the_mapping_s_address_and_the_vpc_s_resolver(lab):
    assert f"inet {APP}/24 " in lab.exec("app-1", "ip", "-4", "addr", "show", "eth0").stdout
    assert lab.exec("app-1", "ip", "route", "show", "default").stdout.startswith(
        "default via 10.50.2.1 dev eth0")
    resolv = lab.exec("app-1", "cat", "/etc/resolv.conf").stdout
    assert "nameserver 10.50.0.2" in resolv and "search shop.internal" in resolv
    # the client wrote the VM's own files only: the machine's resolver is untouched
    assert hashlib.sha256(Path("/etc/resolv.conf").read_bytes()).hexdigest() == MACHINE_RESOLV


def test_a_dhcp_exchange_is_answered_on_the_host_and_never_crosses_the_underlay(lab, tmp_path):
    script = lab.state.dir / TOOLS / dhcp_client.SCRIPT_NAME
    with lab.capture(["app-1", "hv-c:eth0"], tmp_path) as cap:
        done = lab.exec("app-1", *dhcp_client.command(script))
    assert done.ok, done.stdout + done.stderr
    comparison = cap.compare(TRACES / "dhcp")
    assert comparison.match, str(comparison)
    assert lab.ping("app-1", WEB)                   # its address and route are back


def test_the_vpc_s_resolver_answers_its_own_names_only(lab):
    assert lookup(lab, "app-1", "gethostbyname('web-1.shop.internal')") == WEB
    assert lookup(lab, "app-1", "gethostbyname('ip-10-50-9-9.internal')") == FW
    assert lookup(lab, "app-1", "gethostbyname('web-1')") == WEB          # the DHCP search domain
    assert lookup(lab, "app-1", "gethostbyaddr('10.50.1.10')[0]") == "web-1.shop.internal"
    assert lookup(lab, "app-1", "gethostbyname('nosuch.example')").startswith("gaierror")
    # staging reuses shop's addresses: its names are not shop's, and not visible from shop
    assert lookup(lab, "app-1", "gethostbyname('stg-web.staging.internal')").startswith("gaierror")
    assert lookup(lab, "stg-web", "gethostbyname('stg-web.staging.internal')") == WEB
    assert lookup(lab, "stg-web", "gethostbyname('web-1.shop.internal')").startswith("gaierror")


def test_isolation_holds_with_subnets(lab, tmp_path):
    """stg-web has web-1's address, on app-1's own host: app-1's ping reaches web-1 only."""
    with lab.capture(["web-1", "stg-web"], tmp_path, filter="icmp") as cap:
        assert lab.ping("app-1", WEB)
    assert cap.lines()["web-1"] and cap.lines()["stg-web"] == []


def test_only_the_appliance_may_forward_for_others(lab, tmp_path):
    """Anti-spoofing still holds behind the VPC router: web-1 (its check on) speaking as an
    address not its own is dropped at its own port; fw (check off) forwards for app-1."""
    assert lab.ping("web-1", FW)          # web-1 knows its gateway: no ARP from .99 below
    lab.exec("web-1", "ip", "addr", "add", "10.50.1.99/32", "dev", "eth0", check=True)
    try:
        with lab.capture(["web-1", "fw"], tmp_path, filter="icmp") as cap:
            lab.exec("web-1", "ping", "-n", "-c", "2", "-i", "0.2", "-W", "1", "-I",
                     "10.50.1.99", FW)
        sent = [line for line in cap.lines()["web-1"] if f"10.50.1.99 > {FW}: ICMP echo request" in line]
        assert len(sent) == 2 and cap.lines()["fw"] == []   # sent, and never left web-1's host
    finally:
        lab.exec("web-1", "ip", "addr", "del", "10.50.1.99/32", "dev", "eth0")
    assert lab.ping("app-1", WEB) and lab.ping("web-1", FW)
