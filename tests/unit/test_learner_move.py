"""Exercise 05's part of the mapping service: a learner's on_move answer becomes the
messages each router gets, in the learner's order, or a refusal the learner can act on;
in apply(), a move sends each router its own share, then exactly the learner's messages,
and a router that never cached the moved entry gets nothing at all."""
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from ryu_apps import mapping_service
from ryu_apps.learner_move import (
    BadAnswer, LearnerMove, Step, moved_drops, moved_mappings, parse_steps, routers_argument,
)
from tests.unit.test_service_changes import service
from vpclab.router.inventory import Inventory
from vpclab.router.pipeline import check_failed_cookie, mapping_cookie, negative_cookie
from vpclab.sandbox import LearnerCode
from vpclab.model.validation import load_topology

SOLUTION = (Path(__file__).resolve().parents[2] / "labs" / "05-cache-invalidation" / "solution"
            / "invalidation.py").read_text()
HOSTS = {"host1", "host2", "host3", "host4"}
VNIS = {"ZIGI-VPC1": 1001, "ZIGI-VPC2": 1002}
MOVER = mapping_cookie(1001, IPv4Address("10.0.0.185"))
PINGER = mapping_cookie(1001, IPv4Address("10.0.0.148"))
INVALIDATE = {"router": "host1", "message": "invalidate", "vpc": "ZIGI-VPC1", "ip": "10.0.0.185"}
BARRIER = {"router": "host1", "message": "barrier"}

FOUR_HOSTS = """
name: t05-unit
hosts: {host1: {}, host2: {}, host3: {}, host4: {}}
vpcs:
  ZIGI-VPC1: {cidr: 10.0.0.0/24, vni: 1001}
vms:
  ZIGI-VM1: {vpc: ZIGI-VPC1, host: host1, ip: 10.0.0.148}
  ZIGI-VM2: {vpc: ZIGI-VPC1, host: host2, ip: 10.0.0.185}
  ZIGI-VM3: {vpc: ZIGI-VPC1, host: host4, ip: 10.0.0.20}
"""


# -- the answer, parsed --------------------------------------------------------------------
def test_none_and_an_empty_list_send_nothing_and_messages_keep_their_order():
    assert parse_steps(None, HOSTS, VNIS) == [] and parse_steps([], HOSTS, VNIS) == []
    steps = parse_steps([BARRIER, INVALIDATE, {**BARRIER, "router": "host2"}], HOSTS, VNIS)
    assert steps == [Step("host1", "barrier"),
                     Step("host1", "invalidate", MOVER, "ZIGI-VPC1 10.0.0.185"),
                     Step("host2", "barrier")]
    assert [str(s) for s in steps] == ["barrier", "invalidate ZIGI-VPC1 10.0.0.185", "barrier"]
    other = parse_steps([{**INVALIDATE, "vpc": "ZIGI-VPC2"}], HOSTS, VNIS)[0]
    assert other.cookie == mapping_cookie(1002, IPv4Address("10.0.0.185")) != MOVER


@pytest.mark.parametrize("result, says", [
    ({"router": "host1", "message": "barrier"}, "returns a list of messages"),
    ("invalidate host1", "returns a list of messages"),
    ([BARRIER] * 65, "at most 64"),
    (["barrier"], "each message is"),
    ([{"router": "host1", "message": "flush"}], "each message is"),
    ([{**BARRIER, "router": "host9"}], "no router 'host9'"),
    ([{**BARRIER, "router": ["host1"]}], "'router' is a string"),
    ([{**BARRIER, "vpc": "ZIGI-VPC1"}], "a barrier names its router only"),
    ([{k: v for k, v in INVALIDATE.items() if k != "ip"}], "names its router, 'vpc' and 'ip'"),
    ([{**INVALIDATE, "vpc": "OTHER"}], "no VPC 'OTHER'"),
    ([{**INVALIDATE, "ip": "10.0.0.300"}], "not an IPv4 address"),
    ([{**INVALIDATE, "ip": 167772345}], "'ip' is a string"),
    ([{**INVALIDATE, "vpc": {"a": 1}}], "'vpc' is a string"),
])
def test_a_malformed_answer_is_refused_saying_what_is_wrong(result, says):
    with pytest.raises(BadAnswer, match=says):
        parse_steps(result, HOSTS, VNIS)


def test_the_largest_answer_allowed_is_carried_out():
    assert len(parse_steps([INVALIDATE, BARRIER] * 32, HOSTS, VNIS)) == 64


# -- what moved, and what the learner is told -------------------------------------------
def test_only_an_eni_whose_host_changed_has_moved(multi_vpc):
    old = Inventory.from_topology(multi_vpc)
    moved = moved_mappings(old.table(), old.move("ZIGI-VM2", "host3").table())
    assert [(b.host, a.host, str(a.ip), a.vpc) for b, a in moved] == \
        [("host2", "host3", "10.0.0.185", "ZIGI-VPC1")]
    assert moved_drops(moved) == {check_failed_cookie(1001, IPv4Address("10.0.0.185"))}
    assert moved_mappings(old.table(), old.table()) == []
    added = old.add("X", {"vpc": "ZIGI-VPC1", "host": "host1", "ip": "10.0.0.9"})
    assert moved_mappings(old.table(), added.table()) == []
    assert moved_mappings(added.table(), old.table()) == []          # deleted


def test_routers_are_told_the_mapping_entries_they_cache_by_vpc_name():
    cached = {"host1": [MOVER, negative_cookie(1001, IPv4Address("10.0.0.9")),
                        check_failed_cookie(1001, IPv4Address("10.0.0.185")), PINGER],
              "host2": []}
    told = routers_argument(cached, {1001: "ZIGI-VPC1"}, {"host1"})
    assert told == {"host1": {"connected": True, "cached": [{"vpc": "ZIGI-VPC1", "ip": "10.0.0.148"},
                                                            {"vpc": "ZIGI-VPC1", "ip": "10.0.0.185"}]},
                    "host2": {"connected": False, "cached": []}}


# -- apply(): what each router is sent ------------------------------------------------------
def four_hosts(tmp_path: Path):
    path = tmp_path / "four.yaml"
    path.write_text(FOUR_HOSTS)
    return load_topology(path)


def dpid(svc, host: str) -> int:
    return next(d for d, r in svc.inventory.routers().items() if r.host == host)


def wire(svc, host: str) -> list[str]:
    """The OpenFlow messages queued for a router, in order: "delete COOKIE" for a flow-mod
    deleting by cookie, "barrier", or the message type's number."""
    out = []
    for message in svc.outboxes[dpid(svc, host)].sent:
        kind = message[1]
        if kind == 14 and message[25] == 3:                     # FLOW_MOD, OFPFC_DELETE
            out.append(f"delete {int.from_bytes(message[8:16], 'big'):#x}")
        elif kind == 20:
            out.append("barrier")
        else:
            out.append(str(kind))
    return out


@pytest.fixture
def moving(tmp_path, monkeypatch):
    """A four-host service whose host1 caches ZIGI-VM2 and host4 caches ZIGI-VM1; a move of
    ZIGI-VM2 from host2 to host3 with `learner` (source) as on_move."""
    monkeypatch.setattr(mapping_service, "BARRIER_TIMEOUT", 0.05)    # nobody answers here
    made = []

    def run(learner: str | None, drop_on: tuple[str, ...] = ()):
        svc = service(four_hosts(tmp_path), tmp_path)
        svc.cached[dpid(svc, "host1")].add(MOVER, {20, 25})
        svc.cached[dpid(svc, "host4")].add(PINGER, {20, 25})
        for host in drop_on:
            svc.cached[dpid(svc, host)].add(check_failed_cookie(1001, IPv4Address("10.0.0.185")), {25})
        if learner is not None:
            code = LearnerCode(learner, "invalidation.py").start()
            made.append(code)
            svc.mover = LearnerMove(svc, code)
        result = svc.apply("move ZIGI-VM2", lambda inv: inv.move("ZIGI-VM2", "host3"))
        return svc, result
    yield run
    for code in made:
        code.close()


def learner_answers(svc) -> list[dict]:
    return [e for e in svc.event_log.read() if e["event"] in ("learner_answer", "learner_error")]


def test_the_solution_sends_the_caching_router_its_invalidate_then_its_barrier(moving):
    svc, result = moving(SOLUTION)
    assert wire(svc, "host1") == [f"delete {MOVER:#x}", "barrier"]      # the learner's, only
    assert wire(svc, "host4") == []                 # never cached it: nothing at all
    for host in ("host2", "host3"):                 # their own share, confirmed, nothing else
        assert wire(svc, host)[-1] == "barrier" and f"delete {MOVER:#x}" not in wire(svc, host)
    answer, = learner_answers(svc)
    assert answer["sent"] == {"host1": ["invalidate ZIGI-VPC1 10.0.0.185", "barrier"]}
    assert answer["from_host"] == "host2" and answer["to_host"] == "host3"
    assert MOVER not in svc.cached[dpid(svc, "host1")]
    assert PINGER in svc.cached[dpid(svc, "host4")]
    assert sorted(result["unconfirmed"]) == ["host1", "host2", "host3"]   # each waited for
    assert result["routers"]["host1"]["invalidated"] == 1


def test_the_learner_s_order_is_kept_and_the_service_adds_nothing_of_its_own(moving):
    swapped = 'def on_move(move, routers):\n    return [' \
              '{"router": "host1", "message": "barrier"}, ' \
              '{"router": "host1", "message": "invalidate", "vpc": move["vpc"], "ip": move["ip"]}]\n'
    svc, _ = moving(swapped)
    assert wire(svc, "host1") == ["barrier", f"delete {MOVER:#x}"]
    no_barrier = 'def on_move(move, routers):\n    return [' \
                 '{"router": "host1", "message": "invalidate", "vpc": move["vpc"], "ip": move["ip"]}]\n'
    svc, result = moving(no_barrier)
    assert wire(svc, "host1") == [f"delete {MOVER:#x}"]
    assert "host1" not in result["unconfirmed"]             # nothing asked it to confirm


def test_every_router_invalidated_is_sent_to_every_router(moving):
    everywhere = ('def on_move(move, routers):\n'
                  '    return [m for h in sorted(routers) for m in (\n'
                  '        {"router": h, "message": "invalidate", "vpc": move["vpc"], "ip": move["ip"]},\n'
                  '        {"router": h, "message": "barrier"})]\n')
    svc, _ = moving(everywhere)
    assert wire(svc, "host4") == [f"delete {MOVER:#x}", "barrier"]
    assert learner_answers(svc)[-1]["sent"]["host4"] == ["invalidate ZIGI-VPC1 10.0.0.185", "barrier"]


def test_a_router_holding_a_receive_check_drop_of_the_moved_entry_still_forgets_it(moving):
    svc, _ = moving(SOLUTION, drop_on=("host4",))
    drop = check_failed_cookie(1001, IPv4Address("10.0.0.185"))
    assert wire(svc, "host4") == [f"delete {drop:#x}", "barrier"]       # the service's own
    assert drop not in svc.cached[dpid(svc, "host4")]


def test_a_failing_learner_sends_nothing_and_the_old_entry_stays(moving):
    svc, result = moving("def on_move(move, routers):\n    return routers['host9']\n")
    assert wire(svc, "host1") == [] and wire(svc, "host4") == []
    error, = learner_answers(svc)
    assert error["event"] == "learner_error" and "KeyError" in error["message"]
    assert MOVER in svc.cached[dpid(svc, "host1")]           # nobody invalidated it
    svc, _ = moving("def on_move(move, routers):\n    return [{'router': 'host1'}]\n")
    assert wire(svc, "host1") == []
    assert "each message is" in learner_answers(svc)[-1]["message"]   # (one event log)


def test_without_a_learner_the_service_invalidates_the_caching_router_itself(moving):
    svc, _ = moving(None)
    assert wire(svc, "host1")[0] == f"delete {MOVER:#x}" and wire(svc, "host1")[-1] == "barrier"
    assert MOVER not in svc.cached[dpid(svc, "host1")]
