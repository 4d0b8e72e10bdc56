"""`vpclab flows` and `vpclab trace` on real routers: the seed's first ping read back from the
flow tables that carried it, and each verdict of a trace against what the router really holds."""
from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from tests.integration.labtools import SEED, VPCLAB


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
    assert arp["n_packets"] >= 1 and arp["idle_timeout"] == 300
    (forward,) = [x for x in by_stage(host1, "FORWARD") if x["text"].startswith("to ZIGI-VM2: Geneve vni 1001")]
    assert "to host2 (192.168.100.2)" in forward["text"] and forward["n_packets"] >= 1
    assert all(x["explained"] for x in host1)
    host2 = lab.flows("host2")
    (check,) = [x for x in host2 if x.stage == "CHECK" and x.text.startswith("from host1: ZIGI-VM1 (eni ")]
    assert "trusted" in check.text
    text = cli("flows", lab.name, "host1").stdout
    assert any(x.startswith(f"ARP      10.0.0.185 in ZIGI-VPC1 is-at {vm2.mac} (ZIGI-VM2")
               and x.rstrip().endswith("1 pkt") for x in text.splitlines()), text
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
