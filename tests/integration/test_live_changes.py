"""Mapping lifecycle on the real stack: migration, invalidation, add/delete, restart, bounds."""
import json
import re
import signal
import subprocess
import time
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from tests.integration.labtools import MULTI_VPC, REPO, VPCLAB, dump_flows, signal_recorded
from vpclab.running import api_client
from vpclab.errors import VpclabError
from vpclab.router.pipeline import mapping_cookie
from vpclab.running.wait import wait_until

VM2_COOKIE = f"cookie=0x{mapping_cookie(1001, IPv4Address('10.0.0.185')):x}"


def has_exited(pid: int) -> bool:
    """Gone, or a zombie its (stopped) parent has not reaped: its sockets are closed."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in "ZX"
    except OSError:
        return True


@pytest.mark.parametrize("mode", ["on-demand", "preload"])
def test_migration_keeps_a_running_ping_going(vpclab_lab, mode):
    lab = vpclab_lab(MULTI_VPC, mode=mode)
    assert lab.ping("ZIGI-VM1", "10.0.0.185")
    lab.exec("ZIGI-VM1", "ping", "-c", "3", "-i", "0.2", "10.0.0.20")
    with lab.running_ping("ZIGI-VM1", "10.0.0.185") as pinger:
        wait_until(lambda: pinger.answered_after(0) >= 3, "the ping to be answered before the move")
        started = time.time()
        result = lab.move("ZIGI-VM2", "host3")
        moved = time.time()
        wait_until(lambda: pinger.answered_after(moved) >= 10, "the same ping answered after the move",
                   timeout=30)
        pinger.stop()
    # the move happened while the ping ran, and only requests in flight during it were lost
    assert min(pinger.requests.values()) < started and max(pinger.replies.values()) > moved
    answered_before = max(seq for seq, t in pinger.replies.items() if t < started)
    lost_before = pinger.lost(sent_before=started)       # only those still in flight when it began
    assert all(seq > answered_before for seq in lost_before), f"lost before the move: {lost_before}"
    assert pinger.lost(sent_after=moved) == [], "requests sent after the move went unanswered"
    assert result.details["ok"] and lab.nodes()["ZIGI-VM2"]["host"] == "host3"
    port = result.details["port"]
    assert f"in_port={port}" in dump_flows(lab, "host3")
    assert f"in_port={port}" not in dump_flows(lab, "host2")
    assert lab.ping("ZIGI-VM2", "10.0.0.148") and lab.ping("ZIGI-VM3", "10.0.0.185")
    if mode == "preload":      # every router of the VPC got the new entry, none was asked
        assert "set_field:192.168.100.3->tun_dst" in dump_flows(lab, "host1")
        assert not [e for e in lab.state.events.read() if e["event"] == "miss"]


def test_invalidation_reaches_exactly_the_routers_that_cached(vpclab_lab):
    lab = vpclab_lab(MULTI_VPC)
    assert lab.ping("ZIGI-VM1", "10.0.0.185")            # host1 now caches ZIGI-VM2
    assert VM2_COOKIE in dump_flows(lab, "host1")
    assert VM2_COOKIE not in dump_flows(lab, "host3")
    assert lab.move("ZIGI-VM2", "host3").invalidated == ["host1"]
    assert VM2_COOKIE not in dump_flows(lab, "host1")     # gone until asked again
    assert lab.ping("ZIGI-VM1", "10.0.0.185")
    assert "actions=set_field:0x3e9->tun_id,set_field:192.168.100.3->tun_dst" in dump_flows(lab, "host1")
    stats = lab.stats()
    assert stats["routers"]["host1"]["invalidations"] == 1 and stats["service"]["changes"] == 1


def test_add_and_delete_a_vm_while_running(vpclab_lab):
    lab = vpclab_lab(MULTI_VPC)
    lab.add_vm("NEW-VM", vpc="ZIGI-VPC1", host="host3", ip="10.0.0.50")
    assert lab.ping("ZIGI-VM1", "10.0.0.50") and lab.ping("NEW-VM", "10.0.0.185")
    assert not lab.ping("NEW-VM", "10.0.0.77")          # another VPC's IP: unreachable
    lab.delete_vm("NEW-VM")
    assert "NEW-VM" not in lab.nodes()
    arp = lab.exec("ZIGI-VM1", "arping", "-c", "2", "-w", "2", "-I", "eth0", "10.0.0.50")
    assert arp.returncode != 0 and "Received 0 response" in arp.stdout
    gone = f"cookie=0x{mapping_cookie(1001, IPv4Address('10.0.0.50')):x}"
    assert all(gone not in dump_flows(lab, h) for h in ("host1", "host2", "host3"))
    mappings = lab.mappings()
    assert "10.0.0.50" not in {m["ip"] for m in mappings} and len(mappings) == 8


def test_bad_requests_change_nothing(vpclab_lab):
    lab = vpclab_lab(MULTI_VPC)
    before = lab.mappings()
    refusals = {
        "unknown VPC": lambda: lab.add_vm("X", vpc="NOPE", host="host1", ip="10.0.0.9"),
        "invalid MAC": lambda: lab.add_vm("X", vpc="ZIGI-VPC1", host="host1", ip="10.0.0.9", mac="02:zz"),
        "invalid IP": lambda: lab.add_vm("X", vpc="ZIGI-VPC1", host="host1", ip="10.0.0.300"),
        "duplicate IP": lambda: lab.add_vm("X", vpc="ZIGI-VPC1", host="host1", ip="10.0.0.148"),
        "unknown host": lambda: lab.move("ZIGI-VM2", "host9"),
        "unknown VM": lambda: lab.delete_vm("GHOST"),
        # the mapping service's own API, without the runner: it refuses these too
        "no host": lambda: api_client.call(lab.state, "PUT", "/vms/ZIGI-VM2", {}),
        "unknown field": lambda: api_client.call(lab.state, "POST", "/vms", {"name": "X", "colour": 1}),
    }
    for name, attempt in refusals.items():
        with pytest.raises(VpclabError, match="refused|no host|no VM") as refused:
            attempt()
        assert "Traceback" not in str(refused.value), name
    assert lab.mappings() == before
    assert len(lab.vms) == 8
    raw = api_client._UnixConnection(str(lab.state.dir / "mapping.sock"), 5)   # a malformed body
    raw.request("POST", "/vms", body=b"{not json", headers={"Content-Type": "application/json"})
    response = raw.getresponse()
    assert response.status == 400 and b"not JSON" in response.read()
    raw.close()


def test_service_restart_without_outage_and_resync(vpclab_lab):
    lab = vpclab_lab(MULTI_VPC)
    state = lab.state           # its processes, events and the service's raw API: what is tested
    assert lab.ping("ZIGI-VM1", "10.0.0.185")
    # a stale entry a router holds but the mapping service never gave: resync must remove it
    directory = state.host_dir(lab.nodes()["host1"]["node"])
    ghost = mapping_cookie(1001, IPv4Address("10.0.0.99"))
    lab.exec("host1", "ovs-ofctl", "-O", "OpenFlow13", "add-flow", f"unix:{directory}/br-int.mgmt",
             f"cookie={ghost:#x},table=10,priority=100,arp,metadata=1001,arp_op=1,arp_tpa=10.0.0.99,"
             "actions=drop", check=True)
    assert f"cookie={ghost:#x}" in dump_flows(lab, "host1")
    service = [p for p in state.processes() if p.role == "mapping-service"][-1]
    runner = state.runner()
    with lab.running_ping("ZIGI-VM1", "10.0.0.185") as pinger:
        wait_until(lambda: pinger.answered_after(0) >= 3, "the ping to be answered")
        signal_recorded(runner, signal.SIGSTOP)      # its supervisor cannot restart the service yet
        try:
            signal_recorded(service, signal.SIGKILL)
            wait_until(lambda: has_exited(service.pid), "the killed service to exit")
            killed = time.time()
            with pytest.raises(VpclabError, match="not answering: it is down"):
                api_client.call(state, "POST", "/vms", {"name": "X", "vpc": "ZIGI-VPC1",
                                                        "host": "host1", "ip": "10.0.0.9"})
            wait_until(lambda: pinger.answered_after(killed) >= 10, "pings answered without the service")
            assert has_exited(service.pid)          # those pings ran with no service at all
        finally:
            signal_recorded(runner, signal.SIGCONT)
        wait_until(lambda: sum(e["event"] == "router_ready" for e in state.events.read()) >= 6,
                   "every router resynchronised by the restarted service", timeout=20)
        resynced = time.time()
        wait_until(lambda: pinger.answered_after(resynced) >= 10, "pings answered after the resync")
        pinger.stop()
    assert min(pinger.requests.values()) < killed and max(pinger.replies.values()) > resynced
    assert pinger.lost() == []                          # forwarding never stopped
    flows = dump_flows(lab, "host1")
    assert f"cookie={ghost:#x}" not in flows and VM2_COOKIE in flows   # stale gone, valid kept
    mappings = lab.mappings()                                 # the refused change never happened
    assert ("ZIGI-VPC1", "10.0.0.9") not in {(m["vpc"], m["ip"]) for m in mappings}
    assert len(mappings) == 8 and "X" not in lab.nodes()
    # every router took the restarted service's configuration (its Geneve TLV map included:
    # already there, which is not an error) and still forwards
    assert not [e for e in state.events.read() if e["event"] == "openflow_error"]
    assert lab.ping("ZIGI-VM1", "10.0.0.185") and lab.ping("ZIGI-VM2", "10.0.0.148")


def test_cache_is_bounded_per_router(vpclab_lab, tmp_path):
    topology = tmp_path / "bounded.yaml"
    topology.write_text(MULTI_VPC.read_text().replace("encap: geneve",
                                                      "encap: geneve\nmapping: {max_entries: 1}"))
    lab = vpclab_lab(topology)
    assert lab.ping("ZIGI-VM1", "10.0.0.185") and lab.ping("ZIGI-VM1", "10.0.0.20")
    cookies = set(re.findall(r"cookie=(0x1[0-9a-f]{14}),", dump_flows(lab, "host1")))
    assert len(cookies) == 1
    assert lab.stats()["routers"]["host1"]["evictions"] >= 1
    assert lab.ping("ZIGI-VM1", "10.0.0.185")        # an evicted entry is simply asked again


def test_cli_mapping_stats_move(vpclab_lab):
    lab = vpclab_lab(MULTI_VPC)

    def vpclab(*args):
        return subprocess.run(VPCLAB + list(args), capture_output=True, text=True, cwd=REPO)
    listed = vpclab("mapping", "list", lab.name, "--json")
    assert listed.returncode == 0 and len(json.loads(listed.stdout)) == 8
    shown = json.loads(vpclab("mapping", "show", lab.name, "ZIGI-VPC2", "10.0.0.148").stdout)
    assert shown["eni"] == lab.nodes()["OTHER-VM1"]["eni"]
    moved = vpclab("move", lab.name, "WEB-VM1", "host1")
    assert moved.returncode == 0 and "confirmed by every affected router in" in moved.stdout
    assert "interface re-attached on host1" in moved.stdout
    stats = vpclab("stats", lab.name)
    assert stats.returncode == 0 and re.search(r"changes 1", stats.stdout)
    assert vpclab("move", lab.name, "WEB-VM1", "nowhere").returncode == 2
    added = vpclab("vm", "add", lab.name, "CLI-VM", "--vpc", "ZIGI-VPC1", "--host", "host3",
                   "--ip", "10.0.0.90")
    assert added.returncode == 0, added.stderr
    info = lab.nodes()["CLI-VM"]
    assert f"  CLI-VM: 10.0.0.90 {info['mac']} {info['eni']} on host3, port " in added.stdout
    assert "add CLI-VM: confirmed by every affected router in" in added.stdout
    assert lab.ping("CLI-VM", "ZIGI-VM1")
    mapped = vpclab("mapping", "add", lab.name, "MAP-VM", "--vpc", "ZIGI-VPC3", "--host", "host2",
                    "--ip", "172.16.0.30")
    assert mapped.returncode == 0 and "add MAP-VM: confirmed" in mapped.stdout, mapped.stderr
    removed = vpclab("mapping", "del", lab.name, "MAP-VM")
    assert removed.returncode == 0 and "MAP-VM" not in lab.nodes(), removed.stderr
    bad = vpclab("mapping", "show", lab.name, "ZIGI-VPC1", "10.0.0.999")
    assert bad.returncode == 2 and "'10.0.0.999' is not an IP address" in bad.stderr
    assert "Traceback" not in bad.stderr
