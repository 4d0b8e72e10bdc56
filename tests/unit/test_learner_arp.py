"""A learner's answer_arp result becomes plain instructions, or a message the learner can
act on: the service never carries out something malformed."""
from ipaddress import IPv4Address

import pytest

from ryu_apps.learner_arp import Answer, BadAnswer, Cache, Send, parse_answer
from vpclab.learner import HOOKS, learner_record, read_learner_file
from vpclab.errors import VpclabError
from vpclab.mapping import Mapping, MappingTable

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
    with pytest.raises(VpclabError, match="parts a learner may replace: answer_arp"):
        learner_record({"tunnel": tmp_path / "real.py"}, None)
    assert "answer_arp" in HOOKS
