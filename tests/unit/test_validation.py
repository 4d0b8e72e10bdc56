"""Topology validation: every error with its YAML path, message and hint; all at once."""
import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from vpclab.model.validation import TopologyError, default_mac, load_topology, parse_topology

REPO = Path(__file__).resolve().parents[2]
SEED = yaml.safe_load((REPO / "topologies" / "seed.yaml").read_text())


def issues_of(text: str):
    with pytest.raises(TopologyError) as caught:
        parse_topology(text, "lab.yaml")
    return caught.value.issues


def mutated(change) -> str:
    raw = copy.deepcopy(SEED)
    change(raw)
    return yaml.safe_dump(raw, sort_keys=False)


def vm2(raw):
    return raw["vms"]["ZIGI-VM2"]


BAD = [
    ("unknown top key", lambda r: r.update(hostz={}), "hostz", "unknown key", "did you mean 'hosts'"),
    ("bad lab name", lambda r: r.update(name="Seed Lab"), "name", "not a valid lab name", "lowercase"),
    ("bad encap", lambda r: r.update(encap="gre"), "encap", "'gre' is not one of geneve, vxlan", "default is geneve"),
    ("bad mode", lambda r: r.update(mapping={"mode": "lazy"}), "mapping.mode", "is not one of", "default is on-demand"),
    ("bad idle timeout", lambda r: r.update(mapping={"idle_timeout": 0}), "mapping.idle_timeout",
     "not a number of seconds", "default is 300"),
    ("bad max entries", lambda r: r.update(mapping={"max_entries": -3}), "mapping.max_entries",
     "not a number of cached mappings per router from 1 to 1000000", "default is 1024"),
    ("missing hosts", lambda r: r.pop("hosts"), "hosts", "is missing", "add a `hosts:` section"),
    ("unknown VPC", lambda r: vm2(r).update(vpc="ZIGI-VPC9"), "vms.ZIGI-VM2.vpc",
     "unknown VPC 'ZIGI-VPC9'", "did you mean 'ZIGI-VPC1'"),
    ("unknown host", lambda r: vm2(r).update(host="host3"), "vms.ZIGI-VM2.host",
     "unknown host 'host3'", "known: host1, host2"),
    ("IP outside CIDR", lambda r: vm2(r).update(ip="10.0.1.5"), "vms.ZIGI-VM2.ip",
     "10.0.1.5 is outside ZIGI-VPC1 (10.0.0.0/24)", "10.0.0.4-10.0.0.254"),
    ("reserved first four", lambda r: vm2(r).update(ip="10.0.0.2"), "vms.ZIGI-VM2.ip",
     "10.0.0.2 is reserved by AWS", "first four"),
    ("reserved last", lambda r: vm2(r).update(ip="10.0.0.255"), "vms.ZIGI-VM2.ip",
     "10.0.0.255 is reserved by AWS", "the last (10.0.0.255)"),
    ("same IP twice in a VPC", lambda r: vm2(r).update(ip="10.0.0.148"), "vms.ZIGI-VM2.ip",
     "10.0.0.148 is already used by ZIGI-VM1 in ZIGI-VPC1", "unique within its VPC"),
    ("duplicate MAC", lambda r: vm2(r).update(mac="02:00:5e:ad:58:40"), "vms.ZIGI-VM2.mac",
     "02:00:5e:ad:58:40 is already used by ZIGI-VM1", "omit it to get one generated"),
    ("duplicate ENI", lambda r: (r["vms"]["ZIGI-VM1"].update(eni="eni-0b2c"), vm2(r).update(eni="eni-0b2c")),
     "vms.ZIGI-VM2.eni", "eni-0b2c is already used by ZIGI-VM1", "every ENI id is unique"),
    ("duplicate VNI", lambda r: r["vpcs"].update({"ZIGI-VPC2": {"cidr": "10.1.0.0/24", "vni": 1001}}),
     "vpcs.ZIGI-VPC2.vni", "VNI 1001 is already used by VPC ZIGI-VPC1", "omit it to get one assigned"),
    ("VNI out of range", lambda r: r["vpcs"]["ZIGI-VPC1"].update(vni=2**24), "vpcs.ZIGI-VPC1.vni",
     "is not a VNI", "1 to 16777215"),
    ("duplicate underlay IP", lambda r: r["hosts"]["host2"].update(underlay_ip="192.168.100.1"),
     "hosts.host2.underlay_ip", "192.168.100.1 is already used by host host1", "its own underlay IP"),
    ("underlay IP outside", lambda r: r["hosts"]["host2"].update(underlay_ip="10.9.9.9"),
     "hosts.host2.underlay_ip", "outside the underlay 192.168.100.0/24", "pick an address from"),
    ("malformed CIDR", lambda r: r["vpcs"]["ZIGI-VPC1"].update(cidr="10.0.0.0/33"),
     "vpcs.ZIGI-VPC1.cidr", "'10.0.0.0/33' is not an IPv4 CIDR", "write it like 10.0.0.0/24"),
    ("CIDR with host bits", lambda r: r["vpcs"]["ZIGI-VPC1"].update(cidr="10.0.0.5/24"),
     "vpcs.ZIGI-VPC1.cidr", "10.0.0.5/24 has host bits set", "did you mean 10.0.0.0/24?"),
    ("CIDR too large", lambda r: r["vpcs"]["ZIGI-VPC1"].update(cidr="10.0.0.0/8"),
     "vpcs.ZIGI-VPC1.cidr", "/8 is outside what a VPC allows", "/16 to /28"),
    ("malformed IP", lambda r: vm2(r).update(ip="10.0.0.300"), "vms.ZIGI-VM2.ip",
     "'10.0.0.300' is not an IPv4 address", "write it like 10.0.0.148"),
    ("malformed MAC", lambda r: vm2(r).update(mac="02:93:0e:03:bb"), "vms.ZIGI-VM2.mac",
     "'02:93:0e:03:bb' is not a MAC address", "quote it"),
    ("multicast MAC", lambda r: vm2(r).update(mac="01:00:5e:00:00:01"), "vms.ZIGI-VM2.mac",
     "01:00:5e:00:00:01 is not a unicast MAC", "first byte must be even"),
    ("bad ENI", lambda r: vm2(r).update(eni="nic-1"), "vms.ZIGI-VM2.eni", "'nic-1' is not an ENI id", "write it like eni-0b2c"),
    ("bad VM name", lambda r: r["vms"].update({"ZIGI VM 3": {"vpc": "ZIGI-VPC1"}}), "vms.ZIGI VM 3",
     "bad name", "start with a letter"),
    ("VM is a list", lambda r: r["vms"].update({"ZIGI-VM3": ["10.0.0.9"]}), "vms.ZIGI-VM3",
     "must be a mapping, got a list", "`key: value` lines"),
    ("unknown VM key", lambda r: vm2(r).update(ipaddr="10.0.0.9"), "vms.ZIGI-VM2.ipaddr",
     "unknown key", "did you mean 'ip'"),
    ("missing VM ip", lambda r: vm2(r).pop("ip"), "vms.ZIGI-VM2.ip", "is missing", "needs vpc, host and ip"),
]


@pytest.mark.parametrize("case,change,path,message,hint", BAD, ids=[b[0] for b in BAD])
def test_bad_input_names_path_message_and_hint(case, change, path, message, hint):
    found = [i for i in issues_of(mutated(change)) if i.path == path]
    assert found, f"no issue at {path}: {issues_of(mutated(change))}"
    assert hint, "each row names the hint it expects: an empty one would match any hint"
    assert message in found[0].message
    assert hint in found[0].hint


@pytest.mark.parametrize("text,message", [
    ("", "the file is empty"),
    ("   \n# only a comment\n", "the file is empty"),
    ("name: [unclosed", "not valid YAML at line 1"),
    ("- a\n- list\n", "the file must be a YAML mapping, got a list"),
    ("name: seed\nname: again\n", "duplicate key 'name'"),
])
def test_unreadable_files(text, message):
    issues = issues_of(text)
    assert len(issues) == 1 and message in issues[0].message


def test_every_error_is_reported_at_once():
    def break_three(raw):
        raw["encap"] = "gre"
        vm2(raw)["ip"] = "10.0.1.5"
        raw["hosts"]["host2"]["underlay_ip"] = "nope"
    paths = {i.path for i in issues_of(mutated(break_three))}
    assert paths == {"encap", "vms.ZIGI-VM2.ip", "hosts.host2.underlay_ip"}


def test_same_ip_in_two_vpcs_is_allowed(multi_vpc):
    same = [vm for vm in multi_vpc.vms.values() if str(vm.ip) == "10.0.0.148"]
    assert {vm.vpc for vm in same} == {"ZIGI-VPC1", "ZIGI-VPC2"}


def test_seed_values_are_kept(seed):
    vm1, vm2_ = seed.vms["ZIGI-VM1"], seed.vms["ZIGI-VM2"]
    assert (str(vm1.ip), vm1.mac, vm1.host) == ("10.0.0.148", "02:00:5e:ad:58:40", "host1")
    assert (str(vm2_.ip), vm2_.mac, vm2_.host) == ("10.0.0.185", "02:93:0e:03:bb:88", "host2")
    assert seed.encap == "geneve" and seed.mapping_mode == "on-demand"


def test_defaults_are_deterministic_and_valid(multi_vpc):
    again = load_topology(REPO / "topologies" / "multi-vpc.yaml")
    assert multi_vpc == again
    assert [h.underlay_ip.packed[-1] for h in multi_vpc.hosts.values()] == [1, 2, 3]
    vm = multi_vpc.vms["ZIGI-VM1"]
    assert vm.mac == default_mac("ZIGI-VPC1", "ZIGI-VM1") and vm.mac.startswith("02:")
    assert vm.eni.startswith("eni-") and len(vm.eni) == 21
    assert len({v.mac for v in multi_vpc.vms.values()}) == len(multi_vpc.vms)


def test_assigned_vni_and_underlay_skip_the_ones_taken():
    text = """
name: t
hosts: {a: {}, b: {underlay_ip: 192.168.100.1}}
vpcs: {x: {cidr: 10.0.0.0/24}, y: {cidr: 10.1.0.0/24, vni: 1001}}
"""
    topo = parse_topology(text)
    assert str(topo.hosts["a"].underlay_ip) == "192.168.100.2"
    assert topo.vpcs["x"].vni == 1002


def test_cli_validate_exit_codes_and_no_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(mutated(lambda r: vm2(r).update(ip="10.0.1.5")))
    run = [sys.executable, "-m", "vpclab", "validate"]
    done = subprocess.run(run + [str(bad)], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 2
    assert "vms.ZIGI-VM2.ip: 10.0.1.5 is outside ZIGI-VPC1 (10.0.0.0/24)" in done.stderr
    assert "Traceback" not in done.stderr
    done = subprocess.run(run + [str(tmp_path / "missing.yaml")], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 2 and "cannot read the file" in done.stderr
    done = subprocess.run(run + ["topologies/seed.yaml"], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0 and "ok: lab 'seed', 2 hosts, 1 VPC, 2 VMs" in done.stdout


# -- any address plan the user writes works (the lab's own networks never restrict it) --------

@pytest.mark.parametrize("cidr", ["172.31.0.0/16", "192.168.100.0/24", "10.0.0.0/16"])
def test_a_vpc_may_use_the_ranges_the_lab_uses_for_itself(cidr):
    raw = copy.deepcopy(SEED)
    raw["vpcs"]["ZIGI-VPC1"]["cidr"] = cidr
    net = cidr.split("/")[0].rsplit(".", 1)[0]
    raw["vms"]["ZIGI-VM1"]["ip"], raw["vms"]["ZIGI-VM2"]["ip"] = f"{net}.10", f"{net}.11"
    topology = parse_topology(yaml.safe_dump(raw), "lab.yaml")
    assert str(topology.vpcs["ZIGI-VPC1"].cidr) == cidr


def test_the_underlay_range_can_be_set_and_host_ips_are_checked_against_it():
    raw = copy.deepcopy(SEED)
    raw["underlay"] = {"cidr": "10.254.0.0/16"}
    raw["hosts"] = {"host1": {"underlay_ip": "10.254.3.1"}, "host2": {}}
    topology = parse_topology(yaml.safe_dump(raw), "lab.yaml")
    assert str(topology.underlay) == "10.254.0.0/16"
    assert str(topology.hosts["host2"].underlay_ip) == "10.254.0.1"
    raw["hosts"]["host2"] = {"underlay_ip": "192.168.100.2"}
    found = issues_of(yaml.safe_dump(raw))
    assert found[0].path == "hosts.host2.underlay_ip" and "outside the underlay 10.254.0.0/16" in found[0].message


@pytest.mark.parametrize("cidr,message", [("169.254.0.0/16", "cannot be the hosts' network"),
                                          ("224.0.0.0/8", "cannot be the hosts' network"),
                                          ("10.0.0.0/31", "not a usable underlay"),
                                          ("10.0.0.1/24", "host bits set")])
def test_an_unusable_underlay_is_refused_with_its_path(cidr, message):
    found = issues_of(mutated(lambda r: r.update(underlay={"cidr": cidr})))
    assert found[0].path == "underlay.cidr" and message in found[0].message and found[0].hint


def many_hosts(count: int, underlay: str | None = None) -> str:
    raw = copy.deepcopy(SEED)
    raw["hosts"] = {f"hv{i}": {} for i in range(count)}
    raw["vms"]["ZIGI-VM1"]["host"], raw["vms"]["ZIGI-VM2"]["host"] = "hv0", f"hv{count - 1}"
    if underlay:
        raw["underlay"] = {"cidr": underlay}
    return yaml.safe_dump(raw)


def test_more_hosts_than_the_underlay_holds_is_a_clear_error_not_a_traceback():
    found = issues_of(many_hosts(300))
    assert found[0].path == "hosts" and "do not fit the underlay 192.168.100.0/24" in found[0].message
    assert "10.254.0.0/16" in found[0].hint


def test_a_bigger_underlay_takes_more_than_254_hosts():
    topology = parse_topology(many_hosts(300, "10.254.0.0/16"), "lab.yaml")
    assert len(topology.hosts) == 300
    assert len({h.underlay_ip for h in topology.hosts.values()}) == 300


def test_a_vm_named_like_a_host_is_refused_with_a_hint():
    found = issues_of(mutated(lambda r: r["vms"].update(host1={"vpc": "ZIGI-VPC1", "host": "host2",
                                                                 "ip": "10.0.0.20"})))
    assert [i.path for i in found] == ["vms.host1"]
    assert "already the name of a host" in found[0].message and "rename" in found[0].hint


@pytest.mark.parametrize("text", ["{}: 1\n", "[a]: 1\n", "vms:\n  {x: 1}: {}\n"])
def test_a_key_that_is_a_mapping_or_list_is_a_yaml_error_not_a_traceback(text):
    found = issues_of(text)
    assert "a key must be a plain name or number" in found[0].message


@pytest.mark.parametrize("key,value", [("mac", "02:00:00:00:00:01\n"), ("eni", "eni-1\n")])
def test_a_trailing_newline_does_not_sneak_past_a_pattern(key, value):
    found = issues_of(mutated(lambda r: vm2(r).update({key: value})))
    assert [i.path for i in found] == [f"vms.ZIGI-VM2.{key}"]
