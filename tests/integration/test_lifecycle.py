"""The CLI end to end, and leaving nothing behind: after down, and after a crash."""
import json
import re
import signal
import subprocess

import pytest

from tests.integration.labtools import (
    MULTI_VPC, REPO, SEED, VPCLAB, processes_mentioning, root_namespace_snapshot, signal_recorded,
)
from vpclab import Lab, VpclabError
from vpclab.pytest_plugin import unique_name
from vpclab.running.state import LabState, namespace_exists


def vpclab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(VPCLAB + list(args), capture_output=True, text=True, cwd=REPO, timeout=120)


@pytest.fixture
def unique():
    """Unique names for labs the CLI starts; every one is removed at the test's end, even
    when an assertion failed halfway (a test must never leave a lab running on a shared
    machine). Labs a test starts only to crash them come from vpclab_lab."""
    names = []

    def make(tag: str) -> str:
        names.append(unique_name(tag))
        return names[-1]
    yield make
    for name in names:
        Lab.remove(name)


def assert_gone(state: LabState, recorded) -> None:
    assert recorded, "the lab recorded no processes"
    assert [p for p in recorded if p.is_alive()] == []
    assert not namespace_exists(state.namespace)
    assert not state.dir.exists()
    assert processes_mentioning(str(state.dir)) == []


def test_cli_up_exec_status_down_leaves_the_machine_as_it_was(unique):
    name = unique("cli")
    before = root_namespace_snapshot()
    up = vpclab("up", str(MULTI_VPC), "--name", name)
    try:
        assert up.returncode == 0, up.stderr
        for phase in ("nodes and links", "mapping service", "virtual routers", "ready in"):
            assert phase in up.stdout
        assert re.search(r"ZIGI-VM1\s+ZIGI-VPC1\s+host1\s+10\.0\.0\.148", up.stdout)
        ping = vpclab("exec", name, "ZIGI-VM1", "--", "ping", "-c", "1", "10.0.0.185")
        assert ping.returncode == 0 and "1 received" in ping.stdout
        assert vpclab("exec", name, "WEB-VM2", "--", "sh", "-c", "exit 3").returncode == 3
        wrong = vpclab("exec", name, "NO-SUCH-VM", "--", "true")
        assert wrong.returncode == 2 and "has no node 'NO-SUCH-VM'" in wrong.stderr
        status = json.loads(vpclab("status", name, "--json").stdout)
        assert status["state"] == "ready" and len(status["nodes"]) == 11
        assert status["processes"] and all(p["alive"] for p in status["processes"])
        assert name in vpclab("status").stdout
        again = vpclab("up", str(MULTI_VPC), "--name", name)
        assert again.returncode == 2 and "already running" in again.stderr
        recorded = LabState(name).processes()
    finally:
        down = vpclab("down", name)
    assert down.returncode == 0 and "removed" in down.stdout
    assert_gone(LabState(name), recorded)
    assert root_namespace_snapshot() == before
    assert "was not running" in vpclab("down", name).stdout      # idempotent


def test_a_killed_runner_is_cleaned_by_down(vpclab_lab):
    before = root_namespace_snapshot()
    lab = vpclab_lab(SEED)
    name, state = lab.name, lab.state
    recorded = state.processes()
    signal_recorded(state.runner(), signal.SIGKILL)
    leftovers = [p for p in recorded if p.role != "runner" and p.is_alive()]
    # the daemons outlive their runner; the nodes' shells may or may not yet (they end when
    # the runner's side of their pty closes), so only the daemons are required here
    assert {p.role for p in leftovers} >= {"ovs-vswitchd", "ovsdb-server", "mapping-service"}
    assert "stale" in json.loads(vpclab("status", name, "--json").stdout)["state"]
    assert vpclab("down", name).returncode == 0
    assert_gone(state, recorded)
    assert root_namespace_snapshot() == before


def test_up_after_a_crash_replaces_the_stale_lab(vpclab_lab):
    lab = vpclab_lab(SEED)
    name, state = lab.name, lab.state
    stale = state.processes()
    signal_recorded(state.runner(), signal.SIGKILL)
    up = vpclab("up", str(SEED), "--name", name)
    assert up.returncode == 0, up.stderr
    assert [p for p in stale if p.is_alive()] == []
    assert vpclab("exec", name, "ZIGI-VM1", "--", "ping", "-c", "1", "10.0.0.185").returncode == 0
    # the old handle drove the crashed lab: it must not remove the new one of the same name
    with pytest.raises(VpclabError, match="another lab of that name runs now"):
        lab.exec("ZIGI-VM1", "true")
    assert lab.down() is False and LabState(name).is_running()
    assert Lab.remove(name)
    assert_gone(state, stale)


def test_bad_file_fails_cleanly_without_creating_anything(unique):
    name = unique("bad")
    done = vpclab("up", str(REPO / "README.md"), "--name", name)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert not LabState(name).exists()


def test_run_opens_a_cli_where_display_names_work_then_removes_the_lab(unique):
    name = unique("run")
    script = "ZIGI-VM1 ping -c 1 ZIGI-VM2\nZIGI-VM2 ip -br addr show eth0\nexit\n"
    done = subprocess.run(VPCLAB + ["run", str(SEED), "--name", name], input=script,
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    shown = done.stdout + done.stderr     # Mininet's CLI prints node output on stderr
    assert "1 received" in shown and "10.0.0.185/24" in shown
    assert shown.index("routers programmed") < shown.index("1 received")
    assert not LabState(name).exists()
