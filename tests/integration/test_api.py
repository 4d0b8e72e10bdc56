"""The Python API on real labs: the examples run as a user runs them, a lab is removed
however a script leaves it (exception, SIGTERM, Ctrl-C, no `down` at all), an attached
lab is not. (The pytest plugin's own tests are in test_pytest_plugin.py.)"""
import os
import re
import signal
import subprocess
import sys
import textwrap

import pytest

import vpclab
from tests.integration.labtools import REPO, SEED, processes_mentioning
from vpclab.pytest_plugin import unique_name
from vpclab.running.state import LabState, namespace_exists

PYTHON = "/usr/bin/python"      # `sudo python`: Debian's python, from python-is-python3


def unique(tag: str) -> str:
    return unique_name(tag)


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
    if example == "migration.py":   # the example counts; a migration costs at most a few pings
        sent, lost = map(int, re.search(r"pings: (\d+) sent, (\d+) lost", done.stdout).groups())
        assert sent >= 20 and lost <= 5, done.stdout
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


def test_attach_drives_a_running_lab_and_leaving_it_does_not_remove_it(tmp_path):
    name = unique("attach")
    owner = vpclab.Lab(SEED, name=name).start()
    try:
        with vpclab.Lab.attach(name) as lab:
            assert lab.ping("ZIGI-VM1", "ZIGI-VM2")
            assert {m["ip"] for m in lab.mappings()} == {"10.0.0.148", "10.0.0.185"}
            with pytest.raises(vpclab.VpclabError, match="has no node 'ZIGI-VM9'; nodes: "):
                lab.exec("ZIGI-VM9", "true")
            binary = lab.exec("ZIGI-VM1", "head", "-c", "64", "/bin/ls")    # not UTF-8
            assert binary.ok and binary.stdout.startswith("\x7fELF")
            assert lab.exec("ZIGI-VM1", "cat", timeout=10).ok     # no stdin: no wait on a terminal
            assert lab.exec("ZIGI-VM1", "cat", input="typed").stdout == "typed"
            lab.capture(["ZIGI-VM2"], tmp_path / "cap").start()   # left running by the script
        assert LabState(name).is_running()                      # still there
        assert (tmp_path / "cap" / "capture.json").exists()     # its capture was stopped
        assert vpclab.Lab.attach(name).exec("ZIGI-VM2", "true").ok
    finally:
        owner.down()
    assert_nothing_left(name)
    with pytest.raises(vpclab.VpclabError, match="is not running"):
        vpclab.Lab.attach(name)


def test_a_sigterm_while_the_lab_is_built_removes_what_was_built(tmp_path):
    name = unique("termup")
    proc = run_script(tmp_path, name, """
        def phase(step, seconds):
            print(step, flush=True)
        with lab.start(on_phase=phase):
            time.sleep(300)
    """)
    first = proc.stdout.readline().strip()             # the first phase is done: mid-build
    assert first, proc.stderr.read()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert proc.returncode != 0
    assert_nothing_left(name)


SESSION = """
import os, signal
def test_first(vpclab_lab):
    vpclab_lab({seed!r}, name={name!r})
    os.kill(os.getpid(), signal.SIGTERM)          # a CI timeout, `kill`

def test_second():
    open({marker!r}, "w").write("ran")
"""


def test_a_sigterm_to_pytest_stops_the_session_and_removes_its_labs(tmp_path):
    name, marker = unique("termpy"), tmp_path / "second-ran"
    (tmp_path / "test_user.py").write_text(SESSION.format(seed=str(SEED), name=name,
                                                          marker=str(marker)))
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "vpclab.pytest_plugin",
                           "-p", "no:cacheprovider", "-q", str(tmp_path / "test_user.py")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stdout + done.stderr    # interrupted, not "1 failed"
    assert not marker.exists(), "the session went on after SIGTERM"
    assert_nothing_left(name)


def test_a_capture_whose_point_fails_hands_back_what_it_wrote(vpclab_lab, tmp_path, monkeypatch):
    lab = vpclab_lab(SEED)
    folder = tmp_path / "new" / "cap"
    monkeypatch.setenv("SUDO_UID", "65534")              # as if run by `nobody` through sudo
    monkeypatch.setenv("SUDO_GID", "65534")
    with pytest.raises(vpclab.VpclabError, match="host1:eth9"):
        lab.capture(["ZIGI-VM2", "host1:eth9"], folder).start()
    written = [folder.parent, folder, *folder.iterdir()]
    assert (folder / "ZIGI-VM2.eth0.pcap") in written
    assert {path: path.stat().st_uid for path in written} == {path: 65534 for path in written}
