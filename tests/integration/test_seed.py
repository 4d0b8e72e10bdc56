"""The seed's first ping, in both mapping modes: the documented order at both VMs."""
import pytest

from tests.integration.labtools import REPO, SEED, dump_flows
from vpclab.packets.diagram import build_sequence
from vpclab.router.pipeline import mapping_cookie
from vpclab.packets.trace import normalise

TRACES = REPO / "traces" / "seed"
VM1_EXPECTED = [
    "ARP request who-has 10.0.0.185 tell 10.0.0.148",
    "ARP reply 10.0.0.185 is-at 02:93:0e:03:bb:88",
    "ICMP echo request 10.0.0.148 > 10.0.0.185",
    "ICMP echo reply 10.0.0.185 > 10.0.0.148",
]
VM2_EXPECTED = [
    "ICMP echo request 10.0.0.148 > 10.0.0.185",
    "ARP request who-has 10.0.0.148 tell 10.0.0.185",
    "ARP reply 10.0.0.148 is-at 02:00:5e:ad:58:40",
    "ICMP echo reply 10.0.0.185 > 10.0.0.148",
]


@pytest.mark.parametrize("mode", ["on-demand", "preload"])
def test_first_ping_has_the_seed_order_at_both_vms(vpclab_lab, tmp_path, mode):
    lab = vpclab_lab(SEED, mode=mode)
    with lab.capture(["ZIGI-VM1", "ZIGI-VM2"], tmp_path, filter="icmp or arp") as cap:
        ping = lab.exec("ZIGI-VM1", "ping", "-c", "1", "10.0.0.185")
    assert ping.returncode == 0, ping.stdout + ping.stderr
    captured = cap.lines()
    assert normalise(captured["ZIGI-VM1"]) == VM1_EXPECTED
    assert normalise(captured["ZIGI-VM2"]) == VM2_EXPECTED
    # the comparison script agrees, on the pcaps, against the documented traces
    result = cap.compare(TRACES)
    assert [(r.point, r.matches) for r in result.points] == [("ZIGI-VM1:eth0", True), ("ZIGI-VM2:eth0", True)]
    assert result.match and "verdict: match (2 capture point(s))" in str(result)
    # and the diagram tells the same story, with the mapping service only in on-demand mode
    seq = build_sequence(tmp_path)
    assert seq.lanes == ["ZIGI-VM1", "router host1", "mapping service", "router host2", "ZIGI-VM2"]
    vm_side = [a.label for a in seq.arrows if a.kind == "packet"]
    assert vm_side == [VM1_EXPECTED[0], VM1_EXPECTED[1], VM1_EXPECTED[2]] + VM2_EXPECTED + [VM1_EXPECTED[3]]
    lookups = [a for a in seq.arrows if a.kind == "lookup"]
    assert [a.src for a in lookups] == (["router host1", "router host2"] if mode == "on-demand" else [])


def test_on_demand_caches_each_entry_only_where_it_is_used(vpclab_lab):
    lab = vpclab_lab(SEED, mode="on-demand")
    from ipaddress import IPv4Address
    vm1_cookie = f"cookie=0x{mapping_cookie(1001, IPv4Address('10.0.0.148')):x}"
    vm2_cookie = f"cookie=0x{mapping_cookie(1001, IPv4Address('10.0.0.185')):x}"
    assert vm2_cookie not in dump_flows(lab, "host1")      # nothing cached before use
    assert lab.ping("ZIGI-VM1", "10.0.0.185")
    host1, host2 = dump_flows(lab, "host1"), dump_flows(lab, "host2")
    assert vm2_cookie in host1 and vm1_cookie not in host1   # host1 asked for VM2 only
    assert vm1_cookie in host2 and vm2_cookie not in host2   # host2 asked for VM1 only
    assert "idle_timeout=300" in host1
    misses = [e for e in lab.state.events.read() if e["event"] == "miss"]
    assert {(e["host"], e["target"], e["answer"]) for e in misses} == {
        ("host1", "10.0.0.185", "02:93:0e:03:bb:88"), ("host2", "10.0.0.148", "02:00:5e:ad:58:40")}


def test_preload_needs_no_mapping_service_round_trip(vpclab_lab):
    lab = vpclab_lab(SEED, mode="preload")
    from ipaddress import IPv4Address
    assert f"cookie=0x{mapping_cookie(1001, IPv4Address('10.0.0.185')):x}" in dump_flows(lab, "host1")
    assert lab.ping("ZIGI-VM1", "ZIGI-VM2")
    assert not [e for e in lab.state.events.read() if e["event"] == "miss"]
