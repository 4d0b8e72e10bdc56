"""Making many nodes at once (vpclab.running.nodes_batch) and OVS's control socket (vpclab.running.unixctl),
without a lab: the one command line each node gets, how its answer is checked, and a
daemon's JSON replies read back."""
import json
import socket
import subprocess
import threading

import pytest

from vpclab.errors import VpclabError
from vpclab.running.identity import DONE
from vpclab.running import nodes_batch
from vpclab.running import limits as rlimits
from vpclab.running.limits import enough_descriptors
from vpclab.running.nodes_batch import SETUP_DONE, NodeJob, ansi_c, check, script
from vpclab.running.unixctl import call_all


def bash(line: str) -> str:
    return subprocess.run(["bash", "--norc", "-c", line], capture_output=True, text=True).stdout


@pytest.mark.parametrize("text", ["addr add 10.0.0.1/24 dev eth0\nlink set eth0 up",
                                  "it's a back\\slash\nand $HOME `x` \"q\""])
def test_several_lines_become_one_word_bash_reads_back_exactly(text):
    word = ansi_c(text)
    assert "\n" not in word                       # one line on the node's terminal
    assert bash(f"cat <<< {word}") == text + "\n"


def job(**kwargs) -> NodeJob:
    return NodeJob("v1", object, "ip-10-0-0-148", {}, **kwargs)


def test_a_node_s_one_command_sets_identity_then_sysctls_then_its_own_steps(tmp_path):
    made = job(sysctls={"net/ipv4/ip_default_ttl": "255"}, shell=["export A=1"],
               ip=["link set lo up", "link set eth0 up"])
    line = script(made, tmp_path, True)
    assert "\n" not in line
    identity, sysctl, steps = (line.index(f"echo {DONE}"), line.index("ip_default_ttl"),
                               line.index("export A=1"))
    assert identity < sysctl < steps < line.index("ip -batch -") < line.index(SETUP_DONE)
    assert "echo 255 > /proc/sys/net/ipv4/ip_default_ttl" in line
    assert ansi_c("link set lo up\nlink set eth0 up") in line
    # the setup marker only if every step worked: they are chained with &&
    setup = line[line.index("export A=1"):]
    assert setup.count("&&") == 2 and ";" not in setup.split("; }")[0]


def test_a_node_without_steps_still_says_its_setup_is_done(tmp_path):
    line = script(job(), tmp_path, True)
    assert "ip -batch" not in line and f"echo {SETUP_DONE}" in line


def test_mounts_are_made_private_first_unless_the_node_s_table_showed_them_private(tmp_path):
    assert "mount --make-rprivate /" in script(job(), tmp_path, False)
    assert "--make-rprivate" not in script(job(), tmp_path, True)


def test_the_steps_of_the_command_really_run_in_order_and_report(tmp_path):
    """The part after the identity, run by bash as the node's shell would."""
    line = script(job(shell=["echo one", "echo two"]), tmp_path, True)
    out = bash(line.split("2>&1; ", 1)[1])        # the identity needs a node: leave it out
    assert out.split() == ["one", "two", SETUP_DONE]
    failing = script(job(shell=["false", "echo two"]), tmp_path, True).split("2>&1; ", 1)[1]
    assert SETUP_DONE not in bash(failing)


def test_a_node_s_answer_must_carry_both_markers_on_lines_of_their_own():
    check("v1", f"{DONE}\r\n{SETUP_DONE}\r\n")
    with pytest.raises(VpclabError, match="hostname"):
        check("v1", f"mount: permission denied\r\n{SETUP_DONE}\r\n")
    with pytest.raises(VpclabError, match="interfaces.*RTNETLINK answers: File exists"):
        check("v1", f"{DONE}\r\nRTNETLINK answers: File exists\r\n")
    with pytest.raises(VpclabError):             # an echoed command line is not an answer
        check("v1", f"{{ mount --all && echo {DONE}; }}; {{ ip && echo {SETUP_DONE}; }}\r\n")


def serve_once(path, reply) -> threading.Thread:
    """A fake daemon on a unix socket: reads requests, answers each with reply(request)."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def run():
        conn, _ = server.accept()
        decoder, buffer = json.JSONDecoder(), ""
        with conn, server:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                buffer += data.decode()
                while buffer:
                    try:
                        request, end = decoder.raw_decode(buffer)
                    except json.JSONDecodeError:
                        break
                    buffer = buffer[end:]
                    text = json.dumps(reply(request))
                    conn.sendall(text[:5].encode())       # a reply cut in two
                    conn.sendall(text[5:].encode())
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_every_request_goes_on_one_connection_and_each_result_comes_back(tmp_path):
    path = tmp_path / "ovs-vswitchd.1.ctl"
    seen = []

    def reply(request):
        seen.append((request["method"], request["params"]))
        return {"id": request["id"], "result": f"OK {request['params'][1]}", "error": None}
    serve_once(path, reply)
    asked = [("tnl/neigh/set", ["br-phy", f"192.168.100.{n}", "0e:00:00:00:00:01"])
             for n in range(2, 40)]
    assert call_all(path, asked) == [f"OK 192.168.100.{n}" for n in range(2, 40)]
    assert seen == asked


def test_a_daemon_s_error_names_the_request(tmp_path):
    path = tmp_path / "ovs-vswitchd.1.ctl"
    serve_once(path, lambda r: {"id": r["id"], "result": None, "error": "bad MAC\n"})
    with pytest.raises(VpclabError, match="tnl/neigh/set br-phy 1.2.3.4 zz: bad MAC"):
        call_all(path, [("tnl/neigh/set", ["br-phy", "1.2.3.4", "zz"])])


def test_no_daemon_is_an_error_not_a_hang(tmp_path):
    with pytest.raises(VpclabError, match="ovs-vswitchd.9.ctl"):
        call_all(tmp_path / "ovs-vswitchd.9.ctl", [("version", [])], timeout=2)


class Limits:
    """resource's NOFILE limits, as the runner would see them (never the test's own)."""

    def __init__(self, soft, hard):
        self.now, self.set = (soft, hard), []

    def getrlimit(self, kind):
        return self.now

    def setrlimit(self, kind, value):
        self.set.append(value)
        self.now = value


@pytest.mark.parametrize("soft, hard, nodes, wanted", [
    (1024, 1048576, 1056, (1024 + 4 * 1056, 1048576)),    # a 1,024-VM lab on a default limit
    (20000, 20000, 1056, None),                             # enough already: left alone
    (1024, -1, 300, (1024 + 4 * 300, -1))])                 # hard limit unlimited
def test_the_runner_raises_only_its_own_soft_limit_to_fit_the_lab(monkeypatch, soft, hard,
                                                                  nodes, wanted):
    limits = Limits(soft, hard)
    monkeypatch.setattr(rlimits.resource, "getrlimit", limits.getrlimit)
    monkeypatch.setattr(rlimits.resource, "setrlimit", limits.setrlimit)
    monkeypatch.setattr(rlimits.resource, "RLIM_INFINITY", -1)
    enough_descriptors(nodes)
    assert limits.set == ([wanted] if wanted else [])


def test_a_hard_limit_too_low_for_the_lab_is_said_plainly(monkeypatch):
    limits = Limits(1024, 2048)
    monkeypatch.setattr(rlimits.resource, "getrlimit", limits.getrlimit)
    monkeypatch.setattr(rlimits.resource, "setrlimit", limits.setrlimit)
    with pytest.raises(VpclabError, match="1056 nodes needs about 5248 open files.*2048"):
        enough_descriptors(1056)
    assert limits.set == []
