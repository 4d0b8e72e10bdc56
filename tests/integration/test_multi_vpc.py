"""The seed's first picture: VPCs share hosts, one spans hosts, two reuse the same IPs."""
import itertools
import re

import pytest

from tests.integration.labtools import MULTI_VPC
from vpclab.model.validation import load_topology

TOPOLOGY = load_topology(MULTI_VPC)


@pytest.fixture(scope="module")
def lab(vpclab_module_lab):
    return vpclab_module_lab(MULTI_VPC)


def same_vpc_pairs():
    vms = TOPOLOGY.vms.values()
    return [(a.name, b.name, str(b.ip)) for a, b in itertools.permutations(vms, 2) if a.vpc == b.vpc]


def test_every_same_vpc_pair_reaches_each_other(lab):
    pairs = same_vpc_pairs()
    assert len(pairs) == 14 and any(TOPOLOGY.vms[a].host == TOPOLOGY.vms[b].host for a, b, _ in pairs)
    failed = [(a, b) for a, b, ip in pairs if not lab.ping(a, ip)]
    assert failed == []


def test_same_ip_in_two_vpcs_reaches_only_its_own_vpc(lab, tmp_path):
    # ZIGI-VM1 and OTHER-VM1 are both 10.0.0.148 on host1; both ping 10.0.0.185, which is
    # ZIGI-VM2 in one VPC and OTHER-VM2 in the other. Payload sizes tell the senders apart.
    with lab.capture(["ZIGI-VM2", "OTHER-VM2"], tmp_path / "zigi", filter="icmp") as cap:
        lab.exec("ZIGI-VM1", "ping", "-c", "2", "-i", "0.2", "-s", "100", "10.0.0.185")
    assert lab.exec("OTHER-VM1", "ping", "-c", "2", "-i", "0.2", "-s", "200", "10.0.0.185").ok
    seen = cap.lines()
    lengths = {spec: set(re.findall(r"length (\d+)", "\n".join(lines))) for spec, lines in seen.items()}
    assert lengths["ZIGI-VM2"] == {"108"}
    assert lengths["OTHER-VM2"] == set()
    with lab.capture(["ZIGI-VM2", "OTHER-VM2"], tmp_path / "other", filter="icmp") as cap:
        lab.exec("OTHER-VM1", "ping", "-c", "2", "-i", "0.2", "-s", "200", "10.0.0.185")
    seen = cap.lines()
    assert {l for l in re.findall(r"length (\d+)", "\n".join(seen["OTHER-VM2"]))} == {"208"}
    assert seen["ZIGI-VM2"] == []


def test_other_vpcs_capture_nothing_while_a_vpc_talks(lab, tmp_path):
    others = ["OTHER-VM1", "OTHER-VM2", "OTHER-VM3", "WEB-VM1", "WEB-VM2"]
    talk = "ping -c 3 -i 0.2 10.0.0.185 && ping -c 3 -i 0.2 10.0.0.20"
    with lab.capture(others + ["ZIGI-VM2"], tmp_path) as cap:
        done = lab.exec("ZIGI-VM1", "sh", "-c", talk)
    seen = cap.lines()
    assert done.ok
    assert len(seen["ZIGI-VM2"]) >= 6              # control: the capture does see traffic
    assert {vm: seen[vm] for vm in others} == {vm: [] for vm in others}


def test_arp_for_an_ip_only_in_another_vpc_gets_no_reply(lab, tmp_path):
    # 10.0.0.77 is OTHER-VM3 in ZIGI-VPC2; ZIGI-VM1 is in ZIGI-VPC1.
    with lab.capture(["ZIGI-VM1", "OTHER-VM3"], tmp_path, filter="arp") as cap:
        done = lab.exec("ZIGI-VM1", "arping", "-c", "2", "-w", "2", "-I", "eth0", "10.0.0.77")
    seen = cap.lines()
    assert done.returncode != 0, done.stdout
    assert [l for l in seen["ZIGI-VM1"] if "Reply" in l] == []
    assert any("who-has 10.0.0.77" in l for l in seen["ZIGI-VM1"])
    assert seen["OTHER-VM3"] == []
    control = lab.exec("ZIGI-VM1", "arping", "-c", "1", "-w", "2", "-I", "eth0", "10.0.0.185")
    assert control.ok and TOPOLOGY.vms["ZIGI-VM2"].mac in control.stdout.lower()
