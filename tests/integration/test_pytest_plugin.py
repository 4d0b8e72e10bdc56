"""The pytest plugin (vpclab/pytest_plugin.py) as a user's suite loads it: labs a test brings
up are removed whatever its outcome, and a failed test's evidence is kept in a folder it names:
under sudo that folder is all the user's, no symlink in a capture folder is followed, and a
lab that never started leaves no folder."""
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import vpclab
from tests.integration.labtools import SEED
from tests.integration.test_api import assert_nothing_left, unique

NOBODY = 65534


def run_user_suite(tmp_path: Path, source: str, keep: Path,
                   env: dict | None = None) -> subprocess.CompletedProcess:
    """A user's suite run by root; as plain root unless `env` says otherwise (this suite may
    itself run under sudo, and the evidence would then be written as that user, who cannot
    enter root's tmp_path)."""
    if env is None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SUDO_")}
    (tmp_path / "test_user.py").write_text(source)
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "vpclab.pytest_plugin",
                           "-p", "no:cacheprovider", f"--vpclab-keep={keep}", "-q",
                           str(tmp_path / "test_user.py")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)


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
    keep = tmp_path / "kept"
    done = run_user_suite(tmp_path, FAILING_TEST.format(seed=str(SEED), name=failing,
                                                        passing=passing), keep)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 failed, 1 passed" in done.stdout
    folder = keep / "test_fails_with_a_lab" / failing
    assert f"test_fails_with_a_lab: {keep / 'test_fails_with_a_lab'}" in done.stdout
    assert "cookie=" in (folder / "host1.flows.txt").read_text()
    assert "Bridge br-int" in (folder / "host2.ovs.txt").read_text()
    assert (folder / "mapping-service.log").exists() and (folder / "events.jsonl").exists()
    assert list(folder.glob("captures/1-cap/ZIGI-VM2.eth0.pcap"))
    assert not (keep / "test_passes_with_a_lab").exists()        # only failures are kept
    assert_nothing_left(failing)
    assert_nothing_left(passing)


PLANTED_TEST = """
import os


def test_fails_with_links_in_its_capture(vpclab_lab, tmp_path):
    lab = vpclab_lab({seed!r}, name={name!r})
    first = tmp_path / "cap"
    with lab.capture(["ZIGI-VM2"], first):
        lab.ping("ZIGI-VM1", "ZIGI-VM2")
    os.symlink("/etc/shadow", first / "shadow")         # root must not read it for the user
    os.symlink(".", first / "loop")                     # nor go round in circles
    (first / "root-only").write_bytes({secret!r})       # a file the user could not read
    os.chmod(first / "root-only", 0o600)
    with lab.capture(["ZIGI-VM1"], tmp_path / "other" / "cap"):   # the same folder name
        lab.ping("ZIGI-VM1", "ZIGI-VM2")
    assert False, "the learner's assertion"
"""


def test_under_sudo_the_kept_evidence_is_the_user_s_and_no_symlink_is_followed(tmp_path):
    """As if `nobody` ran the suite through sudo: every file and folder kept is nobody's
    (written by nobody, not chowned by root), both captures named `cap` are kept apart, and
    the symlinks planted in a capture folder were neither followed nor copied."""
    name, secret = unique("sudo"), os.urandom(16).hex().encode()
    base = Path(tempfile.mkdtemp(dir="/tmp"))
    try:
        os.chown(base, NOBODY, NOBODY)
        keep = base / "kept"                             # to be made by the writer, as nobody
        done = run_user_suite(tmp_path, PLANTED_TEST.format(seed=str(SEED), name=name,
                                                            secret=secret), keep,
                              env={**os.environ, "SUDO_UID": str(NOBODY),
                                   "SUDO_GID": str(NOBODY)})
        assert done.returncode == 1, done.stdout + done.stderr
        test_folder = keep / "test_fails_with_links_in_its_capture"
        assert f"test_fails_with_links_in_its_capture: {test_folder}" in done.stdout
        everything = [Path(top) / entry for top, dirs, files in os.walk(base)
                      for entry in dirs + files]
        owners = {str(path): (path.lstat().st_uid, path.lstat().st_gid) for path in everything}
        assert owners and owners == {path: (NOBODY, NOBODY) for path in owners}
        folder = test_folder / name
        assert (folder / "captures" / "1-cap" / "ZIGI-VM2.eth0.pcap").stat().st_size > 0
        assert (folder / "captures" / "2-cap" / "ZIGI-VM1.eth0.pcap").stat().st_size > 0
        assert (folder / "mapping-service.log").exists() and (folder / "host1.flows.txt").exists()
        assert not [path for path in everything if path.is_symlink()]
        assert not {"shadow", "loop", "root-only"} & {path.name for path in everything}
        assert all(path.is_file() or path.is_dir() for path in everything)
        shadow = Path("/etc/shadow").read_bytes() if Path("/etc/shadow").exists() else None
        for path in everything:
            if path.is_file():
                data = path.read_bytes()
                assert secret not in data and (not shadow or data != shadow), path
        notes = (folder / "not-kept.txt").read_text()
        assert "captures/1-cap/shadow: a symlink, not followed" in notes
        assert "captures/1-cap/loop: a symlink, not followed" in notes
        assert "captures/1-cap/root-only: uid 0's" in notes
    finally:
        shutil.rmtree(base)
    assert_nothing_left(name)


NOT_STARTED_TEST = """
def test_whose_lab_does_not_start(vpclab_lab):
    vpclab_lab({seed!r}, name={name!r})
"""


def test_a_test_whose_lab_did_not_start_keeps_no_folder(tmp_path):
    """The lab's name is taken by a running lab, so the test's lab fails to start and the
    test fails: there is no evidence, so no folder is made or reported, and the other lab
    of that name is left alone."""
    name = unique("taken")
    keep = tmp_path / "kept"
    with vpclab.Lab(SEED, name=name) as running:
        done = run_user_suite(tmp_path, NOT_STARTED_TEST.format(seed=str(SEED), name=name), keep)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "already running" in done.stdout
        assert "labs kept" not in done.stdout and "kept in" not in done.stdout
        assert not keep.exists()
        assert running.ping("ZIGI-VM1", "ZIGI-VM2")
    assert_nothing_left(name)
