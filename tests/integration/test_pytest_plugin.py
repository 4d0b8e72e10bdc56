"""The pytest plugin (vpclab/pytest_plugin.py) as a user's suite loads it: labs a test brings
up are removed whatever its outcome, and a failed test's evidence is kept in a folder it names."""
import subprocess
import sys

from tests.integration.labtools import SEED
from tests.integration.test_api import assert_nothing_left, unique


FAILING_TEST = """
def test_fails_with_a_lab(vpclab_lab, tmp_path):
    lab = vpclab_lab({seed!r}, name={name!r})
    with lab.capture(["ZIGI-VM2"], tmp_path / "cap") as cap:
        lab.ping("ZIGI-VM1", "ZIGI-VM2")
    assert False, "the learner's assertion"


def test_passes_with_a_lab(vpclab_lab):
    assert vpclab_lab({seed!r}, name={passing!r}).ping("ZIGI-VM1", "ZIGI-VM2")
"""


def test_the_plugin_keeps_a_failed_test_s_evidence_and_removes_its_labs(tmp_path):
    failing, passing = unique("fails"), unique("passes")
    (tmp_path / "test_user.py").write_text(FAILING_TEST.format(seed=str(SEED), name=failing,
                                                               passing=passing))
    keep = tmp_path / "kept"
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "vpclab.pytest_plugin",
                           "-p", "no:cacheprovider", f"--vpclab-keep={keep}", "-q",
                           str(tmp_path / "test_user.py")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 failed, 1 passed" in done.stdout
    folder = keep / "test_fails_with_a_lab" / failing
    assert f"test_fails_with_a_lab: {keep / 'test_fails_with_a_lab'}" in done.stdout
    assert "cookie=" in (folder / "host1.flows.txt").read_text()
    assert "Bridge br-int" in (folder / "host2.ovs.txt").read_text()
    assert (folder / "mapping-service.log").exists() and (folder / "events.jsonl").exists()
    assert list(folder.glob("captures/cap/ZIGI-VM2.eth0.pcap"))
    assert not (keep / "test_passes_with_a_lab").exists()        # only failures are kept
    assert_nothing_left(failing)
    assert_nothing_left(passing)
