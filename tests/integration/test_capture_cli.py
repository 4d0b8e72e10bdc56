"""`vpclab capture`, `compare` and `diagram` from the command line, on a running lab."""
import json
import subprocess

from tests.integration.labtools import REPO, SEED, VPCLAB, processes_mentioning
from vpclab.packets.trace import read_trace


def vpclab(*args):
    return subprocess.run(VPCLAB + [str(a) for a in args], capture_output=True, text=True,
                          cwd=REPO, timeout=120)


def test_capture_compare_diagram_and_no_tcpdump_left(vpclab_lab, tmp_path):
    lab = vpclab_lab(SEED)
    out = tmp_path / "cap"
    done = vpclab("capture", lab.name, "--on", "ZIGI-VM1,ZIGI-VM2,host1:eth0", "-o", out,
                  "--", "ZIGI-VM1", "ping", "-c", "1", "10.0.0.185")
    assert done.returncode == 0, done.stderr
    assert "== host1:eth0  (" in done.stdout                       # shown with -vv:
    assert "type 0x80(C) len 12 data 00000001 00000002]" in done.stdout   # the ENI option
    h1, h2 = (lab.nodes()[h]["underlay_ip"] for h in ("host1", "host2"))
    assert [p.line for p in read_trace(out / "host1.eth0.pcap")] == [    # one each way
        f"Geneve {h1} > {h2} vni 1001 eni 1>2: ICMP echo request 10.0.0.148 > 10.0.0.185",
        f"Geneve {h2} > {h1} vni 1001 eni 2>1: ICMP echo reply 10.0.0.185 > 10.0.0.148"]
    files = {p.name for p in out.iterdir()}
    assert {"ZIGI-VM1.eth0.pcap", "ZIGI-VM1.eth0.txt", "ZIGI-VM2.eth0.pcap", "host1.eth0.pcap",
            "capture.json", "topology.yaml", "mapping-service.jsonl"} <= files
    for point in ("ZIGI-VM1.eth0", "ZIGI-VM2.eth0", "host1.eth0"):   # text reads as its pcap
        from_pcap = [p.line for p in read_trace(out / f"{point}.pcap")]
        assert from_pcap and from_pcap == [p.line for p in read_trace(out / f"{point}.txt")]
    events = [json.loads(l) for l in (out / "mapping-service.jsonl").read_text().splitlines()]
    assert [(e["host"], e["target"], e["flows_installed"]) for e in events if e["event"] == "miss"] == [
        ("host1", "10.0.0.185", 3), ("host2", "10.0.0.148", 3)]   # answer, forward, trust its host
    meta = json.loads((out / "capture.json").read_text())
    assert meta["points"] == ["ZIGI-VM1:eth0", "ZIGI-VM2:eth0", "host1:eth0"]
    assert meta["commands"] == [{"node": "ZIGI-VM1", "command": ["ping", "-c", "1", "10.0.0.185"],
                                 "exit_code": 0}]
    tcpdumps = [p for p in lab.state.processes() if p.role == "tcpdump"]
    assert len(tcpdumps) == 3 and not [p for p in tcpdumps if p.is_alive()]
    assert processes_mentioning(str(out)) == []

    assert vpclab("compare", out / "host1.eth0.pcap", REPO / "traces" / "underlay" / "host1.eth0.txt").returncode == 0
    compared = vpclab("compare", out, REPO / "traces" / "seed")
    assert compared.returncode == 0 and "verdict: match (2 capture point(s))" in compared.stdout
    underlay = tmp_path / "host1.eth0.txt"
    underlay.write_text("Geneve host1 > host2 vni 1001: ICMP echo request ZIGI-VM1 > ZIGI-VM2\n"
                        "Geneve host2 > host1 vni 1001: ICMP echo reply ZIGI-VM2 > ZIGI-VM1\n")
    assert vpclab("compare", out, underlay).returncode == 0
    underlay.write_text("Geneve host1 > host2 vni 1002: *\n")
    assert vpclab("compare", out, underlay).returncode == 1
    underlay.write_text("Geneve host1 > host2 vni 1001 eni 2>1: *\n*\n")   # the option must agree
    assert vpclab("compare", out, underlay).returncode == 1

    drawn = vpclab("diagram", out, "-o", tmp_path / "seed.md")
    assert drawn.returncode == 0 and "participant L2 as mapping service" in (tmp_path / "seed.md").read_text()


def test_capture_on_an_unknown_node_says_which_exist(vpclab_lab, tmp_path):
    lab = vpclab_lab(SEED)
    done = vpclab("capture", lab.name, "--on", "ZIGI-VM9", "-o", tmp_path / "x", "--",
                  "ZIGI-VM1", "true")
    assert done.returncode == 2 and ("has no node 'ZIGI-VM9' (capture point 'ZIGI-VM9'); "
                                     "nodes: host1, host2, ZIGI-VM1, ZIGI-VM2") in done.stderr
    assert not [p for p in lab.state.processes() if p.role == "tcpdump" and p.is_alive()]
