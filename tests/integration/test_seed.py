"""The seed's first ping, in both mapping modes: the documented order at both VMs."""
import pytest

from tests.integration.labtools import REPO, SEED, dump_flows
from vpclab.capture import capture_during
from vpclab.compare import compare_traces
from vpclab.diagram import build_sequence
from vpclab.pipeline import mapping_cookie
from vpclab.trace import normalise

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
def test_first_ping_has_the_seed_order_at_both_vms(labs, tmp_path, mode):
    state, plan = labs.up(SEED, mode[:3], mode)
    ping, captured = capture_during(state, ["ZIGI-VM1", "ZIGI-VM2"], tmp_path, "ZIGI-VM1",
                                    ["ping", "-c", "1", "10.0.0.185"], "icmp or arp")
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert normalise(captured["ZIGI-VM1"]) == VM1_EXPECTED
    assert normalise(captured["ZIGI-VM2"]) == VM2_EXPECTED
    # the comparison script agrees, on the pcaps, against the documented traces
    results = compare_traces(tmp_path, TRACES, plan.topology)
    assert [(r.point, r.matches) for r in results] == [("ZIGI-VM1:eth0", True), ("ZIGI-VM2:eth0", True)]
    # and the diagram tells the same story, with the mapping service only in on-demand mode
    seq = build_sequence(tmp_path)
    assert seq.lanes == ["ZIGI-VM1", "router host1", "mapping service", "router host2", "ZIGI-VM2"]
    vm_side = [a.label for a in seq.arrows if a.kind == "packet"]
    assert vm_side == [VM1_EXPECTED[0], VM1_EXPECTED[1], VM1_EXPECTED[2]] + VM2_EXPECTED + [VM1_EXPECTED[3]]
    lookups = [a for a in seq.arrows if a.kind == "lookup"]
    assert [a.src for a in lookups] == (["router host1", "router host2"] if mode == "on-demand" else [])


def test_on_demand_caches_each_entry_only_where_it_is_used(labs, tmp_path):
    state, _ = labs.up(SEED, "cache", "on-demand")
    from ipaddress import IPv4Address
    vm1_cookie = f"cookie=0x{mapping_cookie(1001, IPv4Address('10.0.0.148')):x}"
    vm2_cookie = f"cookie=0x{mapping_cookie(1001, IPv4Address('10.0.0.185')):x}"
    assert vm2_cookie not in dump_flows(state, "host1")      # nothing cached before use
    capture_during(state, [], tmp_path, "ZIGI-VM1", ["ping", "-c", "1", "10.0.0.185"])
    host1, host2 = dump_flows(state, "host1"), dump_flows(state, "host2")
    assert vm2_cookie in host1 and vm1_cookie not in host1   # host1 asked for VM2 only
    assert vm1_cookie in host2 and vm2_cookie not in host2   # host2 asked for VM1 only
    assert "idle_timeout=300" in host1
    misses = [e for e in state.events.read() if e["event"] == "miss"]
    assert {(e["host"], e["target"], e["answer"]) for e in misses} == {
        ("host1", "10.0.0.185", "02:93:0e:03:bb:88"), ("host2", "10.0.0.148", "02:00:5e:ad:58:40")}


def test_preload_needs_no_mapping_service_round_trip(labs, tmp_path):
    state, _ = labs.up(SEED, "pre", "preload")
    from ipaddress import IPv4Address
    assert f"cookie=0x{mapping_cookie(1001, IPv4Address('10.0.0.185')):x}" in dump_flows(state, "host1")
    capture_during(state, [], tmp_path, "ZIGI-VM1", ["ping", "-c", "1", "10.0.0.185"])
    assert not [e for e in state.events.read() if e["event"] == "miss"]
