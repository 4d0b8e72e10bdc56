"""`vpclab flows` and `vpclab trace` on real routers: the seed's first ping read back from the
flow tables that carried it, and each verdict of a trace against what the router really holds."""
from __future__ import annotations

import json
import re
import subprocess

import pytest
import yaml

from vpclab import VpclabError
from tests.integration.labtools import MULTI_VPC, SEED, VPCLAB
from tests.unit.test_source_dest_check import NAT_LAB

FAULT = "priority=150,cookie=0x700000000000000"      # how classroom exercise 07 injects one


def cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([*VPCLAB, *argv], capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def seed(vpclab_module_lab):
    """The seed, traced once before its first ping (nothing cached yet), then pinged."""
    lab = vpclab_module_lab(SEED)
    before = {"out": lab.trace("ZIGI-VM1", "10.0.0.185"),
              "in": lab.trace(None, "10.0.0.185", from_host="host1")}
    assert lab.ping("ZIGI-VM1", "ZIGI-VM2")
    return lab, before


def by_stage(lines, stage: str) -> list:
    return [x for x in lines if x["stage"] == stage]


def test_flows_show_the_first_pings_entries_with_their_counts(seed):
    lab, _ = seed
    vm1, vm2 = lab.topology.vms["ZIGI-VM1"], lab.topology.vms["ZIGI-VM2"]
    done = cli("flows", lab.name, "host1", "--json")
    assert done.returncode == 0, done.stderr
    host1 = json.loads(done.stdout)["flows"]
    (arp,) = [x for x in by_stage(host1, "ARP") if x["text"].startswith(f"10.0.0.185 in ZIGI-VPC1 is-at {vm2.mac} (ZIGI-VM2, cached")]
    # the first request was answered by the mapping service itself (the entry's reply, sent
    # before the entry was installed): the cached entry has answered nothing yet
    assert arp["n_packets"] == 0 and arp["idle_timeout"] == 300
    (forward,) = [x for x in by_stage(host1, "FORWARD") if x["text"].startswith("to ZIGI-VM2: Geneve vni 1001")]
    assert "to host2 (192.168.100.2)" in forward["text"] and forward["n_packets"] >= 1
    assert all(x["explained"] for x in host1)
    host2 = lab.flows("host2")
    (check,) = [x for x in host2 if x.stage == "CHECK" and x.text.startswith("from host1: ZIGI-VM1 (eni ")]
    assert "trusted" in check.text
    text = cli("flows", lab.name, "host1").stdout
    assert any(x.startswith(f"FORWARD  to ZIGI-VM2: Geneve vni 1001")
               and re.search(r" [1-9]\d* pkts?$", x.rstrip()) for x in text.splitlines()), text
    assert any(x.startswith(f"ARP      10.0.0.185 in ZIGI-VPC1 is-at {vm2.mac} (ZIGI-VM2")
               and x.rstrip().endswith(" 0 pkts") for x in text.splitlines()), text
    raw = cli("flows", lab.name, "host2", "--raw").stdout
    assert f"nw_src={vm1.ip}" in raw and "cookie=0x10003e9" in raw


def test_trace_before_the_first_ping_is_a_miss(seed):
    _, before = seed
    assert (before["out"].verdict.kind, before["out"].verdict.reason) == ("miss", "knows")
    assert "it would be asked where 10.0.0.185 is in ZIGI-VPC1" in before["out"].verdict.text
    assert (before["in"].verdict.kind, before["in"].verdict.reason) == ("miss", "verified")


def test_trace_after_the_first_ping_goes_through_the_tunnel(seed):
    lab, _ = seed
    done = cli("trace", lab.name, "ZIGI-VM1", "--to", "10.0.0.185")
    assert done.returncode == 0, done.stderr
    assert "verdict: sent through the tunnel to host2 (192.168.100.2): Geneve vni 1001 (ZIGI-VPC1), ENI " \
           "option" in done.stdout
    result = json.loads(cli("trace", lab.name, "ZIGI-VM1", "--to", "ZIGI-VM2", "--json").stdout)
    assert result["verdict"]["kind"] == "tunnel" and result["verdict"]["details"]["host"] == "host2"
    keys = {m["ip"]: m["eni_key"] for m in lab.mappings()}
    assert result["verdict"]["details"]["eni_option"] == [keys["10.0.0.148"], keys["10.0.0.185"]]
    assert [s["stage"] for s in result["stages"]] == ["CLASSIFY", "FORWARD"]


def test_a_forged_source_is_dropped_by_anti_spoofing(seed):
    lab, _ = seed
    for forged in ({"src": "10.0.0.99"}, {"src_mac": "02:00:00:00:00:99"}):
        result = lab.trace("ZIGI-VM1", "10.0.0.185", **forged)
        assert (result.verdict.kind, result.verdict.reason) == ("dropped", "anti-spoofing"), result
        assert [s.stage for s in result.stages] == ["CLASSIFY"]


def test_an_unknown_address_is_asked_once_then_silence(seed):
    lab, _ = seed
    first = lab.trace("ZIGI-VM1", "10.0.0.99")
    assert (first.verdict.kind, first.verdict.reason) == ("miss", "unknown")
    assert "who has 10.0.0.99 in ZIGI-VPC1" in first.verdict.text and "silence" in first.verdict.text
    lab.exec("ZIGI-VM1", "ping", "-c", "1", "-W", "1", "10.0.0.99")      # the router asks, for real
    then = lab.trace("ZIGI-VM1", "10.0.0.99")
    assert (then.verdict.kind, then.verdict.reason) == ("dropped", "unknown destination"), then
    assert any(x.text.startswith("who-has 10.0.0.99 in ZIGI-VPC1: unknown") for x in lab.flows("host1"))


def test_an_arp_request_is_answered_by_the_router(seed):
    lab, _ = seed
    result = lab.trace("ZIGI-VM1", "10.0.0.185", proto="arp")
    mac = lab.topology.vms["ZIGI-VM2"].mac
    assert result.verdict.kind == "answered" and f"10.0.0.185 is-at {mac}" in result.verdict.text


def test_the_receiving_side(seed):
    lab, _ = seed
    done = cli("trace", lab.name, "--from-host", "host1", "--to", "10.0.0.185")
    assert done.returncode == 0, done.stderr
    assert "verdict: delivered to ZIGI-VM2 (port 102) on host2" in done.stdout
    forged = lab.trace(None, "10.0.0.185", from_host="host1", src="10.0.0.99")
    assert (forged.verdict.kind, forged.verdict.reason) == ("miss", "refused"), forged
    wrong = cli("trace", lab.name, "--from-host", "host2", "--to", "10.0.0.185")
    assert wrong.returncode == 2 and "lives on host2 itself" in wrong.stderr


def test_names_are_checked(seed):
    lab, _ = seed
    for argv, said in ((["flows", lab.name, "ZIGI-VM1"], "is a VM, not a host"),
                       (["flows", lab.name, "../h1"], "not a valid host name"),
                       (["trace", lab.name, "NOPE", "--to", "10.0.0.185"], "no VM 'NOPE'"),
                       (["trace", lab.name, "ZIGI-VM1", "--to", "10.0.0.185", "--proto", "sctp"],
                        "not a protocol")):
        done = cli(*argv)
        assert done.returncode == 2 and said in done.stderr and "Traceback" not in done.stderr


def test_vxlan_tunnel_and_delivery(vpclab_lab, tmp_path):
    topology = yaml.safe_load(SEED.read_text()) | {"encap": "vxlan"}
    lab = vpclab_lab(topology)
    assert lab.ping("ZIGI-VM1", "ZIGI-VM2")
    out = lab.trace("ZIGI-VM1", "10.0.0.185")
    assert out.verdict.kind == "tunnel" and out.verdict.text.endswith("VXLAN vni 1001 (ZIGI-VPC1)")
    arrive = lab.trace(None, "10.0.0.185", from_host="host1")
    assert arrive.verdict.kind == "delivered" and arrive.verdict.details["vm"] == "ZIGI-VM2"
    assert any(x.text.startswith("from host1: 10.0.0.148 (ZIGI-VM1) trusted") for x in lab.flows("host2"))


def add_flow(lab, host: str, flow: str) -> None:
    done = lab.exec(host, "ovs-ofctl", "add-flow", "br-int", flow)       # as a person would
    assert done.ok, done.stderr


def test_a_foreign_flow_decides_and_is_named(seed):
    lab, _ = seed
    vm2 = lab.nodes()["ZIGI-VM2"]
    try:
        add_flow(lab, "host1", f"table=20,{FAULT},ip,nw_dst=10.0.0.185,actions=drop")
        drop = lab.trace("ZIGI-VM1", "10.0.0.185")
        assert (drop.verdict.kind, drop.verdict.reason) == ("dropped", "foreign flow"), drop
        assert drop.verdict.text.startswith("dropped by a flow vpclab did not install: table=20,priority=150")
        assert "unknown destination" not in drop.verdict.text
        lab.exec("host1", "ovs-ofctl", "del-flows", "br-int", "cookie=0x700000000000000/-1")
        add_flow(lab, "host1", f"table=20,{FAULT},ip,metadata=0x3e9,nw_dst=10.0.0.185,actions="
                               "set_field:0x3ea->tun_id,set_field:192.168.100.2->tun_dst,"
                               f"set_field:{vm2['eni_key']:#x}->tun_metadata0,"
                               "move:NXM_NX_REG0[]->NXM_NX_TUN_METADATA0[32..63],output:1")
        vni = lab.trace("ZIGI-VM1", "ZIGI-VM2")
        assert (vni.verdict.kind, vni.verdict.reason, vni.verdict.details["vni"]) == ("tunnel", "foreign flow", 1002)
        assert "the wrong VNI: ZIGI-VPC1's is 1001" in vni.verdict.text and vni.next == ""
    finally:
        lab.exec("host1", "ovs-ofctl", "del-flows", "br-int", "cookie=0x700000000000000/-1")
    assert lab.trace("ZIGI-VM1", "10.0.0.185").verdict.reason == ""      # vpclab's own again


def test_what_the_vms_own_routes_never_send(seed):
    lab, _ = seed
    for to, reason, said in (("8.8.8.8", "no route", "ZIGI-VM1 has no route to 8.8.8.8 (ip route get: "
                                                     "Network is unreachable)"),
                             ("ZIGI-VM1", "own address", "10.0.0.148 is the VM's own address")):
        result = lab.trace("ZIGI-VM1", to)
        assert (result.verdict.kind, result.verdict.reason) == ("not sent", reason), result
        assert result.verdict.text.startswith(f"not sent: {said}") and result.stages == ()
    done = cli("trace", lab.name, "ZIGI-VM1", "--to", "8.8.8.8")
    assert done.returncode == 0 and "verdict: not sent: ZIGI-VM1 has no route to 8.8.8.8" in done.stdout
    for bad in ({"src_mac": 5}, {"proto": "tcp:\uff10\uff18"}, {"src": 10}):
        with pytest.raises(VpclabError):
            lab.trace("ZIGI-VM1", "10.0.0.185", **bad)


def test_another_vpc_and_overlapping_addresses(vpclab_lab):
    lab = vpclab_lab(MULTI_VPC)
    assert lab.ping("ZIGI-VM1", "ZIGI-VM2") and lab.ping("OTHER-VM1", "OTHER-VM2")
    named = lab.trace("ZIGI-VM1", "OTHER-VM2")          # OTHER-VM2 has ZIGI-VM2's address
    assert named.verdict.kind == "tunnel" and named.verdict.details["vni"] == 1001
    assert "OTHER-VM2 is in ZIGI-VPC2, not ZIGI-VM1's ZIGI-VPC1" in named.probe.notes[0]
    assert named.verdict.text.endswith("(this is 10.0.0.185 of ZIGI-VPC1, not OTHER-VM2 of ZIGI-VPC2)")
    arrive = lab.trace(None, "OTHER-VM2", from_host="host1")
    assert (arrive.verdict.kind, arrive.verdict.details["vm"], arrive.probe.sender) == \
        ("delivered", "OTHER-VM2", "OTHER-VM1")
    other = lab.trace("ZIGI-VM1", "10.0.0.77")             # OTHER-VM3's: on ZIGI-VM1's subnet
    assert (other.verdict.kind, other.verdict.reason) == ("miss", "unknown")
    assert "10.0.0.77 is OTHER-VM3 in ZIGI-VPC2: another VPC" in other.verdict.text
    web = lab.trace("ZIGI-VM1", "WEB-VM1")                 # ZIGI-VPC3's subnet: no route at all
    assert (web.verdict.kind, web.verdict.reason) == ("not sent", "no route"), web
    ambiguous = cli("trace", lab.name, "--from-host", "host3", "--to", "10.0.0.185")
    assert ambiguous.returncode == 2 and "name the VM" in ambiguous.stderr


def test_a_moved_vm_is_traced_to_its_new_host(vpclab_lab):
    lab = vpclab_lab(MULTI_VPC)
    assert lab.ping("ZIGI-VM1", "ZIGI-VM2")
    lab.move("ZIGI-VM2", "host3")
    assert lab.ping("ZIGI-VM1", "ZIGI-VM2")
    out = lab.trace("ZIGI-VM1", "ZIGI-VM2")
    assert (out.verdict.kind, out.verdict.details["host"], out.verdict.details.get("wrong")) == \
        ("tunnel", "host3", None), out
    assert out.next == f"vpclab trace {lab.name} ZIGI-VM1 --from-host host1 --to 10.0.0.185"
    arrive = lab.trace("ZIGI-VM1", "10.0.0.185", from_host="host1")
    assert (arrive.probe.router, arrive.verdict.kind) == ("host3", "delivered"), arrive


def test_a_packet_through_a_nat_appliance(vpclab_lab, tmp_path):
    topology = tmp_path / "nat.yaml"
    topology.write_text(NAT_LAB)
    lab = vpclab_lab(topology)
    assert lab.exec("CLIENT", "ip", "route", "add", "10.9.9.0/24", "via", "10.0.0.20").ok
    lab.exec("CLIENT", "ping", "-c", "1", "-W", "1", "10.9.9.9")         # caches NAT's entry
    out = lab.trace("CLIENT", "10.9.9.9")
    assert out.verdict.kind == "tunnel" and out.verdict.details["host"] == "host2", out
    assert out.probe.notes == ("CLIENT routes 10.9.9.9 via 10.0.0.20 (NAT)",)
    assert out.next == f"vpclab trace {lab.name} CLIENT --from-host host1 --to 10.9.9.9"
    done = cli(*out.next.split()[1:])
    assert done.returncode == 0, done.stderr
    assert "verdict: delivered to NAT (port 102) on host2" in done.stdout


def test_preload_mode_tunnels_from_the_first_packet(vpclab_lab):
    topology = yaml.safe_load(SEED.read_text()) | {"mapping": {"mode": "preload"}}
    lab = vpclab_lab(topology)
    out = lab.trace("ZIGI-VM1", "ZIGI-VM2")                 # nothing pinged: preloaded already
    assert out.verdict.kind == "tunnel" and out.verdict.details["host"] == "host2", out
    assert "preloaded by the mapping service" in out.stages[-1].text
    arrive = lab.trace(None, "10.0.0.185", from_host="host1")
    assert arrive.verdict.kind == "delivered" and arrive.verdict.details["vm"] == "ZIGI-VM2"
