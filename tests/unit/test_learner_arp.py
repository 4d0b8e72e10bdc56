"""A learner's answer_arp result becomes plain instructions, or a message the learner can
act on: the service never carries out something malformed."""
from ipaddress import IPv4Address

import pytest

from ryu_apps.learner_arp import Answer, BadAnswer, Cache, Send, parse_answer
from vpclab.learner import HOOKS, learner_record, read_learner_file
from vpclab.errors import VpclabError
from vpclab.router.mapping import Mapping, MappingTable

TABLE = MappingTable([Mapping("ZIGI-VPC1", 1001, "eni-1", IPv4Address("10.0.0.185"),
                              "02:93:0e:03:bb:88", "host2", IPv4Address("192.168.100.2"))])
HOSTS = {"host1", "host2"}
FRAME = b"\x00" * 42


def test_none_says_nothing_and_a_full_answer_is_carried_out():
    assert parse_answer(None, HOSTS, TABLE) == Answer()
    answer = parse_answer({"send": [{"port": "in_port", "frame": FRAME}],
                           "cache": [{"router": "host1", "vpc": "ZIGI-VPC1", "ip": "10.0.0.185"}]},
                          HOSTS, TABLE)
    assert answer == Answer((Send("in_port", FRAME),),
                            (Cache("host1", "ZIGI-VPC1", IPv4Address("10.0.0.185")),))


@pytest.mark.parametrize("result, says", [
    ("a reply", "must return None or a dict"),
    ({"reply": FRAME}, "must return None or a dict"),
    ({"send": {"port": 1, "frame": FRAME}}, "'send' must be a list"),
    ({"send": [{"port": 0, "frame": FRAME}]}, "a port is a port number"),
    ({"send": [{"port": "everyone", "frame": FRAME}]}, "a port is a port number"),
    ({"send": [{"port": 1, "frame": "text"}]}, "a frame is the bytes"),
    ({"cache": [{"router": "host9", "vpc": "ZIGI-VPC1", "ip": "10.0.0.185"}]}, "no router 'host9'"),
    ({"cache": [{"router": "host1", "vpc": "OTHER", "ip": "10.0.0.185"}]}, "has no (OTHER, 10.0.0.185)"),
    ({"cache": [{"router": "host1", "vpc": "ZIGI-VPC1", "ip": "nowhere"}]}, "not an IPv4 address"),
])
def test_a_malformed_answer_is_refused_saying_what_is_wrong(result, says):
    with pytest.raises(BadAnswer, match=says.replace("(", r"\(").replace(")", r"\)")):
        parse_answer(result, HOSTS, TABLE)


def test_a_learner_file_is_read_without_following_a_symlink(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("root's")
    (tmp_path / "arp_responder.py").symlink_to(secret)
    with pytest.raises(VpclabError, match="a symlink is not followed"):
        read_learner_file(tmp_path / "arp_responder.py")
    (tmp_path / "real.py").write_text("def answer_arp(miss, mappings):\n    return None\n")
    record = learner_record({"answer_arp": tmp_path / "real.py"}, None)
    assert record["hooks"]["answer_arp"]["filename"] == "real.py"
    with pytest.raises(VpclabError, match="parts a learner may replace: answer_arp, tunnel"):
        learner_record({"tunel": tmp_path / "real.py"}, None)
    assert {"answer_arp", "tunnel", "on_move", "check_source"} <= set(HOOKS)


@pytest.mark.parametrize("result, says", [
    ({"cache": [{"router": ["host1"], "vpc": "ZIGI-VPC1", "ip": "10.0.0.185"}]},
     "'router' is a string"),
    ({"cache": [{"router": "host1", "vpc": "ZIGI-VPC1", "ip": 167772345}]}, "'ip' is a string"),
    ({"cache": [{"router": "host1", "vpc": {"a": 1}, "ip": "10.0.0.185"}]}, "'vpc' is a string"),
    ({"send": [{"port": 2**40, "frame": FRAME}]}, "a port is a port number"),
    ({"send": [{"port": 0xffffff01, "frame": FRAME}]}, "a port is a port number"),
    ({"send": [{"port": True, "frame": FRAME}]}, "a port is a port number"),
    ({"send": [{"port": ["in_port"], "frame": FRAME}]}, "a port is a port number"),
    ({"send": [{"port": 1, "frame": b"\x00" * 9217}]}, "longer than any port carries"),
    ({"send": [{"port": "in_port", "frame": FRAME}] * 17}, "at most 16"),
    ({"cache": [{"router": "host1", "vpc": "ZIGI-VPC1", "ip": "10.0.0.185"}] * 17}, "at most 16"),
])
def test_an_answer_the_service_cannot_carry_out_is_refused_before_anything_is_sent(result, says):
    with pytest.raises(BadAnswer, match=says):
        parse_answer(result, HOSTS, TABLE)


def test_the_largest_answer_allowed_is_carried_out():
    answer = parse_answer({"send": [{"port": 0xffffff00, "frame": b"\x00" * 9216}] * 16}, HOSTS, TABLE)
    assert len(answer.sends) == 16


# -- the hook in the service: every failure is a learner_error event, never an exception --
import threading                                                    # noqa: E402
from collections import Counter, defaultdict                        # noqa: E402
from types import SimpleNamespace                                   # noqa: E402


from ryu_apps import learner_arp, ofmsg                             # noqa: E402
from ryu_apps.learner_arp import LearnerHook                        # noqa: E402
from vpclab.router.cache import RouterCache                                # noqa: E402
from vpclab.router.events import EventLog                                  # noqa: E402
from vpclab.router.inventory import Inventory                              # noqa: E402
from vpclab.sandbox import LearnerError                             # noqa: E402
from tests.unit.test_service_changes import Datapath                # noqa: E402


class Outbox(list):
    def put(self, messages):
        self.extend(messages)


class Code:
    """A stand-in for the sandboxed learner code: returns `result` or raises `error`,
    having printed `output`."""

    def __init__(self, result=None, error=None, output=""):
        self.result, self.error, self.printed, self.output = result, error, output, ""

    def call(self, name, *args):
        self.output = self.printed
        if self.error is not None:
            raise self.error
        return self.result


def hooked(seed, tmp_path, code):
    tmp_path.mkdir(exist_ok=True)
    service = SimpleNamespace(
        state_dir=tmp_path, inventory=Inventory.from_topology(seed),
        event_log=EventLog(tmp_path / "events.jsonl"), encoder=ofmsg.FlowEncoder(),
        lock=threading.RLock(), cached=defaultdict(lambda: RouterCache(16)),
        router_counters=defaultdict(Counter))
    service.datapaths = {dpid: Datapath(dpid) for dpid in service.inventory.routers()}
    service.outboxes = {dpid: Outbox() for dpid in service.datapaths}
    return service, LearnerHook(service, code)


def ask(service, hook, target="10.0.0.185"):
    dpid, router = next((d, r) for d, r in service.inventory.routers().items() if r.host == "host1")
    miss = SimpleNamespace(in_port=1, vni=1001, target=IPv4Address(target))
    hook.answer(service.datapaths[dpid], router, miss, FRAME, "ZIGI-VPC1",
                service.inventory.table())
    events = [e for e in service.event_log.read() if e["event"].startswith("learner_")]
    assert events[0]["event"] == "learner_called"           # said before the learner runs
    return events[-1], service.outboxes[dpid]


@pytest.mark.parametrize("code, says", [
    (Code({"cache": [{"router": ["host1"], "vpc": "ZIGI-VPC1", "ip": "10.0.0.185"}]}),
     "'router' is a string"),                                  # was a TypeError: unhashable
    (Code({"send": [{"port": 2**40, "frame": FRAME}]}), "a port is a port number"),  # was struct.error
    (Code(error=RuntimeError("the pipe broke")), "RuntimeError: the pipe broke"),
])
def test_whatever_goes_wrong_with_an_answer_is_a_learner_error_and_nothing_is_sent(
        seed, tmp_path, code, says):
    service, hook = hooked(seed, tmp_path, code)
    event, sent = ask(service, hook)
    assert event["event"] == "learner_error" and says in event["message"]
    assert event["host"] == "host1" and event["target"] == "10.0.0.185"
    assert list(sent) == []


def test_an_answer_that_fails_while_being_sent_is_a_learner_error(seed, tmp_path, monkeypatch):
    def broken(*args):
        raise ValueError("cannot encode")
    monkeypatch.setattr(learner_arp.ofmsg, "packet_to_port", broken)
    service, hook = hooked(seed, tmp_path, Code({"send": [{"port": "in_port", "frame": FRAME}]},
                                                output="building the reply\n"))
    event, sent = ask(service, hook)
    assert event["event"] == "learner_error" and "cannot encode" in event["message"]
    assert event["output"] == "building the reply\n" and list(sent) == []


def test_what_the_learner_printed_is_in_its_answer_and_its_error(seed, tmp_path):
    service, hook = hooked(seed, tmp_path, Code({"send": [{"port": "in_port", "frame": FRAME}]},
                                                output="asked for 10.0.0.185\n"))
    event, sent = ask(service, hook)
    assert event["event"] == "learner_answer" and event["output"] == "asked for 10.0.0.185\n"
    assert event["sent"] == ["in_port"] and len(sent) == 1
    error = LearnerError("your function answer_arp raised KeyError", kind="KeyError",
                         output="mappings: []\n")
    service, hook = hooked(seed, tmp_path / "2", Code(error=error, output="mappings: []\n"))
    event, _ = ask(service, hook)
    assert event["event"] == "learner_error" and event["output"] == "mappings: []\n"
    assert event["kind"] == "KeyError"
    service, hook = hooked(seed, tmp_path / "3", Code(output="x" * 10_000))
    event, _ = ask(service, hook)
    assert len(event["output"]) < 4200 and event["output"].endswith("[output cut]\n")
