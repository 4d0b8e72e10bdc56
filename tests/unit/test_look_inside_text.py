"""`vpclab flows` and `vpclab trace` without a lab: real dump-flows, meters and ofproto/trace
text recorded from real labs (tests/unit/data/look_inside/record.py: the seed in Geneve and
VXLAN, multi-vpc, exercise 07's kinds of foreign flow, a NAT appliance), read back, explained
and judged with the lab's recorded names."""
from __future__ import annotations

import dataclasses
import json
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from vpclab.errors import VpclabError
from vpclab.inside.explain_flows import explain, explain_all, render
from vpclab.inside.flowtext import parse_flow, parse_flows, parse_meters, split_actions
from vpclab.inside.labview import LabView
from vpclab.router.pipeline import COOKIE_MAPPING, mapping_cookie
from vpclab.inside.probe import parse_proto, parse_route, tunnel_probe, unsent, unsent_probe, vm_probe
from vpclab.inside.router_trace import parse_trace
from vpclab.inside.trace_verdict import explain_trace, not_sent

DATA = Path(__file__).parent / "data" / "look_inside"
SCENARIOS = ["seed-geneve", "seed-vxlan", "multi-vpc", "faults", "nat"]


def recorded(name: str) -> dict:
    return json.loads((DATA / f"{name}.json").read_text())


def view_of(name: str, host: str = "host1") -> LabView:
    return LabView.from_json(recorded(name)["view"]).at(host)


def lines_of(name: str, router: str) -> list:
    data = recorded(name)
    state = data["routers"][router]
    view = LabView.from_json(data["view"]).at(router.split("-")[0])
    return explain_all(parse_flows(state["flows"]), view, parse_meters(state["meters"], state["meter_stats"]))


def line(lines, stage: str, starts: str):
    found = [x for x in lines if x.stage == stage and x.text.startswith(starts)]
    assert len(found) == 1, [x.text for x in lines if x.stage == stage]
    return found[0]


def traced(name: str, case: str, edit=None):
    """A recorded trace, the probe rebuilt from its arguments (it must be the packet that was
    traced), and the result explained; `edit` may change the recorded trace first."""
    data = recorded(name)
    view = LabView.from_json(data["view"])
    t = next(t for t in data["traces"] if t["name"] == case)
    t = edit(t) if edit else t
    args = dict(t["args"])
    probe = (tunnel_probe(view, args.pop("from_host"), t["to"], t["vm"], **args) if "from_host" in args
             else vm_probe(view, t["vm"], t["to"], **args))
    assert probe.flow == t["flow"] and probe.router == t["router"]
    return explain_trace(view.lab, probe, parse_trace(t["ofproto_trace"]), view.at(probe.router),
                         parse_flows(t["flows"]), parse_meters(t["meters"], t["meter_stats"]))


# -- dump-flows text ----------------------------------------------------------------------
@pytest.mark.parametrize("name", SCENARIOS)
def test_every_dumped_flow_is_read_and_none_is_hidden(name):
    for router, state in recorded(name)["routers"].items():
        printed = [x for x in state["flows"].splitlines() if " actions=" in x]
        flows = parse_flows(state["flows"])
        assert len(flows) == len(printed) > 10
        assert [f.raw for f in flows] == [x.strip() for x in printed]
        lines = lines_of(name, router)
        assert sorted(x.flow.raw for x in lines) == sorted(f.raw for f in flows)
        assert [x.text for x in lines if not x.known] == []      # every flow vpclab made is explained


def test_a_cached_entry_is_read_field_by_field():
    text = recorded("seed-geneve")["routers"]["host1"]["flows"]
    (entry,) = [f for f in parse_flows(text) if f.table == 20 and f.priority == 100]
    assert entry.cookie == mapping_cookie(1001, IPv4Address("10.0.0.185"))
    assert (entry.cookie_kind, entry.cookie_vni, entry.cookie_ip) == (COOKIE_MAPPING, 1001, "10.0.0.185")
    assert entry.idle_timeout == 300 and entry.n_packets == 1 and entry.n_bytes == 98
    assert "send_flow_rem" in entry.flags
    assert entry.match["nw_dst"] == "10.0.0.185" and "ip" in entry.match
    assert entry.set_fields()["tun_dst"] == "192.168.100.2"
    assert entry.actions[-1] == "output:1" and entry.outputs() == ["1"]


def test_actions_split_only_at_top_level_commas():
    assert split_actions("meter:1,controller(reason=no_match,max_len=65535),output:2") == \
        ("meter:1", "controller(reason=no_match,max_len=65535)", "output:2")
    assert parse_flow("OFPST_FLOW reply (OF1.3) (xid=0x2):") is None


def test_meters_give_their_rate():
    state = recorded("seed-geneve")["routers"]["host1"]
    meters = parse_meters(state["meters"], state["meter_stats"])
    assert set(meters) == {1, 101} and meters[101].rate == 100 and meters[1].unit == "pktps"


# -- explanations ------------------------------------------------------------------------
def test_host1_after_the_first_ping_holds_zigi_vm2():
    lines = lines_of("seed-geneve", "host1")
    arp = line(lines, "ARP", "10.0.0.185 in ZIGI-VPC1 is-at 02:93:0e:03:bb:88 (ZIGI-VM2, cached")
    assert arp.packets == 1 and "idle timeout 300 s" in arp.text
    forward = line(lines, "FORWARD", "to ZIGI-VM2: Geneve vni 1001 eni 1>2 to host2 (192.168.100.2)")
    assert forward.packets == 1
    classify = line(lines, "CLASSIFY", "port 101 = ZIGI-VM1 (ZIGI-VPC1), anti-spoofing: only "
                                       "02:00:5e:ad:58:40 / 10.0.0.148; IP as eni 1")
    assert classify.packets == 1
    assert line(lines, "DELIVER", "eni 1 = ZIGI-VM1 (ZIGI-VPC1): to port 101").packets == 1
    assert "meter 101: at most 100/s" in line(lines, "FORWARD", "any other IP from ZIGI-VM1").text
    assert [x.stage for x in lines] == sorted((x.stage for x in lines),
                                              key=["CLASSIFY", "ARP", "FORWARD", "CHECK", "DELIVER"].index)


def test_host2_after_the_first_ping_trusts_zigi_vm1_from_host1():
    lines = lines_of("seed-geneve", "host2")
    line(lines, "CHECK", "from host1: ZIGI-VM1 (eni 1) as 10.0.0.148 trusted -> DELIVER")
    assert line(lines, "CHECK", "any other IP from the tunnel").packets == 1     # the first one asked
    line(lines, "FORWARD", "to ZIGI-VM1: Geneve vni 1001 eni 2>1 to host1 (192.168.100.1)")


def test_vxlan_entries_name_no_eni_and_deliver_by_address():
    lines = lines_of("seed-vxlan", "host1")
    line(lines, "FORWARD", "to ZIGI-VM2: VXLAN vni 1001 to host2 (192.168.100.2);")
    line(lines, "CHECK", "from host2: 10.0.0.185 (ZIGI-VM2) trusted")
    line(lines, "DELIVER", "10.0.0.148 / 02:00:5e:ad:58:40 in ZIGI-VPC1 = ZIGI-VM1: to port 101")
    assert not any("eni" in x.text for x in lines if x.stage in ("FORWARD", "CHECK"))


@pytest.mark.parametrize("name", ["seed-geneve", "seed-vxlan"])
def test_remembered_unknowns_and_refused_claims(name):
    host1, host2 = lines_of(name, "host1-later"), lines_of(name, "host2-later")
    unknown = line(host1, "ARP", "who-has 10.0.0.99 in ZIGI-VPC1: unknown to the mapping service, dropped")
    assert "remembered 10 s" in unknown.text and unknown.packets >= 1
    line(host1, "FORWARD", "to 10.0.0.77 in ZIGI-VPC1: unknown to the mapping service, dropped")
    refused = line(host2, "CHECK", "from host1 (192.168.100.1): 10.0.0.99")
    assert "refused by the receive check, dropped and counted" in refused.text
    assert ("as eni 1" in refused.text) == (name == "seed-geneve")


def test_several_vpcs_and_several_senders():
    lines = lines_of("multi-vpc", "host1")
    line(lines, "CLASSIFY", "tunnel vni 1002 = ZIGI-VPC2")
    line(lines, "FORWARD", "to ZIGI-VM2: Geneve vni 1001 eni sender>2 to host2")   # ZIGI-VM1 or VM3
    line(lines, "FORWARD", "to ZIGI-VM3: local port 103")
    line(lines, "DELIVER", "eni 4 = OTHER-VM1 (ZIGI-VPC2): to port 104")


def test_an_entry_that_disagrees_with_the_lab_says_stale():
    view = view_of("seed-geneve")
    moved = dataclasses.replace(view.vm("ZIGI-VM2"), host="host3", host_ip="192.168.100.3")
    view = dataclasses.replace(view, enis=(view.vm("ZIGI-VM1"), moved),
                               hosts={**view.hosts, "host3": "192.168.100.3"})
    flows = parse_flows(recorded("seed-geneve")["routers"]["host1"]["flows"])
    texts = [x.text for x in explain_all(flows, view)]
    assert any(t.startswith("to ZIGI-VM2:") and "STALE: ZIGI-VM2 lives on host3 (192.168.100.3) now" in t
               for t in texts)
    assert any(t.startswith("from host2:") and "STALE" in t for t in texts)
    assert sum("STALE" in t for t in texts) == 2


def test_a_flow_vpclab_never_makes_is_shown_raw():
    flows = parse_flows(recorded("seed-geneve")["routers"]["host1"]["flows"])
    foreign = [parse_flow(" cookie=0x0, duration=1.0s, table=0, n_packets=7, n_bytes=0, priority=500,"
                          "in_port=101 actions=NORMAL"),
               parse_flow(" cookie=0xabc, duration=1.0s, table=77, n_packets=0, n_bytes=0, "
                          "priority=1,ip actions=drop"),
               parse_flow(" cookie=0x0, duration=1.0s, table=20, n_packets=0, n_bytes=0, priority=100,"
                          "ip,metadata=0x3e9 actions=output:101,output:102")]
    lines = explain_all(flows + foreign, view_of("seed-geneve"))
    raw = [x for x in lines if not x.known]
    assert len(raw) == 3 and len(lines) == len(flows) + 3
    assert {x.stage for x in raw} == {"CLASSIFY", "TABLE 77", "FORWARD"}
    assert any("actions=NORMAL" in x.text and x.packets == 7 for x in raw)
    assert "3 unexplained" in render(lines, view_of("seed-geneve")).splitlines()[0]


def test_render_puts_a_stage_a_sentence_and_a_count_on_each_line():
    lines = lines_of("seed-geneve", "host1")
    text = render(lines, view_of("seed-geneve"), raw=True)
    assert text.splitlines()[0].startswith("host1's virtual router (192.168.100.1; geneve, mapping on-demand)")
    body = [x for x in text.splitlines()[1:] if x.strip()]
    assert len(body) == 2 * len(lines)          # each explained line, its OpenFlow text under it
    assert any(x.startswith("FORWARD  to ZIGI-VM2: Geneve") and x.endswith("1 pkt") for x in body)
    json.dumps([x.to_json() for x in lines])


# -- ofproto/trace text --------------------------------------------------------------------
def test_a_trace_is_read_step_by_step():
    t = next(t for t in recorded("seed-geneve")["traces"] if t["name"] == "tunnel")
    trace = parse_trace(t["ofproto_trace"])
    assert [s.table for s in trace.on("br-int")] == [0, 20]
    assert trace.on("br-phy") and trace.steps[0].priority == 100
    assert trace.steps[1].cookie == mapping_cookie(1001, IPv4Address("10.0.0.185"))
    assert "tunneling to 192.168.100.2 via br-phy" in trace.steps[1].notes
    assert trace.geneve_option == (1, 2) and trace.encapsulation == ("geneve", 1001)
    assert trace.steps[1].actions[-1] == "output:1"


def test_a_table_with_no_match_is_a_step_without_a_flow():
    text = 'Flow: ip,in_port=5\n\nbridge("br-int")\n----------------\n 0. No match.\n    drop\n\n' \
           "Final flow: unchanged\nDatapath actions: drop\n"
    (step,) = parse_trace(text).steps
    assert step.match is None and step.table == 0


# (scenario, recorded trace) -> what the router does with it
VERDICTS = {
    ("seed-geneve", "before-ping-miss"): ("miss", "knows"),
    ("seed-geneve", "before-ping-check-miss"): ("miss", "verified"),
    ("seed-geneve", "tunnel"): ("tunnel", ""),
    ("seed-geneve", "antispoofing-ip"): ("dropped", "anti-spoofing"),
    ("seed-geneve", "antispoofing-mac"): ("dropped", "anti-spoofing"),
    ("seed-geneve", "arp-answered"): ("answered", ""),
    ("seed-geneve", "reply-tunnel"): ("tunnel", ""),
    ("seed-geneve", "receive-delivered"): ("delivered", ""),
    ("seed-geneve", "receive-forged-miss"): ("miss", "refused"),
    ("seed-geneve", "unknown-miss"): ("miss", "unknown"),
    ("seed-geneve", "unknown-dropped"): ("dropped", "unknown destination"),
    ("seed-geneve", "receive-refused"): ("dropped", "receive check"),
    ("multi-vpc", "another-vpc-miss"): ("miss", "unknown"),
    ("multi-vpc", "another-vpc-dropped"): ("dropped", "another VPC"),
    ("multi-vpc", "rogue-host"): ("miss", "refused"),
    ("multi-vpc", "local-delivery"): ("delivered", ""),
    ("faults", "foreign-drop"): ("dropped", "foreign flow"),
    ("faults", "wrong-vni"): ("tunnel", "foreign flow"),
    ("faults", "stale-host"): ("tunnel", "foreign flow"),
    ("faults", "arp-flood"): ("flooded", "foreign flow"),
    ("faults", "no-such-port"): ("dropped", "foreign flow"),
    ("faults", "named-other-vpc"): ("tunnel", ""),
    ("faults", "named-other-vpc-from-host"): ("miss", "verified"),
    ("nat", "via-nat-miss"): ("miss", "knows"),
    ("nat", "via-nat-tunnel"): ("tunnel", ""),
    ("nat", "via-nat-arrives"): ("delivered", ""),
}
FOREIGN = {("faults", case) for case in ("foreign-drop", "wrong-vni", "stale-host", "arp-flood", "no-such-port")}
VERDICTS.update({("seed-vxlan", case): v for (name, case), v in list(VERDICTS.items()) if name == "seed-geneve"})


def test_every_recorded_trace_has_a_verdict_here():
    assert {(n, t["name"]) for n in SCENARIOS for t in recorded(n)["traces"]} == set(VERDICTS)


@pytest.mark.parametrize("name,case", sorted(VERDICTS))
def test_verdicts(name, case):
    result = traced(name, case)
    assert (result.verdict.kind, result.verdict.reason) == VERDICTS[name, case], result.render()
    assert all(s.explained for s in result.stages) == ((name, case) not in FOREIGN)
    json.dumps(result.to_json())


@pytest.mark.parametrize("name", ["seed-geneve", "seed-vxlan"])
def test_the_tunnel_verdict_names_host_vni_and_option(name):
    result = traced(name, "tunnel")
    assert result.verdict.details["host"] == "host2" and result.verdict.details["vni"] == 1001
    head = "sent through the tunnel to host2 (192.168.100.2): "
    if name == "seed-geneve":
        assert result.verdict.text == head + "Geneve vni 1001 (ZIGI-VPC1), ENI option 1>2 (ZIGI-VM1 > ZIGI-VM2)"
    else:
        assert result.verdict.text == head + "VXLAN vni 1001 (ZIGI-VPC1)"
    assert result.next == f"vpclab trace {result.lab} ZIGI-VM1 --from-host host1 --to 10.0.0.185"
    assert [s.stage for s in result.stages] == ["CLASSIFY", "FORWARD"]
    assert result.stages[1].flow.n_packets == 1          # the dumped entry, with its counter


def test_what_the_mapping_service_would_be_asked():
    miss = traced("seed-geneve", "unknown-miss")
    assert miss.verdict.text.startswith("sent to the mapping service (a miss): it would be asked who has "
                                        "10.0.0.99 in ZIGI-VPC1;")
    assert "silence" in miss.verdict.text and "meter 101" in miss.verdict.text
    assert miss.probe.is_arp and "it would ARP for it first" in miss.probe.notes[0]
    rogue = traced("multi-vpc", "rogue-host")
    assert "whether 10.0.0.148 (eni 1) of ZIGI-VPC1 lives behind host3" in rogue.verdict.text
    assert "ZIGI-VM1 lives on host1" in rogue.verdict.text
    assert "a forged claim" in rogue.probe.notes[0]
    spoof = traced("seed-geneve", "antispoofing-ip")
    assert "may only send as 02:00:5e:ad:58:40 / 10.0.0.148" in spoof.verdict.text
    assert "10.0.0.99" in spoof.verdict.text
    assert "ZIGI-VM2 (port 102)" in traced("seed-vxlan", "receive-delivered").verdict.text


# -- the packets a trace sends ------------------------------------------------------------
def test_probe_arguments_are_checked():
    view = view_of("seed-geneve")
    assert parse_proto("tcp:22") == ("tcp", 22) and parse_proto("ICMP") == ("icmp", None)
    for bad in ("sctp", "tcp", "tcp:0", "udp:70000", "icmp:1"):
        with pytest.raises(VpclabError, match="not a protocol"):
            parse_proto(bad)
    with pytest.raises(VpclabError, match="no VM 'NOPE'"):
        vm_probe(view, "NOPE", "10.0.0.185")
    with pytest.raises(VpclabError, match="not an IPv4 address"):
        vm_probe(view, "ZIGI-VM1", "10.0.0")
    with pytest.raises(VpclabError, match="not a MAC"):
        vm_probe(view, "ZIGI-VM1", "10.0.0.185", src_mac="02:00")
    with pytest.raises(VpclabError, match="lives on host2 itself"):
        tunnel_probe(view, "host2", "10.0.0.185")
    with pytest.raises(VpclabError, match="no ENI has 10.0.0.99"):
        tunnel_probe(view, "host1", "10.0.0.99")
    with pytest.raises(VpclabError, match="ARP never crosses the tunnel"):
        tunnel_probe(view, "host1", "10.0.0.185", proto="arp")
    multi = view_of("multi-vpc")
    with pytest.raises(VpclabError, match="10.0.0.185 is in ZIGI-VPC1 and ZIGI-VPC2"):
        tunnel_probe(multi, "host3", "10.0.0.185")
    only_vpc1 = dataclasses.replace(multi, enis=tuple(e for e in multi.enis if e.vpc == "ZIGI-VPC1"))
    with pytest.raises(VpclabError, match="host3 holds no VM of ZIGI-VPC1"):
        tunnel_probe(only_vpc1, "host3", "10.0.0.185")


def test_udp_probe_and_a_vm_with_no_mac_for_an_address():
    view = view_of("seed-geneve")
    udp = vm_probe(view, "ZIGI-VM1", "10.0.0.185", proto="udp:53")
    assert "udp," in udp.flow and "tp_dst=53" in udp.flow and "dl_dst=02:93:0e:03:bb:88" in udp.flow
    arp = vm_probe(view, "ZIGI-VM1", "10.0.0.50", proto="tcp:80")
    assert arp.is_arp and "arp_tpa=10.0.0.50" in arp.flow and arp.notes


def test_a_routed_destination_goes_to_the_next_hops_mac():
    view = view_of("seed-geneve")
    probe = vm_probe(view, "ZIGI-VM1", "10.9.9.9", via="10.0.0.185")
    assert "dl_dst=02:93:0e:03:bb:88" in probe.flow and "nw_dst=10.9.9.9" in probe.flow
    assert probe.notes == ("ZIGI-VM1 routes 10.9.9.9 via 10.0.0.185 (ZIGI-VM2)",)
    unknown_hop = vm_probe(view, "ZIGI-VM1", "10.9.9.9", via="10.0.0.50")
    assert unknown_hop.is_arp and "arp_tpa=10.0.0.50" in unknown_hop.flow


# -- flows vpclab never makes: exercise 07's faults (priority 150, cookie 0x07 << 56) -----------
FAULT = "priority=150,cookie=0x700000000000000"


def test_a_foreign_drop_is_named_not_blamed_on_an_unknown_destination():
    result = traced("faults", "foreign-drop")
    assert result.verdict.text == ("dropped by a flow vpclab did not install: table=20," + FAULT +
                                   ",ip,nw_dst=10.0.0.185,actions=drop")
    assert "unknown destination" not in result.verdict.text
    assert result.verdict.details["foreign_flows"] == [result.verdict.text.split(": ", 1)[1]]
    assert result.next == ""


def test_a_foreign_forwarding_flow_gets_what_the_packet_really_gets():
    vni = traced("faults", "wrong-vni").verdict
    assert vni.text.startswith("sent through the tunnel to host2 (192.168.100.2): Geneve vni 1002 (ZIGI-VPC2)")
    assert "the wrong VNI: ZIGI-VPC1's is 1001" in vni.text and vni.details["wrong"] == ["vni"]
    assert f"by a flow vpclab did not install: table=20,{FAULT}," in vni.text
    assert "set_field:0x3ea->tun_id" in vni.details["foreign_flows"][0]
    stale = traced("faults", "stale-host")
    assert stale.verdict.text.startswith("sent through the tunnel to host3 (192.168.100.3): Geneve vni 1001")
    assert "the wrong host: ZIGI-VM2 lives on host2 (192.168.100.2)" in stale.verdict.text
    assert stale.verdict.details["wrong"] == ["host"] and stale.verdict.details["host"] == "host3"
    assert stale.next == ""                   # the next router would not be host2's


def test_a_foreign_arp_flood_is_a_flood():
    result = traced("faults", "arp-flood")
    assert result.verdict.details["vms"] == ["ZIGI-VM3", "OTHER-VM1"]
    assert result.verdict.text.startswith("flooded: sent out of 2 ports on host1: port 103 (ZIGI-VM3), "
                                          "port 104 (OTHER-VM1, ZIGI-VPC2: another VPC)")
    assert "arp_op=1,actions=output:101,output:103,output:104" in result.verdict.text
    assert [s.explained for s in result.stages] == [True, False]


def test_an_output_to_a_port_that_does_not_exist_is_a_drop():
    result = traced("faults", "no-such-port")
    assert result.verdict.kind == "dropped" and result.verdict.details["ports"] == ["7"]
    assert "sends it out of port 7, which host1's router does not have (OVS: Nonexistent output port)" \
        in result.verdict.text
    assert "Nonexistent output port" in result.stages[-1].notes
    assert all(">>" not in a for a in result.stages[-1].flow.actions)

    def undelivered(t):                       # a flow of vpclab's to a port the datapath lacks
        return {**t, "ofproto_trace": t["ofproto_trace"].replace("Datapath actions: 1", "Datapath actions: drop")}
    gone = traced("seed-geneve", "receive-delivered", undelivered)
    assert (gone.verdict.kind, gone.verdict.reason) == ("dropped", "nothing sent"), gone.render()


def test_a_vm_named_in_another_vpc():
    out = traced("faults", "named-other-vpc")
    assert out.probe.notes == ("OTHER-VM2 is in ZIGI-VPC2, not ZIGI-VM1's ZIGI-VPC1: a VM reaches only its "
                               "own VPC, so the packet goes to 10.0.0.185 in ZIGI-VPC1 (ZIGI-VM2)",)
    assert out.verdict.text.endswith("(this is 10.0.0.185 of ZIGI-VPC1, not OTHER-VM2 of ZIGI-VPC2)")
    assert out.verdict.details["vni"] == 1001
    arrive = traced("faults", "named-other-vpc-from-host")
    assert arrive.probe.vni == 1002 and arrive.probe.sender == "OTHER-VM1" and arrive.probe.router == "host2"
    assert "deliver the packet to OTHER-VM2" in arrive.verdict.text
    view = view_of("faults")
    with pytest.raises(VpclabError, match="no router tunnels a packet from one VPC to another"):
        tunnel_probe(view, "host1", "10.0.0.185", "ZIGI-VM1", to_vm="OTHER-VM2")
    nowhere = vm_probe(view, "ZIGI-VM1", "10.0.0.77", to_vm="OTHER-VM3")
    assert "10.0.0.77 in ZIGI-VPC1, which no ENI has: nowhere" in nowhere.notes[0]


# -- an appliance on the way: CLIENT routes 10.9.9.0/24 through NAT (source_dest_check off) ----
def test_a_packet_through_an_appliance_can_be_followed():
    out = traced("nat", "via-nat-tunnel")
    assert out.verdict.text == ("sent through the tunnel to host2 (192.168.100.2): Geneve vni 1001 (V), "
                                "ENI option 1>2 (CLIENT > NAT)")
    assert out.next == f"vpclab trace {out.lab} CLIENT --from-host host1 --to 10.9.9.9"
    arrive = traced("nat", "via-nat-arrives")
    assert arrive.verdict.text == "delivered to NAT (port 102) on host2"
    assert "dl_dst=02:00:00:00:00:20" in arrive.probe.flow and "nw_dst=10.9.9.9" in arrive.probe.flow
    assert arrive.probe.notes == ("CLIENT routes 10.9.9.9 via 10.0.0.20 (NAT)",)
    with pytest.raises(VpclabError, match="unless the sender routes it through an appliance"):
        tunnel_probe(view_of("nat"), "host1", "10.9.9.9")


# -- the VM's own routes ---------------------------------------------------------------------
def test_routes_are_read_from_ip_route_get():
    routes = {to: parse_route(**r) for to, r in recorded("nat")["routes"].items()}
    assert routes["10.9.9.9"].kind == "unicast" and routes["10.9.9.9"].via == "10.0.0.20"
    assert routes["10.0.0.30"].kind == "unicast" and routes["10.0.0.30"].via is None
    assert routes["10.0.0.10"].kind == "local" and routes["10.0.0.255"].kind == "broadcast"
    assert routes["8.8.8.8"] == parse_route(False, "", "RTNETLINK answers: Network is unreachable\n")
    assert routes["8.8.8.8"].kind == "none" and routes["8.8.8.8"].error == "Network is unreachable"


def test_a_vm_with_no_route_or_to_its_own_address_sends_nothing():
    view, routes = view_of("nat"), {to: parse_route(**r) for to, r in recorded("nat")["routes"].items()}
    assert unsent(view, "CLIENT", "10.9.9.9", routes["10.9.9.9"]) is None
    assert unsent(view, "CLIENT", "10.0.0.255", routes["10.0.0.255"]) is None
    reason, words = unsent(view, "CLIENT", "8.8.8.8", routes["8.8.8.8"])
    result = not_sent("lab", unsent_probe(view, "CLIENT", "8.8.8.8"), reason, words)
    assert (result.verdict.kind, result.verdict.reason) == ("not sent", "no route")
    assert result.verdict.text == "not sent: CLIENT has no route to 8.8.8.8 (ip route get: Network is unreachable)"
    assert result.stages == () and result.next == "" and "packet" not in result.render()
    reason, words = unsent(view, "CLIENT", "10.0.0.10", routes["10.0.0.10"])
    assert reason == "own address" and words.startswith("10.0.0.10 is the VM's own address")
    json.dumps(result.to_json())
    broadcast = vm_probe(view, "CLIENT", "10.0.0.255", broadcast=True)
    assert "dl_dst=ff:ff:ff:ff:ff:ff" in broadcast.flow and not broadcast.is_arp
    assert "dl_dst=01:00:5e:00:00:fb" in vm_probe(view, "CLIENT", "224.0.0.251", broadcast=True).flow


def test_arguments_of_the_wrong_type_or_script_are_refused():
    view = view_of("seed-geneve")
    for bad in ("tcp:０８", "udp:٥٣", 5, None):
        with pytest.raises(VpclabError, match="not a protocol"):
            parse_proto(bad)
    with pytest.raises(VpclabError, match="not a MAC"):
        vm_probe(view, "ZIGI-VM1", "10.0.0.185", src_mac=5)
    with pytest.raises(VpclabError, match="not an IPv4 address"):
        vm_probe(view, "ZIGI-VM1", "10.0.0.185", src=5)


def test_next_carries_a_forged_source_mac_too():
    result = traced("seed-geneve", "tunnel")
    forged = dataclasses.replace(result.probe, src_mac="02:00:00:00:00:99", src="10.0.0.99")
    from vpclab.inside.trace_verdict import follow_up
    assert follow_up("lab", forged, result.verdict, view_of("seed-geneve")).endswith(
        "--to 10.0.0.185 --src 10.0.0.99 --src-mac 02:00:00:00:00:99")
