"""The Python API on real labs: the examples run as a user runs them, a lab is removed
however a script leaves it (exception, SIGTERM, Ctrl-C, no `down` at all), an attached
lab is not. (The pytest plugin's own tests are in test_pytest_plugin.py.)"""
import os
import signal
import subprocess
import sys
import textwrap
import uuid

import pytest

import vpclab
from tests.integration.labtools import REPO, SEED, processes_mentioning
from vpclab.state import LabState, namespace_exists

PYTHON = "/usr/bin/python"      # `sudo python`: Debian's python, from python-is-python3


def unique(tag: str) -> str:
    return f"t{uuid.uuid4().hex[:4]}-{tag}"


def assert_nothing_left(name: str) -> None:
    state = LabState(name)
    assert not state.dir.exists(), f"{state.dir} is left"
    assert not namespace_exists(state.namespace)
    assert processes_mentioning(f"vpclab-{name}") == []


@pytest.mark.parametrize("example, says, lab", [
    ("first_ping.py", "verdict: MATCH", "first-ping"),
    ("migration.py", "answered after the move", "migration"),
    ("identical_vpcs.py", "verdict: ISOLATED", "identical-vpcs"),
])
def test_the_examples_run_as_the_readme_says(tmp_path, example, says, lab):
    """`python examples/NAME.py` as root: Debian's python, which re-runs it with .venv's."""
    done = subprocess.run([PYTHON, str(REPO / "examples" / example)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert says in done.stdout
    assert len(done.stdout.splitlines()) <= 10        # a few lines, not a log
    if example == "first_ping.py":
        assert list(tmp_path.glob("captures/first-ping-*/first-ping.svg"))
    assert_nothing_left(lab)


def test_an_exception_in_the_with_block_leaves_nothing(tmp_path):
    name = unique("raise")
    with pytest.raises(RuntimeError, match="the learner's bug"):
        with vpclab.Lab(SEED, name=name) as lab:
            sleeper = lab.popen("ZIGI-VM1", "sleep", "300")
            cap = lab.capture(["ZIGI-VM2"], tmp_path / "cap").start()
            assert namespace_exists(lab.state.namespace)
            raise RuntimeError("the learner's bug")
    assert sleeper.wait(timeout=10) is not None          # stopped with the lab
    assert cap.stopped and (tmp_path / "cap" / "capture.json").exists()
    assert_nothing_left(name)


SCRIPT = """
import sys, time
sys.path.insert(0, {repo!r})
import vpclab
lab = vpclab.Lab({seed!r}, name={name!r})
{body}
"""


def run_script(tmp_path, name: str, body: str) -> subprocess.Popen:
    script = tmp_path / "script.py"
    script.write_text(SCRIPT.format(repo=str(REPO), seed=str(SEED), name=name,
                                    body=textwrap.dedent(body)))
    return subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signalled_script_removes_its_lab(tmp_path, sig):
    name = unique(f"sig{int(sig)}")
    proc = run_script(tmp_path, name, """
        with lab:
            print("ready", flush=True)
            time.sleep(300)
    """)
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    proc.send_signal(sig)
    proc.wait(timeout=60)
    assert proc.returncode != 0
    assert_nothing_left(name)


def test_a_script_that_never_calls_down_leaves_nothing(tmp_path):
    name = unique("nodown")
    proc = run_script(tmp_path, name, """
        lab.start()
        print("pinged", lab.ping("ZIGI-VM1", "ZIGI-VM2"), flush=True)
    """)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "pinged True" in out, err
    assert_nothing_left(name)


def test_attach_drives_a_running_lab_and_leaving_it_does_not_remove_it():
    name = unique("attach")
    owner = vpclab.Lab(SEED, name=name).start()
    try:
        with vpclab.Lab.attach(name) as lab:
            assert lab.ping("ZIGI-VM1", "ZIGI-VM2")
            assert {m["ip"] for m in lab.mappings()} == {"10.0.0.148", "10.0.0.185"}
            with pytest.raises(vpclab.VpclabError, match="has no node 'ZIGI-VM9'; nodes: "):
                lab.exec("ZIGI-VM9", "true")
        assert LabState(name).is_running()                      # still there
        assert vpclab.Lab.attach(name).exec("ZIGI-VM2", "true").ok
    finally:
        owner.down()
    assert_nothing_left(name)
    with pytest.raises(vpclab.VpclabError, match="is not running"):
        vpclab.Lab.attach(name)
