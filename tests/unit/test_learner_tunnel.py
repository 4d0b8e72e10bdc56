"""The learner's tunnel (exercise 03) in the mapping service: encapsulate's header and
deliver's port become the routers' flows exactly as answered; an answer the service cannot
carry out is refused, saying what is wrong, and that flow drops; every call is told in
events with its function. The learner's code runs for real (vpclab.sandbox), no lab needed."""
from __future__ import annotations

import textwrap
from ipaddress import IPv4Address
from types import SimpleNamespace

import pytest
import yaml

from ryu_apps.learner_part import BadAnswer
from ryu_apps.learner_tunnel import LearnerTunnel, parse_header, parse_port
from vpclab.router.events import EventLog
from vpclab.router.inventory import Inventory
from vpclab.router.pipeline import DELIVER, FORWARD, PRIO_ENTRY, entry_flows
from vpclab.sandbox import LearnerCode
from vpclab.router.sync import static_flows
from vpclab.model.validation import check_topology
from tests.unit.conftest import TOPOLOGIES

RIGHT = textwrap.dedent('''\
    def encapsulate(router, destination):
        print("to", destination["vpc"], destination["ip"], "from", router["host"])
        return {"vni": destination["vni"], "remote_ip": destination["host_ip"]}

    def deliver(router, arrival):
        for vm in router["ports"]:
            if (vm["vni"], vm["ip"], vm["mac"]) == (arrival["vni"], arrival["dst_ip"],
                                                    arrival["dst_mac"]):
                return vm["port"]
        return None
''')


@pytest.fixture
def twins():
    """multi-vpc in VXLAN: ZIGI-VM1 and its twin OTHER-VM1 (ZIGI-VPC2, same address) on
    host1, ZIGI-VM2 and OTHER-VM2 on host2."""
    raw = yaml.safe_load((TOPOLOGIES / "multi-vpc.yaml").read_text())
    raw["encap"] = "vxlan"
    return check_topology(raw)


def service_for(topology, tmp_path):
    return SimpleNamespace(state_dir=tmp_path, inventory=Inventory.from_topology(topology),
                           event_log=EventLog(tmp_path / "events.jsonl"))


def router(service, host):
    return next(r for r in service.inventory.routers().values() if r.host == host)


def mapping(service, vm_ip, vni):
    return service.inventory.table().lookup(vni, IPv4Address(vm_ip))


def learner_events(service):
    return [e for e in service.event_log.read() if e["event"].startswith("learner_")]


def tunnelled(service, source, source_host, destination):
    """`source_host`'s flows for `destination` (a Mapping), through a learner's tunnel."""
    part = LearnerTunnel(service, source)
    r = router(service, source_host)
    flows = part.rewrite(r, entry_flows(r, destination), service.inventory.table())
    return part, next(f for f in flows if f.table == FORWARD and f.priority == PRIO_ENTRY)


def deliveries(part, service, host):
    r = router(service, host)
    flows = part.rewrite(r, static_flows(r, service.inventory.table()), service.inventory.table())
    by_port = {}
    for flow in flows:
        if flow.table == DELIVER and flow.priority == PRIO_ENTRY:
            by_port[(flow.match["metadata"], flow.match["ipv4_dst"])] = flow.actions
    return by_port


# -- the answers, parsed ------------------------------------------------------------------
def test_a_header_is_a_vni_and_a_host_address():
    assert parse_header({"vni": 1001, "remote_ip": "192.168.100.2"}) == \
        (1001, IPv4Address("192.168.100.2"))
    assert parse_header({"vni": 0, "remote_ip": "10.1.2.3"})[0] == 0
    assert parse_header({"vni": 2**24 - 1, "remote_ip": "10.1.2.3"})[0] == 2**24 - 1


@pytest.mark.parametrize("answer, says", [
    (None, "encapsulate must return"),
    ({"vni": 1001}, "encapsulate must return"),
    ({"vni": 1001, "remote_ip": "192.168.100.2", "port": 4789}, "encapsulate must return"),
    ([1001, "192.168.100.2"], "encapsulate must return"),
    ({"vni": 2**24, "remote_ip": "192.168.100.2"}, "24 bits"),
    ({"vni": -1, "remote_ip": "192.168.100.2"}, "24 bits"),
    ({"vni": True, "remote_ip": "192.168.100.2"}, "24 bits"),
    ({"vni": "1001", "remote_ip": "192.168.100.2"}, "24 bits"),
    ({"vni": 1001.0, "remote_ip": "192.168.100.2"}, "24 bits"),
    ({"vni": 1001, "remote_ip": "host2"}, "remote_ip is a host's IPv4 address"),
    ({"vni": 1001, "remote_ip": 3232261122}, "remote_ip is a host's IPv4 address"),
    ({"vni": 1001, "remote_ip": None}, "remote_ip is a host's IPv4 address"),
    ({"vni": 1001, "remote_ip": "192.168.100.2 "}, "remote_ip is a host's IPv4 address"),
    ({"vni": 1001, "remote_ip": "0.0.0.0"}, "one host's underlay address, not 0.0.0.0"),
    ({"vni": 1001, "remote_ip": "255.255.255.255"}, "one host's underlay address"),
    ({"vni": 1001, "remote_ip": "224.0.0.1"}, "one host's underlay address"),
    ({"vni": 1001, "remote_ip": "127.0.0.1"}, "one host's underlay address"),
])
def test_a_header_the_service_cannot_use_is_refused_saying_why(answer, says):
    with pytest.raises(BadAnswer, match=says):
        parse_header(answer)


def test_a_port_is_one_of_the_routers_vm_ports_or_none(twins, tmp_path):
    service = service_for(twins, tmp_path)
    r = router(service, "host1")
    ports = sorted(p.ofport for p in r.ports)
    assert parse_port(None, r) is None
    assert parse_port(ports[-1], r) == ports[-1]
    for wrong in (max(ports) + 1000, 0, True, str(ports[0]), float(ports[0]), [ports[0]]):
        with pytest.raises(BadAnswer, match=f"one of host1's VMs \\({', '.join(map(str, ports))}\\)"):
            parse_port(wrong, r)


# -- the learner's real code, in the service's flows -------------------------------------------
def test_the_learner_s_header_is_the_forwarding_entry_s_and_each_call_is_told(twins, tmp_path):
    service = service_for(twins, tmp_path)
    with LearnerCode(RIGHT, "tunnel.py") as code:
        part, flow = tunnelled(service, code, "host1", mapping(service, "10.0.0.185", 1002))
        assert ("set", "tunnel_id", 1002) in flow.actions          # OTHER-VM2's VPC (ZIGI-VPC2)
        host2 = str(twins.hosts["host2"].underlay_ip)
        assert ("set", "tun_ipv4_dst", host2) in flow.actions
        called, answered = learner_events(service)
        assert called["event"] == "learner_called" and called["function"] == "encapsulate"
        assert answered == {**answered, "event": "learner_answer", "function": "encapsulate",
                            "host": "host1", "destination": "ZIGI-VPC2:10.0.0.185", "vni": 1002,
                            "remote_ip": host2, "output": "to ZIGI-VPC2 10.0.0.185 from host1\n"}
        # asked once: the same question again is the flow's answer, not another call
        part.rewrite(router(service, "host1"), [flow], service.inventory.table())
        assert part.header(router(service, "host1"), mapping(service, "10.0.0.185", 1002)) == \
            (1002, IPv4Address(host2))
        assert len(learner_events(service)) == 2


def test_whatever_header_the_learner_gives_is_what_the_router_sends(twins, tmp_path):
    # the service carries out a wrong answer: the check grades it on the wire
    wrong = RIGHT.replace('return {"vni": destination["vni"], "remote_ip": destination["host_ip"]}',
                          'return {"vni": router["ports"][0]["vni"], "remote_ip": router["underlay_ip"]}')
    assert wrong != RIGHT
    service = service_for(twins, tmp_path)
    with LearnerCode(wrong, "tunnel.py") as code:
        _, flow = tunnelled(service, code, "host1", mapping(service, "10.0.0.185", 1002))
    first = router(service, "host1").ports[0].mapping.vni
    assert ("set", "tunnel_id", first) in flow.actions
    assert ("set", "tun_ipv4_dst", str(twins.hosts["host1"].underlay_ip)) in flow.actions


def test_deliver_decides_each_delivery_entry_s_port(twins, tmp_path):
    service = service_for(twins, tmp_path)
    r = router(service, "host2")
    ports = {(p.mapping.vni, str(p.mapping.ip)): p.ofport for p in r.ports}
    with LearnerCode(RIGHT, "tunnel.py") as code:
        got = deliveries(LearnerTunnel(service, code), service, "host2")
    assert got == {key: (("output", port),) for key, port in ports.items()}
    asked = [e for e in learner_events(service) if e["event"] == "learner_answer"]
    assert {e["function"] for e in asked} == {"deliver"} and len(asked) == len(ports)
    vm2 = mapping(service, "10.0.0.185", 1001)
    assert {"host": "host2", "arrival": f"1001:10.0.0.185:{vm2.mac}",
            "port": ports[(1001, "10.0.0.185")]}.items() <= next(
        e for e in asked if e["arrival"].startswith("1001:10.0.0.185")).items()


def test_deliver_by_address_only_hands_one_vpc_s_packets_to_the_twin(twins, tmp_path):
    by_ip = RIGHT.replace('if (vm["vni"], vm["ip"], vm["mac"]) == (arrival["vni"], arrival["dst_ip"],\n'
                          '                                                arrival["dst_mac"]):',
                          'if vm["ip"] == arrival["dst_ip"]:')
    assert by_ip != RIGHT
    service = service_for(twins, tmp_path)
    with LearnerCode(by_ip, "tunnel.py") as code:
        got = deliveries(LearnerTunnel(service, code), service, "host2")
    assert got[(1001, "10.0.0.185")] == got[(1002, "10.0.0.185")]      # one VM gets both


@pytest.mark.parametrize("source, function, says", [
    (RIGHT.replace('return {"vni": destination["vni"], "remote_ip": destination["host_ip"]}',
                   "return None"), "encapsulate", "encapsulate must return"),
    (RIGHT.replace('return {"vni": destination["vni"], "remote_ip": destination["host_ip"]}',
                   'return {"vni": destination["vni"], "remote_ip": destination["host"]}'),
     "encapsulate", "remote_ip is a host's IPv4 address as a string, not 'host2'"),
    (RIGHT.replace('    print("to"', '    print("dividing")\n    1 / 0\n    print("to"'),
     "encapsulate", "ZeroDivisionError"),
])
def test_a_header_that_fails_or_is_refused_drops_and_says_why(twins, tmp_path, source,
                                                              function, says):
    service = service_for(twins, tmp_path)
    with LearnerCode(source, "tunnel.py") as code:
        _, flow = tunnelled(service, code, "host1", mapping(service, "10.0.0.185", 1001))
    assert flow.actions == ()                        # nothing the learner did not say
    error = learner_events(service)[-1]
    assert error["event"] == "learner_error" and error["function"] == function
    assert says in error["message"] and error["destination"] == "ZIGI-VPC1:10.0.0.185"
    if "ZeroDivisionError" in says:
        assert 'File "tunnel.py", line 3, in encapsulate' in error["traceback"]
        assert error["output"] == "dividing\n"


def test_a_deliver_port_not_on_the_router_is_refused_and_that_entry_drops(twins, tmp_path):
    elsewhere = RIGHT.replace("            return vm[\"port\"]", "            return 4242")
    assert elsewhere != RIGHT
    service = service_for(twins, tmp_path)
    with LearnerCode(elsewhere, "tunnel.py") as code:
        got = deliveries(LearnerTunnel(service, code), service, "host2")
    assert set(got.values()) == {()}
    errors = [e for e in learner_events(service) if e["event"] == "learner_error"]
    assert errors and all(e["function"] == "deliver" for e in errors)
    assert "deliver returns the port number of one of host2's VMs" in errors[0]["message"]


def test_a_crash_in_one_question_leaves_the_others_answered(twins, tmp_path):
    # deliver fails only for ZIGI-VPC2's VNI: ZIGI-VPC1's entry still gets its port
    picky = RIGHT.replace("def deliver(router, arrival):\n",
                          "def deliver(router, arrival):\n"
                          "    if arrival[\"vni\"] == 1002:\n"
                          "        raise KeyError(\"not this one\")\n")
    service = service_for(twins, tmp_path)
    with LearnerCode(picky, "tunnel.py") as code:
        got = deliveries(LearnerTunnel(service, code), service, "host2")
    assert got[(1002, "10.0.0.185")] == () and got[(1001, "10.0.0.185")] != ()
    error = next(e for e in learner_events(service) if e["event"] == "learner_error")
    assert error["kind"] == "KeyError" and error["arrival"].startswith("1002:10.0.0.185:")


def test_a_move_in_preload_mode_tunnels_to_the_new_host_through_the_learner(twins, tmp_path,
                                                                              monkeypatch):
    """The forwarding entries a change adds are built from the NEW table, and the learner is
    asked about them there (asking about the old one memorised the old host)."""
    import dataclasses
    from ryu_apps import mapping_service
    from tests.unit.test_service_changes import service
    monkeypatch.setattr(mapping_service, "BARRIER_TIMEOUT", 0.01)      # no router answers here
    svc = service(dataclasses.replace(twins, mapping_mode="preload"), tmp_path)
    with LearnerCode(RIGHT, "tunnel.py") as code:
        svc.tunnel = LearnerTunnel(svc, code)
        host1 = router(svc, "host1")
        before = svc.tunnel.rewrite(host1, static_flows(host1, svc.inventory.table()),
                                    svc.inventory.table())                 # what it was asked
        assert any(("set", "tun_ipv4_dst", "192.168.100.2") in f.actions for f in before)
        svc.apply("move", lambda inv: inv.move("ZIGI-VM2", "host3"))
    sent = b"".join(svc.outboxes[host1.dpid].sent)
    assert bytes([192, 168, 100, 3]) in sent                              # to host3 now
    told = [e for e in learner_events(svc) if e["event"] == "learner_answer"
            and e["function"] == "encapsulate" and e["host"] == "host1"
            and e["destination"] == "ZIGI-VPC1:10.0.0.185"]
    assert [e["remote_ip"] for e in told] == ["192.168.100.2", "192.168.100.3"]


@pytest.mark.parametrize("match, to", [
    (None, None),                                                       # the VNI: nobody's
    ('if vm["mac"] == arrival["dst_mac"]:', "ZIGI-VM2"),               # blind to the VNI
    ('if (vm["ip"], vm["mac"]) == (arrival["dst_ip"], arrival["dst_mac"]):', "ZIGI-VM2"),
])
def test_a_verified_packet_no_vm_has_goes_where_deliver_says(twins, tmp_path, match, to):
    """What exercise 03's VNI check forges: host1 sends, truly from OTHER-VM1 (ZIGI-VPC2's VNI),
    a packet to ZIGI-VM2's address and MAC. host2's receive check verifies it and sends it to
    the port deliver answers for that (vni, dst_ip, dst_mac): none for a deliver that reads
    the VNI, ZIGI-VM2's for one blind to it."""
    from tests.unit.test_service_changes import service
    from vpclab.router.pipeline import Miss
    source = RIGHT if match is None else RIGHT.replace(
        'if (vm["vni"], vm["ip"], vm["mac"]) == (arrival["vni"], arrival["dst_ip"],\n'
        '                                                arrival["dst_mac"]):', match)
    assert match is None or source != RIGHT
    svc = service(twins, tmp_path)
    with LearnerCode(source, "tunnel.py") as code:
        svc.tunnel = LearnerTunnel(svc, code)
        host2 = router(svc, "host2")
        zigi2 = mapping(svc, "10.0.0.185", 1001)
        other1 = mapping(svc, "10.0.0.148", 1002)
        miss = Miss(1, 1002, IPv4Address("10.0.0.148"), False, zigi2.mac,
                    tun_src=other1.host_ip, destination=IPv4Address("10.0.0.185"),
                    eth_src=other1.mac)
        decision = svc._decide(host2, miss, svc.inventory.table(), None)
    assert decision.mapping == other1 and not decision.refused          # verified
    ports = {p.mapping.mac: p.ofport for p in host2.ports}
    assert decision.output == (ports[zigi2.mac] if to else None)
    asked = [e for e in learner_events(svc) if e["event"] == "learner_answer"
             and e["function"] == "deliver"]
    assert [e["arrival"] for e in asked] == [f"1002:10.0.0.185:{zigi2.mac.lower()}"]
