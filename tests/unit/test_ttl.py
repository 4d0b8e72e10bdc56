"""A VM's default TTL: per VM `ttl:` over the lab-wide `defaults: {ttl: N}`, validated 1..255."""
import copy
from pathlib import Path

import pytest
import yaml

from vpclab.router.inventory import Inventory
from vpclab.model.topology import DEFAULT_TTL
from vpclab.model.validation import TopologyError, check_topology, parse_topology, topology_to_raw

REPO = Path(__file__).resolve().parents[2]
SEED = yaml.safe_load((REPO / "topologies" / "seed.yaml").read_text())


def seed_with(change) -> dict:
    raw = copy.deepcopy(SEED)
    change(raw)
    return raw


def test_the_seed_answers_with_255_like_the_documented_instance():
    topology = parse_topology((REPO / "topologies" / "seed.yaml").read_text())
    assert topology.default_ttl == 255
    assert {vm.ttl for vm in topology.vms.values()} == {255}


def test_without_any_setting_a_vm_keeps_linux_64():
    raw = seed_with(lambda r: r.pop("defaults"))
    topology = check_topology(raw)
    assert DEFAULT_TTL == 64 and {vm.ttl for vm in topology.vms.values()} == {64}


def test_a_vm_setting_wins_over_the_lab_default():
    raw = seed_with(lambda r: r["vms"]["ZIGI-VM2"].update(ttl=128))
    topology = check_topology(raw)
    assert topology.vms["ZIGI-VM1"].ttl == 255 and topology.vms["ZIGI-VM2"].ttl == 128


def test_round_trip_keeps_both_levels():
    """The mapping service persists the inventory through topology_to_raw: TTLs must survive,
    and a VM added later without one gets the lab's default."""
    raw = seed_with(lambda r: r["vms"]["ZIGI-VM2"].update(ttl=128))
    topology = check_topology(raw)
    assert check_topology(topology_to_raw(topology)) == topology
    added = Inventory.from_topology(topology).add(
        "ZIGI-VM3", {"vpc": "ZIGI-VPC1", "host": "host1", "ip": "10.0.0.20"})
    assert added.topology.vms["ZIGI-VM3"].ttl == 255


@pytest.mark.parametrize("change,path", [
    (lambda r: r.update(defaults={"ttl": 0}), "defaults.ttl"),
    (lambda r: r.update(defaults={"ttl": 256}), "defaults.ttl"),
    (lambda r: r.update(defaults={"ttl": "high"}), "defaults.ttl"),
    (lambda r: r.update(defaults={"ttl": True}), "defaults.ttl"),
    (lambda r: r["vms"]["ZIGI-VM2"].update(ttl=-1), "vms.ZIGI-VM2.ttl"),
    (lambda r: r["vms"]["ZIGI-VM2"].update(ttl=1000), "vms.ZIGI-VM2.ttl"),
])
def test_out_of_range_ttls_are_refused_with_path_and_hint(change, path):
    with pytest.raises(TopologyError) as caught:
        check_topology(seed_with(change), "lab.yaml")
    [issue] = caught.value.issues
    assert issue.path == path
    assert "is not a TTL" in issue.message and "from 1 to 255" in issue.message
    assert issue.hint.startswith("default is ")


def test_unknown_key_in_defaults_is_named():
    with pytest.raises(TopologyError) as caught:
        check_topology(seed_with(lambda r: r.update(defaults={"tll": 255})), "lab.yaml")
    [issue] = caught.value.issues
    assert issue.path == "defaults.tll" and "did you mean 'ttl'" in issue.hint
