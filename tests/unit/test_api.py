"""The Python API's promises that need no lab: topology mistakes raise with their YAML paths
before anything is built, names are checked like a file's, results say what the CLI says,
the cleanup guard defers signals, and `import vpclab.running.venv` needs only the standard library."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import vpclab
from vpclab.running import cleanup
from vpclab.packets.compare import PointResult
from vpclab.lab import Lab
from vpclab.results import ChangeReport, ExecResult

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "topologies" / "seed.yaml"
TWO_VMS = {"name": "tiny", "hosts": {"h1": {}},
           "vpcs": {"V": {"cidr": "10.0.0.0/24", "vni": 5}},
           "vms": {"A": {"vpc": "V", "host": "h1", "ip": "10.0.0.10"},
                   "B": {"vpc": "V", "host": "h1", "ip": "10.0.0.20"}}}


def test_a_dict_topology_is_validated_like_a_file():
    lab = Lab(TWO_VMS, name="other", mode="preload")
    assert lab.name == "other" and lab.topology.mapping_mode == "preload"
    assert TWO_VMS["name"] == "tiny" and "mapping" not in TWO_VMS     # the caller's dict is untouched


def test_every_topology_error_is_raised_with_its_yaml_path():
    broken = {**TWO_VMS, "vms": {"A": {"vpc": "NOPE", "host": "h9", "ip": "10.0.0.10"}}}
    with pytest.raises(vpclab.TopologyError) as raised:
        Lab(broken)
    paths = {issue.path for issue in raised.value.issues}
    assert {"vms.A.vpc", "vms.A.host"} <= paths
    assert "vms.A.vpc" in str(raised.value) and "vms.A.host" in str(raised.value)
    assert isinstance(raised.value, vpclab.VpclabError) and raised.value.exit_code == 2


def test_a_bad_mode_names_its_yaml_path_and_the_file():
    with pytest.raises(vpclab.TopologyError, match=r"seed.yaml: 1 error\n  mapping.mode: 'fast'"):
        Lab(SEED, mode="fast")


@pytest.mark.parametrize("name", ["../etc", "/", "Seed", "a b", "x" * 21, ""])
def test_names_from_the_api_are_checked_like_the_cli_s(name):
    with pytest.raises(vpclab.VpclabError, match="not a valid"):
        Lab(SEED, name=name)
    with pytest.raises(vpclab.VpclabError, match="not a valid"):
        Lab.attach(name)
    with pytest.raises(vpclab.VpclabError, match="not a valid"):
        Lab.remove(name)


def test_a_topology_is_a_path_or_a_dict():
    with pytest.raises(vpclab.VpclabError, match="not list"):
        Lab([1, 2])


def test_building_a_lab_needs_root_and_says_so(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(vpclab.VpclabError, match=r"needs root.*sudo python"):
        Lab(SEED).start()


def test_a_handle_that_never_started_touches_nothing_and_is_not_a_lab_yet():
    lab = Lab(SEED, name="never-started")
    assert lab.down() is False                     # a lab of that name may be someone else's
    with pytest.raises(vpclab.VpclabError, match="not running from this handle"):
        lab.exec("ZIGI-VM1", "true")


def test_change_reports_say_what_the_cli_says():
    result = {"change": "move ZIGI-VM2 to host1", "converged_ms": 4.4, "unconfirmed": [],
              "routers": {"host1": {"added": 6, "deleted": 0, "invalidated": 1},
                          "host2": {"added": 0, "deleted": 6, "invalidated": 0}},
              "reattached_ms": 70.0}
    report = ChangeReport.from_result(result)
    assert report.invalidated == ["host1"] and report.confirmed and report.reattached_ms == 70.0
    assert str(report).splitlines() == [
        "move ZIGI-VM2 to host1: confirmed by every affected router in 4.4 ms",
        "  routers: host1 (+6 -0 flows, 1 invalidated), host2 (+0 -6 flows, 0 invalidated)"]


def test_exec_results_check_their_exit_code():
    assert ExecResult("A", ["true"], 0, "", "").check().ok
    with pytest.raises(vpclab.VpclabError, match=r"A\$ false failed \(exit 1\): no"):
        ExecResult("A", ["false"], 1, "", "no").check()


def test_a_comparison_is_true_only_when_every_point_matches():
    same = PointResult("A:eth0", ["ARP request who-has 10.0.0.2 tell 10.0.0.1"],
                       ["ARP request who-has 10.0.0.2 tell 10.0.0.1"])
    other = PointResult("B:eth0", ["ICMP echo request 10.0.0.1 > 10.0.0.2"], [])
    assert vpclab.Comparison([same]).match and bool(vpclab.Comparison([same]))
    both = vpclab.Comparison([same, other])
    assert not both.match and both.differing == ["B:eth0"]
    assert [why.split(",")[0] for why in both.explanations] == [
        "B:eth0: 1 expected packet(s) never arrived"]
    assert str(both).endswith("verdict: 1 of 2 capture point(s) differ: B:eth0")


def test_signals_wait_until_a_removal_is_done():
    done = []
    with pytest.raises(KeyboardInterrupt):
        with cleanup.uninterrupted():
            os.kill(os.getpid(), signal.SIGINT)
            done.append("removal finished")       # not cut short by the Ctrl-C
    assert done == ["removal finished"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler   # handlers restored


def test_the_venv_helper_imports_with_the_standard_library_only():
    """The examples import it first, under whatever `python` started them."""
    code = ("import sys; sys.path.insert(0, %r); import vpclab.running.venv; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('yaml', 'scapy', 'os_ken', 'mininet')))" % str(REPO))
    done = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_api_reference_in_docs_is_the_docstrings_of_today():
    from vpclab import apidoc
    assert apidoc.DOC.read_text() == apidoc.render(apidoc.DOC.read_text()), \
        "docs/api.md is behind the docstrings: run .venv/bin/python -m vpclab.apidoc"
    for name in apidoc.CLASSES + apidoc.FUNCTIONS + apidoc.ERRORS:
        assert f"vpclab.{name}" in apidoc.DOC.read_text()


def test_sigterm_unwinds_while_a_lab_is_owned_and_the_script_s_handler_comes_back():
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    cleanup.own(1, lambda: None)
    try:
        with pytest.raises(cleanup.Terminated) as raised:     # a KeyboardInterrupt: pytest stops
            os.kill(os.getpid(), signal.SIGTERM)
        assert isinstance(raised.value, KeyboardInterrupt) and raised.value.signum == signal.SIGTERM
        # the first one unwinds; a second one would kill, as without vpclab
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        cleanup.release(1)
    assert signal.getsignal(signal.SIGHUP) is signal.SIG_DFL      # nothing owned: ours are gone


def test_a_signal_deferred_during_down_leaves_the_handle_consistent(monkeypatch):
    """Ctrl-C during the removal waits for it; afterwards the handle owns nothing, so the
    exit hook cannot remove the name again (it may be someone else's lab by then)."""
    from vpclab.running import lifecycle
    removed = []

    def remove(name):
        os.kill(os.getpid(), signal.SIGINT)         # the user presses Ctrl-C meanwhile
        removed.append(name)
        return True

    monkeypatch.setattr(lifecycle, "down", remove)
    lab = Lab(SEED, name="deferred")
    lab._state, lab._runner = FakeState(), None
    cleanup.own(id(lab), lab.down)
    with pytest.raises(KeyboardInterrupt):
        lab.down()
    assert removed == ["deferred"]                   # finished before the interrupt
    assert lab._state is None and id(lab) not in cleanup._owned


class FakeState:
    def runner(self):
        return None


def test_a_running_ping_that_never_recovers_has_lost_everything_after_the_break():
    from vpclab.packets.pinger import REPLY_GRACE, RunningPing
    ping = RunningPing.__new__(RunningPing)
    ping.requests = {seq: 100.0 + seq for seq in range(1, 21)}        # 20 s of pings
    ping.replies = {seq: 100.0 + seq for seq in range(1, 6)}          # answers stop after 5
    ping.stopped_at = 121.0
    assert ping.lost() == [seq for seq in range(6, 21) if 100.0 + seq < 121.0 - REPLY_GRACE]
    assert ping.lost(sent_after=110.0) == list(range(11, 20))


def test_a_diagram_is_never_written_through_a_symlink(tmp_path):
    from vpclab.packets.diagram import draw_for_user
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    (tmp_path / "diagram.svg").symlink_to(victim)
    with pytest.raises(vpclab.VpclabError, match="is a symlink"):
        draw_for_user(tmp_path, tmp_path / "diagram.svg")
    assert victim.read_text() == "keep me"


def test_a_bad_ip_is_a_vpclab_error_not_a_traceback():
    with pytest.raises(vpclab.VpclabError, match="'10.0.0.999' is not an IP address"):
        Lab(SEED).mapping("ZIGI-VPC1", "10.0.0.999")
