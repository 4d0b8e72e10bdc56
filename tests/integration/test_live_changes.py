"""Mapping lifecycle on the real stack: migration, invalidation, add/delete, restart, bounds."""
import json
import re
import signal
import subprocess
import time
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from tests.integration.labtools import (
    MULTI_VPC, REPO, VPCLAB, RunningPing, dump_flows, in_node, ping, signal_recorded,
)
from vpclab import api_client, live
from vpclab.errors import VpclabError
from vpclab.pipeline import mapping_cookie
from vpclab.shell import in_netns_of
from vpclab.wait import wait_until

VM2_COOKIE = f"cookie=0x{mapping_cookie(1001, IPv4Address('10.0.0.185')):x}"


def has_exited(pid: int) -> bool:
    """Gone, or a zombie its (stopped) parent has not reaped: its sockets are closed."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in "ZX"
    except OSError:
        return True


@pytest.mark.parametrize("mode", ["on-demand", "preload"])
def test_migration_keeps_a_running_ping_going(labs, tmp_path, mode):
    state, _ = labs.up(MULTI_VPC, f"mig-{mode[:3]}", mode)
    assert ping(state, "ZIGI-VM1", "10.0.0.185")
    subprocess.run(in_netns_of(state.nodes()["ZIGI-VM1"]["pid"], ["ping", "-c", "3", "-i", "0.2",
                                                                   "10.0.0.20"]), capture_output=True)
    with RunningPing(state, "ZIGI-VM1", "10.0.0.185", tmp_path) as pinger:
        wait_until(lambda: pinger.answered_after(0) >= 3, "the ping to be answered before the move")
        started = time.time()
        result = live.move_vm(state, "ZIGI-VM2", "host3")
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
    assert result["ok"] and state.nodes()["ZIGI-VM2"]["host"] == "host3"
    port = result["port"]
    assert f"in_port={port}" in dump_flows(state, "host3")
    assert f"in_port={port}" not in dump_flows(state, "host2")
    assert ping(state, "ZIGI-VM2", "10.0.0.148") and ping(state, "ZIGI-VM3", "10.0.0.185")
    if mode == "preload":      # every router of the VPC got the new entry, none was asked
        assert "set_field:192.168.100.3->tun_dst" in dump_flows(state, "host1")
        assert not [e for e in state.events.read() if e["event"] == "miss"]


def test_invalidation_reaches_exactly_the_routers_that_cached(labs):
    state, _ = labs.up(MULTI_VPC, "inval")
    assert ping(state, "ZIGI-VM1", "10.0.0.185")            # host1 now caches ZIGI-VM2
    assert VM2_COOKIE in dump_flows(state, "host1")
    assert VM2_COOKIE not in dump_flows(state, "host3")
    result = live.move_vm(state, "ZIGI-VM2", "host3")
    invalidated = {host for host, r in result["routers"].items() if r["invalidated"]}
    assert invalidated == {"host1"}
    assert VM2_COOKIE not in dump_flows(state, "host1")     # gone until asked again
    assert ping(state, "ZIGI-VM1", "10.0.0.185")
    assert "actions=set_field:0x3e9->tun_id,set_field:192.168.100.3->tun_dst" in dump_flows(state, "host1")
    stats = api_client.call(state, "GET", "/stats")
    assert stats["routers"]["host1"]["invalidations"] == 1 and stats["service"]["changes"] == 1


def test_add_and_delete_a_vm_while_running(labs):
    state, _ = labs.up(MULTI_VPC, "adddel")
    live.add_vm(state, "NEW-VM", "ZIGI-VPC1", "host3", "10.0.0.50")
    assert ping(state, "ZIGI-VM1", "10.0.0.50") and ping(state, "NEW-VM", "10.0.0.185")
    assert not ping(state, "NEW-VM", "10.0.0.77")          # another VPC's IP: unreachable
    live.delete_vm(state, "NEW-VM")
    assert "NEW-VM" not in state.nodes()
    arp = in_node(state, "ZIGI-VM1", ["arping", "-c", "2", "-w", "2", "-I", "eth0", "10.0.0.50"])
    assert arp.returncode != 0 and "Received 0 response" in arp.stdout
    gone = f"cookie=0x{mapping_cookie(1001, IPv4Address('10.0.0.50')):x}"
    assert all(gone not in dump_flows(state, h) for h in ("host1", "host2", "host3"))
    mappings = api_client.call(state, "GET", "/mappings")
    assert "10.0.0.50" not in {m["ip"] for m in mappings} and len(mappings) == 8


def test_bad_requests_change_nothing(labs):
    state, _ = labs.up(MULTI_VPC, "bad")
    before = api_client.call(state, "GET", "/mappings")
    refusals = {
        "unknown VPC": lambda: live.add_vm(state, "X", "NOPE", "host1", "10.0.0.9"),
        "invalid MAC": lambda: live.add_vm(state, "X", "ZIGI-VPC1", "host1", "10.0.0.9", mac="02:zz"),
        "invalid IP": lambda: live.add_vm(state, "X", "ZIGI-VPC1", "host1", "10.0.0.300"),
        "duplicate IP": lambda: live.add_vm(state, "X", "ZIGI-VPC1", "host1", "10.0.0.148"),
        "unknown host": lambda: live.move_vm(state, "ZIGI-VM2", "host9"),
        "unknown VM": lambda: live.delete_vm(state, "GHOST"),
        "no host": lambda: api_client.call(state, "PUT", "/vms/ZIGI-VM2", {}),
        "unknown field": lambda: api_client.call(state, "POST", "/vms", {"name": "X", "colour": 1}),
    }
    for name, attempt in refusals.items():
        with pytest.raises(VpclabError, match="refused|no host|no VM") as refused:
            attempt()
        assert "Traceback" not in str(refused.value), name
    assert api_client.call(state, "GET", "/mappings") == before
    assert len([n for n in state.nodes().values() if n["kind"] == "vm"]) == 8
    raw = api_client._UnixConnection(str(state.dir / "mapping.sock"), 5)   # a malformed body
    raw.request("POST", "/vms", body=b"{not json", headers={"Content-Type": "application/json"})
    response = raw.getresponse()
    assert response.status == 400 and b"not JSON" in response.read()
    raw.close()


def test_service_restart_without_outage_and_resync(labs, tmp_path):
    state, _ = labs.up(MULTI_VPC, "restart")
    assert ping(state, "ZIGI-VM1", "10.0.0.185")
    # a stale entry a router holds but the mapping service never gave: resync must remove it
    host1 = state.nodes()["host1"]
    directory = state.host_dir(host1["node"])
    ghost = mapping_cookie(1001, IPv4Address("10.0.0.99"))
    subprocess.run(in_netns_of(host1["pid"], [
        "ovs-ofctl", "-O", "OpenFlow13", "add-flow", f"unix:{directory}/br-int.mgmt",
        f"cookie={ghost:#x},table=10,priority=100,arp,metadata=1001,arp_op=1,arp_tpa=10.0.0.99,"
        "actions=drop"]), check=True)
    assert f"cookie={ghost:#x}" in dump_flows(state, "host1")
    service = [p for p in state.processes() if p.role == "mapping-service"][-1]
    runner = state.runner()
    with RunningPing(state, "ZIGI-VM1", "10.0.0.185", tmp_path) as pinger:
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
    flows = dump_flows(state, "host1")
    assert f"cookie={ghost:#x}" not in flows and VM2_COOKIE in flows   # stale gone, valid kept
    mappings = api_client.call(state, "GET", "/mappings")     # the refused change never happened
    assert ("ZIGI-VPC1", "10.0.0.9") not in {(m["vpc"], m["ip"]) for m in mappings}
    assert len(mappings) == 8 and "X" not in state.nodes()
    # every router took the restarted service's configuration (its Geneve TLV map included:
    # already there, which is not an error) and still forwards
    assert not [e for e in state.events.read() if e["event"] == "openflow_error"]
    assert ping(state, "ZIGI-VM1", "10.0.0.185") and ping(state, "ZIGI-VM2", "10.0.0.148")


def test_cache_is_bounded_per_router(labs, tmp_path):
    topology = tmp_path / "bounded.yaml"
    topology.write_text(MULTI_VPC.read_text().replace("encap: geneve",
                                                      "encap: geneve\nmapping: {max_entries: 1}"))
    state, _ = labs.up(topology, "bound")
    assert ping(state, "ZIGI-VM1", "10.0.0.185") and ping(state, "ZIGI-VM1", "10.0.0.20")
    cookies = set(re.findall(r"cookie=(0x1[0-9a-f]{14}),", dump_flows(state, "host1")))
    assert len(cookies) == 1
    assert api_client.call(state, "GET", "/stats")["routers"]["host1"]["evictions"] >= 1
    assert ping(state, "ZIGI-VM1", "10.0.0.185")        # an evicted entry is simply asked again


def test_cli_mapping_stats_move(labs):
    state, _ = labs.up(MULTI_VPC, "clim")

    def vpclab(*args):
        return subprocess.run(VPCLAB + list(args), capture_output=True, text=True, cwd=REPO)
    listed = vpclab("mapping", "list", state.name, "--json")
    assert listed.returncode == 0 and len(json.loads(listed.stdout)) == 8
    shown = json.loads(vpclab("mapping", "show", state.name, "ZIGI-VPC2", "10.0.0.148").stdout)
    assert shown["eni"] == state.nodes()["OTHER-VM1"]["eni"]
    moved = vpclab("move", state.name, "WEB-VM1", "host1")
    assert moved.returncode == 0 and "confirmed by every affected router in" in moved.stdout
    assert "interface re-attached on host1" in moved.stdout
    stats = vpclab("stats", state.name)
    assert stats.returncode == 0 and re.search(r"changes 1", stats.stdout)
    assert vpclab("move", state.name, "WEB-VM1", "nowhere").returncode == 2
