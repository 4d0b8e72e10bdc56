"""The supervisor and `status` on real (sleeping) processes: restart, failure, report.

No root and no OVS: a `sleep` stands in for a daemon, recorded in a lab state
directory under tmp_path; the real labs are in tests/integration/test_router_restart.py.
"""
import os
import signal
import subprocess
import threading

import pytest

from vpclab.running import health, supervisor
from vpclab.commands.status import _state_line
from vpclab.running.health import lab_status
from vpclab.errors import VpclabError
from vpclab.running.state import LabState


class FakeLab:
    """A lab state with one supervised 'ovs-vswitchd of host2' and a restart that
    fails as often as asked, then starts a new sleeper and records it."""

    def __init__(self, root, failures: int = 0):
        self.state = LabState("unit", root)
        self.state.dir.mkdir()
        self.state.record_process(os.getpid(), "runner")       # "the runner is alive"
        self.state.progress.write("ready")
        self.sleepers = [self._sleeper()]
        self.failures = failures
        self.calls = []

    def _sleeper(self):
        proc = subprocess.Popen(["sleep", "300"])
        self.state.record_process(proc.pid, "ovs-vswitchd", node="host2")
        return proc

    def restart(self, role, node):
        self.calls.append((role, node))
        if len(self.calls) <= self.failures:
            raise VpclabError("host2: ovs-vswitchd failed\nbridge br-int: no such device")
        self.sleepers.append(self._sleeper())
        # started but not yet configured: it exists, and it is still down
        self.seen_while_restarting = _state_line(lab_status(self.state))

    def kill_current(self):
        self.sleepers[-1].send_signal(signal.SIGKILL)
        self.sleepers[-1].wait()

    def close(self):
        for proc in self.sleepers:
            proc.kill()
            proc.wait()


@pytest.fixture
def lab(tmp_path, monkeypatch):
    monkeypatch.setattr(supervisor, "BACKOFF", (0,))
    made = []

    def make(failures=0):
        made.append(FakeLab(tmp_path, failures))
        return made[-1]
    yield make
    for fake in made:
        fake.close()


def supervise(fake) -> supervisor.Supervisor:
    return supervisor.Supervisor(fake.state, fake.restart, threading.Lock(), lambda: False)


def test_a_dead_daemon_is_restarted_and_its_new_pid_recorded(lab):
    fake = lab()
    watcher = supervise(fake)
    watcher.check(watcher.current())
    assert fake.calls == []                                  # alive: left alone
    fake.kill_current()
    assert health.down_parts(fake.state)[0]["part"] == "ovs-vswitchd of host2"
    watcher.check(watcher.current())
    assert fake.calls == [("ovs-vswitchd", "host2")]
    assert fake.seen_while_restarting == "degraded: ovs-vswitchd of host2 is down (restarting)"
    current = watcher.current()[("ovs-vswitchd", "host2")]
    assert current.pid == fake.sleepers[-1].pid and current.is_alive()
    assert health.down_parts(fake.state) == []
    events = [e["event"] for e in fake.state.progress.read()]
    assert events[-2:] == ["process_died", "process_restarted"]


def test_a_failed_restart_is_reported_and_retried_never_raised(lab):
    fake = lab(failures=2)
    watcher = supervise(fake)
    fake.kill_current()
    watcher.check(watcher.current())                         # fails: must not raise
    down = health.down_parts(fake.state)
    assert [d["status"] for d in down] == ["restart failed"]
    assert "ovs-vswitchd failed" in down[0]["error"] and "no such device" in down[0]["error"]
    info = lab_status(fake.state)
    assert info["state"] == "degraded"
    assert _state_line(info).startswith("degraded: ovs-vswitchd of host2 is down (restart failed: ")
    failed = [e for e in fake.state.progress.read() if e["event"] == "restart_failed"]
    assert failed[0]["node"] == "host2" and "no such device" in failed[0]["error"]
    watcher.check(watcher.current())                         # second failure
    watcher.check(watcher.current())                         # third try works
    assert len(fake.calls) == 3 and fake.sleepers[-1].poll() is None
    assert lab_status(fake.state)["state"] == "ready" and health.down_parts(fake.state) == []


def test_status_names_a_dead_part_before_the_supervisor_acts(lab):
    fake = lab()
    assert lab_status(fake.state)["state"] == "ready"
    fake.kill_current()
    info = lab_status(fake.state)
    assert info["state"] == "degraded"
    assert info["down"][0]["role"] == "ovs-vswitchd" and info["down"][0]["node"] == "host2"
    assert _state_line(info) == "degraded: ovs-vswitchd of host2 is down (not restarted yet)"


def test_a_part_that_keeps_dying_is_restarted_with_backoff(lab, monkeypatch):
    monkeypatch.setattr(supervisor, "BACKOFF", (60,))
    fake = lab()
    watcher = supervise(fake)
    fake.kill_current()
    watcher.check(watcher.current())
    assert len(fake.calls) == 1
    fake.kill_current()                                      # dies right after its restart
    watcher.check(watcher.current())
    watcher.check(watcher.current())
    assert len(fake.calls) == 1                              # waits, does not spin
    assert "died again" in health.down_parts(fake.state)[0]["error"]



def test_the_real_backoff_restarts_twice_at_once_then_waits_longer():
    assert [supervisor._backoff(n) for n in range(1, 10)] == [0, 0, 1, 2, 5, 10, 30, 30, 30]
