"""Subnets, route tables and a VM's subnet (issue 13): every check with its YAML path, message
and hint; the warning for an appliance that would drop; the round trip; live blackholes."""
import copy
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vpclab.model import routes_validation
from vpclab.commands import up as up_command
from vpclab.router.inventory import Inventory, InventoryError
from vpclab.model.topology import LOCAL, Route
from vpclab.model.validation import TopologyError, check_topology, load_topology, topology_to_raw

REPO = Path(__file__).resolve().parents[2]
TOPOLOGIES = REPO / "topologies"
ROUTER = yaml.safe_load((TOPOLOGIES / "vpc-router.yaml").read_text())
SHOP = "vpcs.shop"
VIA_FW = "vpcs.shop.route_tables.via-fw"


def router(change=lambda raw: None) -> dict:
    raw = copy.deepcopy(ROUTER)
    change(raw)
    return raw


def issues_of(raw: dict, live: bool = False):
    with pytest.raises(TopologyError) as caught:
        check_topology(raw, "lab.yaml", live)
    return caught.value.issues


def shop(raw):
    return raw["vpcs"]["shop"]


def subnets(raw):
    return shop(raw)["subnets"]


def via_fw(raw):
    return shop(raw)["route_tables"]["via-fw"]


def vm(raw, name):
    return raw["vms"][name]


def with_other_vpc(raw):
    """A second routed VPC with its own table named like shop's, and a VM of its own."""
    raw["vpcs"]["other"] = {"cidr": "10.60.0.0/16", "subnets": {"a": {"cidr": "10.60.1.0/24"}},
                            "route_tables": {"via-fw": []}}
    raw["vms"]["o-1"] = {"vpc": "other", "host": "hv-a", "ip": "10.60.1.10",
                         "source_dest_check": False}


BAD = [
    ("subnet CIDR malformed", lambda r: subnets(r)["web"].update(cidr="10.50.1.0/33"),
     f"{SHOP}.subnets.web.cidr", "'10.50.1.0/33' is not an IPv4 CIDR", "write it like 10.50.1.0/24"),
    ("subnet CIDR host bits", lambda r: subnets(r)["web"].update(cidr="10.50.1.7/24"),
     f"{SHOP}.subnets.web.cidr", "10.50.1.7/24 has host bits set", "did you mean 10.50.1.0/24?"),
    ("subnet outside the VPC", lambda r: subnets(r)["web"].update(cidr="10.51.1.0/24"),
     f"{SHOP}.subnets.web.cidr", "10.51.1.0/24 is outside the VPC's CIDR 10.50.0.0/16",
     "pick a block inside 10.50.0.0/16"),
    ("subnets overlap", lambda r: subnets(r)["dmz"].update(cidr="10.50.2.128/25"),
     f"{SHOP}.subnets.dmz.cidr", "10.50.2.128/25 overlaps subnet app (10.50.2.0/24)",
     "e.g. 10.50.0.0/25 is free"),
    ("subnet too small", lambda r: subnets(r)["dmz"].update(cidr="10.50.9.0/29"),
     f"{SHOP}.subnets.dmz.cidr", "/29 is outside what a subnet allows", "AWS subnets are /16 to /28"),
    ("subnet bad name", lambda r: subnets(r).update({"my web": {"cidr": "10.50.3.0/24"}}),
     f"{SHOP}.subnets.my web", "bad name", "start with a letter"),
    ("subnet without cidr", lambda r: subnets(r)["dmz"].pop("cidr"),
     f"{SHOP}.subnets.dmz", "is empty", "give it a cidr"),
    ("subnets not a mapping", lambda r: shop(r).update(subnets=["10.50.1.0/24"]),
     f"{SHOP}.subnets", "must be a mapping of subnet names, got a list", "vpc-router.yaml"),
    ("subnet's table unknown", lambda r: subnets(r)["app"].update(route_table="via-fv"),
     f"{SHOP}.subnets.app.route_table", "unknown route table 'via-fv'", "did you mean 'via-fw'?"),
    ("route table bad name", lambda r: shop(r)["route_tables"].update({"via fw": []}),
     f"{SHOP}.route_tables.via fw", "bad name", "start with a letter"),
    ("route table not a list", lambda r: shop(r)["route_tables"].update({"via-fw": {"a": 1}}),
     VIA_FW, "must be a list of routes, got a mapping", "- {destination: 10.50.1.0/24, target: fw}"),
    ("route not a mapping", lambda r: via_fw(r).append("10.50.3.0/24 fw"),
     f"{VIA_FW}[1]", "must be a mapping, got text", "`key: value`"),
    ("route without target", lambda r: via_fw(r)[0].pop("target"),
     f"{VIA_FW}[0].target", "is missing", "a target (a VM's name: its ENI)"),
    ("route unknown key", lambda r: via_fw(r)[0].update(gateway="fw"),
     f"{VIA_FW}[0].gateway", "unknown key", "known: destination, target"),
    ("destination malformed", lambda r: via_fw(r)[0].update(destination="10.50.1.0/33"),
     f"{VIA_FW}[0].destination", "'10.50.1.0/33' is not an IPv4 CIDR", "write it like 10.50.1.0/24"),
    ("destination host bits", lambda r: via_fw(r)[0].update(destination="10.50.1.10/24"),
     f"{VIA_FW}[0].destination", "10.50.1.10/24 has host bits set", "did you mean 10.50.1.0/24?"),
    ("destination an address", lambda r: via_fw(r)[0].update(destination="10.50.1.10"),
     f"{VIA_FW}[0].destination", "'10.50.1.10' is not a CIDR", "10.50.1.10/32 for one address"),
    ("destination the VPC's CIDR", lambda r: via_fw(r)[0].update(destination="10.50.0.0/16"),
     f"{VIA_FW}[0].destination", "10.50.0.0/16 is the VPC's CIDR: the implicit local route has it",
     "more specific than local"),
    ("destination part of a subnet", lambda r: via_fw(r)[0].update(destination="10.50.1.0/25"),
     f"{VIA_FW}[0].destination", "10.50.1.0/25 is inside the VPC but is not a subnet's CIDR",
     "only whole subnets: web (10.50.1.0/24)"),
    ("duplicate destination", lambda r: via_fw(r).append({"destination": "10.50.1.0/24", "target": "web-1"}),
     f"{VIA_FW}[1].destination", f"10.50.1.0/24 is already routed by {VIA_FW}[0]", "remove one"),
    ("target local", lambda r: via_fw(r).append({"destination": "0.0.0.0/0", "target": LOCAL}),
     f"{VIA_FW}[1].target", "a route to local cannot be added: the local route is implicit",
     "already routes the VPC's CIDR (10.50.0.0/16) to local"),
    ("target not a VM", lambda r: via_fw(r)[0].update(target="fv"),
     f"{VIA_FW}[0].target", "no VM named 'fv'", "did you mean 'fw'?"),
    ("target not a name", lambda r: via_fw(r)[0].update(target=5),
     f"{VIA_FW}[0].target", "must be a VM's name, got a number", "e.g. `target: fw`"),
    ("target in another VPC", lambda r: (with_other_vpc(r), via_fw(r)[0].update(target="o-1")),
     f"{VIA_FW}[0].target", "o-1 is in VPC other, not shop", "an ENI of the same VPC"),
    ("route tables without subnets", lambda r: shop(r).pop("subnets") and [vm(r, n).pop("subnet") for n in r["vms"]],
     f"{SHOP}.route_tables", "VPC shop has no subnets, so no router", "add a `subnets:` section"),
    ("VM outside its subnet", lambda r: vm(r, "web-1").update(ip="10.50.2.10"),
     "vms.web-1.ip", "10.50.2.10 is outside subnet web (10.50.1.0/24)",
     "pick an address in 10.50.1.4-10.50.1.254, or set `subnet: app`"),
    ("VM outside its VPC", lambda r: vm(r, "web-1").update(ip="10.51.1.10"),
     "vms.web-1.ip", "10.51.1.10 is outside shop (10.50.0.0/16)", "pick an address in"),
    ("VM's subnet unknown", lambda r: vm(r, "web-1").update(subnet="wbe"),
     "vms.web-1.subnet", "unknown subnet 'wbe' in VPC shop", "did you mean 'web'?"),
    ("VM's subnet not a name", lambda r: vm(r, "web-1").update(subnet=["web"]),
     "vms.web-1.subnet", "unknown subnet ['web'] in VPC shop", "known: web, app, dmz"),
    ("VM in no subnet", lambda r: vm(r, "web-1").pop("subnet") and vm(r, "web-1").update(ip="10.50.5.10"),
     "vms.web-1.ip", "10.50.5.10 is in no subnet of shop",
     "web (10.50.1.0/24), app (10.50.2.0/24), dmz (10.50.9.0/24)"),
    ("subnet in a VPC without subnets", lambda r: (r["vpcs"].update(flat={"cidr": "10.70.0.0/24"}),
                                                   r["vms"].update(f1={"vpc": "flat", "host": "hv-a", "ip": "10.70.0.10", "subnet": "web"})),
     "vms.f1.subnet", "VPC flat has no subnets", "or add a `subnets:` section to vpcs.flat"),
    ("dhcp not a boolean", lambda r: vm(r, "app-1").update(dhcp="yes"),
     "vms.app-1.dhcp", "'yes' is not true or false", "DHCP"),
]


@pytest.mark.parametrize("case,change,path,message,hint", BAD, ids=[b[0] for b in BAD])
def test_each_check_names_path_message_and_hint(case, change, path, message, hint):
    found = [i for i in issues_of(router(change)) if i.path == path]
    assert found, f"no issue at {path}: {issues_of(router(change))}"
    assert message in found[0].message
    assert hint in found[0].hint


def test_the_shipped_router_file_is_valid_and_as_the_issue_draws_it():
    topology = load_topology(TOPOLOGIES / "vpc-router.yaml")
    shop_ = topology.vpcs["shop"]
    assert shop_.routed and list(shop_.subnets) == ["web", "app", "dmz"]
    assert len({vm.host for vm in topology.vms.values()}) == 3
    assert shop_.subnets["app"].route_table == "via-fw"
    assert shop_.routes("via-fw") == (Route(shop_.cidr, LOCAL), Route(shop_.subnets["web"].cidr, "fw"))
    assert topology.vms["fw"].subnet == "dmz" and not topology.vms["fw"].source_dest_check
    assert topology.warnings == () and [vm.name for vm in topology.vms.values() if vm.dhcp] == ["app-1"]


@pytest.mark.parametrize("ip", ["10.50.9.0", "10.50.9.1", "10.50.9.2", "10.50.9.3", "10.50.9.255"])
def test_aws_reserves_five_addresses_in_each_subnet(ip):
    """10.50.9.1 is a fine address of a flat 10.50.0.0/16; in subnet dmz it is the router."""
    found = issues_of(router(lambda r: vm(r, "fw").update(ip=ip)))
    assert [(i.path, i.message) for i in found] == [
        ("vms.fw.ip", f"{ip} is reserved by AWS in subnet dmz (10.50.9.0/24)")]
    assert "the first four (10.50.9.0-10.50.9.3)" in found[0].hint


def test_a_subnet_address_next_to_the_reserved_ones_is_fine():
    topology = check_topology(router(lambda r: vm(r, "fw").update(ip="10.50.9.4")))
    assert str(topology.vms["fw"].ip) == "10.50.9.4"


def test_a_vm_without_subnet_gets_the_one_holding_its_ip():
    topology = check_topology(router(lambda r: [vm(r, n).pop("subnet") for n in r["vms"]]))
    assert {n: v.subnet for n, v in topology.vms.items()} == {"web-1": "web", "fw": "dmz",
                                                              "app-1": "app", "stg-web": "web"}


def test_an_appliance_with_source_dest_check_on_is_accepted_with_a_warning():
    topology = check_topology(router(lambda r: vm(r, "fw").pop("source_dest_check")))
    assert len(topology.warnings) == 1
    assert topology.warnings[0].startswith(f"{VIA_FW}[0].target: fw has source_dest_check on: ")
    assert "set `source_dest_check: false` on vms.fw" in topology.warnings[0]


def test_a_route_table_may_be_empty_and_unused():
    topology = check_topology(router(lambda r: shop(r)["route_tables"].update(spare=[])))
    assert topology.vpcs["shop"].route_tables["spare"] == ()
    assert topology.vpcs["shop"].routes("spare") == (Route(topology.vpcs["shop"].cidr, LOCAL),)


def test_a_route_outside_the_vpc_may_go_to_an_appliance():
    """0.0.0.0/0 to a NAT or firewall instance: AWS's usual default route."""
    topology = check_topology(router(lambda r: via_fw(r).append({"destination": "0.0.0.0/0",
                                                                 "target": "fw"})))
    assert topology.vpcs["shop"].route_tables["via-fw"][1].destination.prefixlen == 0


def test_dhcp_is_for_a_vpc_with_subnets():
    topology = check_topology(router(lambda r: vm(r, "app-1").update(dhcp=True)))
    assert topology.vms["app-1"].dhcp and not topology.vms["web-1"].dhcp
    assert check_topology(topology_to_raw(topology)) == topology
    flat = load_topology(TOPOLOGIES / "seed.yaml")
    raw = topology_to_raw(flat)
    raw["vms"]["ZIGI-VM1"]["dhcp"] = True
    found = issues_of(raw)
    assert found[0].path == "vms.ZIGI-VM1.dhcp" and "has no subnets (no router)" in found[0].message


def test_every_error_of_the_layout_is_reported_at_once():
    def break_three(raw):
        subnets(raw)["web"]["cidr"] = "10.51.1.0/24"
        via_fw(raw)[0]["target"] = "nobody"
        vm(raw, "app-1")["subnet"] = "nowhere"
    paths = {i.path for i in issues_of(router(break_three))}
    assert paths == {f"{SHOP}.subnets.web.cidr", f"{VIA_FW}[0].target", "vms.app-1.subnet"}


def test_a_refused_subnet_is_one_error_not_one_per_vm_and_route():
    """web refused: neither web-1 (in web) nor the route to web's CIDR says so again."""
    found = issues_of(router(lambda r: subnets(r)["web"].update(cidr="10.51.1.0/24")))
    assert [i.path for i in found] == [f"{SHOP}.subnets.web.cidr"]


def test_a_target_refused_for_its_own_error_is_not_reported_again_as_missing():
    found = issues_of(router(lambda r: vm(r, "fw").update(ip="10.50.9.1")))
    assert [i.path for i in found] == ["vms.fw.ip"]


# -- the round trip and the older files --------------------------------------------------------

@pytest.mark.parametrize("path", sorted(TOPOLOGIES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_file_round_trips(path):
    topology = load_topology(path)
    assert check_topology(topology_to_raw(topology)) == topology


@pytest.mark.parametrize("name", ["seed.yaml", "multi-vpc.yaml", "isolation.yaml"])
def test_an_older_file_means_what_it_meant(name):
    topology = load_topology(TOPOLOGIES / name)
    raw = topology_to_raw(topology)
    assert all(set(v) == {"cidr", "vni"} for v in raw["vpcs"].values())
    assert not any({"subnet", "dhcp"} & set(v) for v in raw["vms"].values())
    assert not any(v.routed for v in topology.vpcs.values())
    assert all(vm.subnet is None and not vm.dhcp for vm in topology.vms.values())


def test_the_round_trip_keeps_subnets_tables_and_routes():
    topology = load_topology(TOPOLOGIES / "vpc-router.yaml")
    raw = topology_to_raw(topology)
    assert raw["vpcs"]["shop"]["subnets"]["app"] == {"cidr": "10.50.2.0/24", "route_table": "via-fw"}
    assert raw["vpcs"]["shop"]["subnets"]["web"] == {"cidr": "10.50.1.0/24"}
    assert raw["vpcs"]["shop"]["route_tables"] == {"via-fw": [{"destination": "10.50.1.0/24",
                                                               "target": "fw"}]}
    assert raw["vms"]["fw"]["subnet"] == "dmz"


# -- live: a deleted target is a blackhole -------------------------------------------------------

@pytest.fixture
def inventory():
    return Inventory.from_topology(load_topology(TOPOLOGIES / "vpc-router.yaml"))


def test_deleting_the_target_leaves_a_blackhole_that_recovers(inventory, tmp_path):
    route = inventory.topology.vpcs["shop"].route_tables["via-fw"][0]
    assert not inventory.topology.blackhole("shop", route)
    assert inventory.topology.route_target("shop", route).name == "fw"
    gone = inventory.remove("fw")
    assert gone.topology.vpcs["shop"].route_tables["via-fw"] == (route,)
    assert gone.topology.blackhole("shop", route) and gone.topology.route_target("shop", route) is None
    gone.save(tmp_path / "inv.json")
    assert Inventory.load(tmp_path / "inv.json", inventory.topology) == gone
    fw = topology_to_raw(inventory.topology)["vms"]["fw"]
    back = gone.add("fw", {**fw, "host": "hv-c"})
    assert not back.topology.blackhole("shop", route)
    assert back.topology.route_target("shop", route).host == "hv-c"


def test_a_file_cannot_start_with_a_blackhole_but_a_live_lab_may_hold_one():
    raw = router(lambda r: r["vms"].pop("fw"))
    assert [i.path for i in issues_of(raw)] == [f"{VIA_FW}[0].target"]
    topology = check_topology(raw, "live", live=True)
    assert topology.blackhole("shop", topology.vpcs["shop"].route_tables["via-fw"][0])


def test_live_mode_still_refuses_a_target_in_another_vpc():
    raw = router(lambda r: (with_other_vpc(r), via_fw(r)[0].update(target="o-1")))
    assert [i.path for i in issues_of(raw, live=True)] == [f"{VIA_FW}[0].target"]


def test_the_local_route_is_never_a_blackhole(inventory):
    vpc = inventory.topology.vpcs["shop"]
    assert not inventory.topology.blackhole("shop", vpc.routes(None)[0])


def test_add_and_delete_a_route(inventory):
    added = inventory.add_route("shop", "via-fw", "10.50.9.0/24", "web-1")
    routes = added.topology.vpcs["shop"].route_tables["via-fw"]
    assert [(str(r.destination), r.target) for r in routes] == [("10.50.1.0/24", "fw"),
                                                                 ("10.50.9.0/24", "web-1")]
    assert added.ports == inventory.ports
    deleted = added.delete_route("shop", "via-fw", "10.50.1.0/24")
    assert [str(r.destination) for r in deleted.topology.vpcs["shop"].route_tables["via-fw"]] == \
        ["10.50.9.0/24"]
    assert added.delete_route("shop", "via-fw", "10.50.9.0/24").topology == inventory.topology


@pytest.mark.parametrize("change,message", [
    (lambda i: i.add_route("shop", "via-fv", "10.50.9.0/24", "fw"),
     "VPC shop has no route table 'via-fv'; its tables: via-fw"),
    (lambda i: i.add_route("shoe", "via-fw", "10.50.9.0/24", "fw"), "no VPC named 'shoe'; VPCs: shop"),
    (lambda i: i.add_route("shop", "via-fw", "10.50.1.0/255.255.255.0", "web-1"),
     "shop/via-fw already has a route to 10.50.1.0/255.255.255.0; delete it first"),
    (lambda i: i.add_route("shop", "via-fw", "10.50.9.0/24", "gone"),
     "no VM named 'gone' in VPC shop: a route's target is a VM of its VPC (its ENI); "
     "VMs: web-1, fw, app-1"),
    (lambda i: i.add_route("shop", "via-fw", "10.50.9.0/33", "fw"),
     f"{VIA_FW}[1].destination: '10.50.9.0/33' is not an IPv4 CIDR"),
    (lambda i: i.add_route("shop", "via-fw", "10.50.9.0/24", LOCAL),
     "no VM named 'local' in VPC shop"),
    (lambda i: i.delete_route("shop", "via-fw", "10.50.9.0/24"),
     "shop/via-fw has no route to 10.50.9.0/24; its routes: 10.50.1.0/24 -> fw "
     "(the implicit local route cannot be deleted)"),
    (lambda i: i.delete_route("shop", "main", "10.50.0.0/16"), "VPC shop has no route table 'main'"),
])
def test_bad_route_changes_are_refused_with_a_clear_message(inventory, change, message):
    with pytest.raises(InventoryError) as caught:
        change(inventory)
    assert message in str(caught.value)


def test_a_live_add_warns_like_a_file_does(inventory):
    added = inventory.add_route("shop", "via-fw", "10.50.9.0/24", "web-1")
    assert added.topology.warnings == (
        f"{VIA_FW}[1].target: web-1 has source_dest_check on: AWS accepts the route, but web-1 "
        "will drop the traffic not addressed to it; set `source_dest_check: false` on vms.web-1",)


def test_find_a_table_by_name_or_by_vpc_and_name():
    inventory = Inventory.from_topology(check_topology(router(with_other_vpc)))
    with pytest.raises(InventoryError, match="'via-fw' is in more than one VPC: say which, one of "
                                             "shop/via-fw, other/via-fw"):
        inventory.find_table("via-fw")
    assert inventory.find_table("other/via-fw") == ("other", "via-fw")
    with pytest.raises(InventoryError, match="no route table 'nope'; route tables: shop/via-fw, "
                                             "other/via-fw"):
        inventory.find_table("nope")
    alone = Inventory.from_topology(check_topology(router()))
    assert alone.find_table("via-fw") == ("shop", "via-fw")


# -- the CLI shows the warnings ---------------------------------------------------------------------

def test_validate_prints_each_warning_on_stderr(tmp_path):
    path = tmp_path / "warn.yaml"
    path.write_text(yaml.safe_dump(router(lambda r: vm(r, "fw").pop("source_dest_check"))))
    done = subprocess.run([sys.executable, "-m", "vpclab", "validate", str(path)],
                          capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0 and "ok: lab 'vpc-router'" in done.stdout
    assert done.stderr.startswith(f"warning: {VIA_FW}[0].target: fw has source_dest_check on")
    assert "warning" not in done.stdout
    clean = subprocess.run([sys.executable, "-m", "vpclab", "validate", "topologies/vpc-router.yaml"],
                           capture_output=True, text=True, cwd=REPO)
    assert clean.returncode == 0 and clean.stderr == ""


def test_up_prints_the_warnings_before_it_builds(monkeypatch, capsys):
    topology = check_topology(router(lambda r: vm(r, "fw").pop("source_dest_check")))

    class Built(Exception):
        pass

    class FakeLab:
        def __init__(self, *args, **kwargs):
            self.topology = topology

        def start(self, **kwargs):
            assert "warning: " in capsys.readouterr().err    # said before the build starts
            raise Built

    monkeypatch.setattr(up_command, "Lab", FakeLab)
    with pytest.raises(Built):
        up_command.main(SimpleNamespace(file="warn.yaml", name=None, mode=None))


# -- whatever the new sections hold, an answer, never a traceback -------------------------------

def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, prefix + (key,))
    if isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, prefix + (index,))


ROUTER_PATHS = [p for p in _paths(ROUTER) if p]
VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 70), st.text(max_size=8), st.sampled_from(
        ["10.50.1.0/24", "10.50.0.0/16", "10.50.1.0/33", "10.50.9.1", "fw", "web-1", "local",
         "via-fw", "web", "dmz", "0.0.0.0/0"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(
        ["cidr", "route_table", "destination", "target", "subnet", "dhcp", "via-fw", "web"]),
        inner, max_size=3)), max_leaves=12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_router_file_with_one_part_replaced_never_crashes(data):
    raw = copy.deepcopy(ROUTER)
    path = data.draw(st.sampled_from(ROUTER_PATHS))
    parent = raw
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = data.draw(VALUES)
    live = data.draw(st.booleans())
    try:
        check_topology(raw, "fuzz.yaml", live)
    except TopologyError as exc:
        assert exc.issues and all(i.path for i in exc.issues)
