"""vpclab as root: names never become paths outside its state root, a sudo user gets back
only what vpclab created, two `up`s of one lab cannot both win, `down` leaves nothing
running, and a closed pipe is no traceback."""
import os
import subprocess
import threading
import time
import uuid

import pytest
import yaml

from tests.integration.labtools import MULTI_VPC, REPO, SEED, VPCLAB
from vpclab import Lab
from vpclab.running.state import LabState, namespace_exists, namespace_id, processes_in
from vpclab.running.wait import wait_until

BAD_NAMES = ["/", "..", ".", "a/b", "../../etc", "../sentinel"]
BAD = "../etc"
COMMANDS_WITH_A_LAB = [["down", BAD], ["status", BAD], ["stats", BAD],
                       ["exec", BAD, "ZIGI-VM1", "--", "true"],
                       ["capture", BAD, "--on", "ZIGI-VM1", "--", "ZIGI-VM1", "true"],
                       ["mapping", "list", BAD], ["move", BAD, "ZIGI-VM1", "host2"],
                       ["vm", "del", BAD, "ZIGI-VM1"]]


def vpclab(*args, env=None, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run(VPCLAB + [str(a) for a in args], capture_output=True, text=True,
                          cwd=REPO, timeout=timeout, env=env)


def unique(tag: str) -> str:
    return f"t{uuid.uuid4().hex[:4]}-{tag}"


@pytest.mark.parametrize("name", BAD_NAMES)
def test_down_with_a_path_for_a_name_removes_nothing(tmp_path, name):
    """With the state root at tmp/a/root, `..` would be tmp/a and `../../etc` tmp/etc."""
    root = tmp_path / "a" / "root"
    root.mkdir(parents=True)
    sentinels = [tmp_path / "a" / "sentinel", tmp_path / "etc" / "sentinel", root / "sentinel"]
    for sentinel in sentinels:
        sentinel.parent.mkdir(parents=True, exist_ok=True)
        sentinel.write_text("must survive")
    done = vpclab("down", name, env={**os.environ, "VPCLAB_STATE_ROOT": str(root)})
    assert done.returncode == 2, done.stdout + done.stderr
    assert "not a valid lab name" in done.stderr and "Traceback" not in done.stderr
    assert all(s.read_text() == "must survive" for s in sentinels)


@pytest.mark.parametrize("args", COMMANDS_WITH_A_LAB, ids=lambda a: a[0])
def test_every_command_that_takes_a_lab_validates_it(args):
    done = vpclab(*args)
    assert done.returncode == 2, (args, done.stdout, done.stderr)
    assert "not a valid lab name" in done.stderr, (args, done.stderr)


def test_a_state_dir_vpclab_did_not_create_is_never_removed(tmp_path):
    root = tmp_path / "root"
    (root / "seed").mkdir(parents=True)
    (root / "seed" / "precious").write_text("keep")
    done = vpclab("down", "seed", env={**os.environ, "VPCLAB_STATE_ROOT": str(root)})
    assert done.returncode == 2 and "did not create it" in done.stderr
    assert (root / "seed" / "precious").read_text() == "keep"


def test_capture_under_sudo_gives_the_user_only_what_it_created(vpclab_lab, tmp_path):
    lab = vpclab_lab(SEED)
    parent = tmp_path / "rootparent"           # exists before, root's: must stay root's
    parent.mkdir()
    (parent / "old").write_text("root's")
    out = parent / "new" / "cap"
    user = {**os.environ, "SUDO_UID": "65534", "SUDO_GID": "65534"}
    done = vpclab("capture", lab.name, "--on", "ZIGI-VM1", "-o", out, "--",
                  "ZIGI-VM1", "ping", "-c", "1", "10.0.0.185", env=user)
    assert done.returncode == 0, done.stderr
    for path in (tmp_path, parent, parent / "old"):
        assert os.stat(path).st_uid == 0, path
    made = [parent / "new", out, *out.iterdir()]
    assert len(made) > 4 and all(os.lstat(p).st_uid == 65534 for p in made)


def test_two_ups_of_one_lab_at_once_one_wins_the_others_say_why():
    name = unique("race")
    racers = [subprocess.Popen(VPCLAB + ["up", str(SEED), "--name", name], cwd=REPO, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
    try:
        results = [(p.wait(timeout=120), p.stderr.read()) for p in racers]
        assert sorted(code for code, _ in results) == [0, 2, 2], results
        for code, err in results:
            if code == 2:
                assert "being brought up" in err or "already running" in err, err
                assert "Traceback" not in err
        assert LabState(name).is_running()
    finally:
        Lab.remove(name)


def test_down_returns_when_everything_of_the_lab_is_gone(vpclab_lab):
    lab = vpclab_lab(MULTI_VPC)
    state = lab.state
    # something a user left running inside a VM: not recorded, but in the lab's namespace
    stray = lab.popen("ZIGI-VM1", "sleep", "300")
    vm_namespace = namespace_id(f"/proc/{lab.nodes()['ZIGI-VM1']['pid']}/ns/net")
    try:
        wait_until(lambda: namespace_id(f"/proc/{stray.pid}/ns/net") == vm_namespace,
                   "the stray sleep to run inside ZIGI-VM1", timeout=20)
        recorded = state.processes()
        assert lab.down()
        assert [p for p in recorded if p.is_alive()] == []
        assert processes_in({vm_namespace}) == []
        assert stray.poll() is not None or stray.wait(timeout=1) is not None
        assert not namespace_exists(state.namespace) and not state.dir.exists()
    finally:
        stray.kill()
        stray.wait()


def test_a_closed_pipe_is_no_traceback():
    reader = subprocess.Popen(VPCLAB + ["--help"], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    reader.stdout.close()         # the reader is gone before vpclab writes a word
    err = reader.stderr.read().decode()
    assert reader.wait(timeout=30) == 0
    assert "Traceback" not in err and "BrokenPipe" not in err, err


def test_a_vpc_may_use_the_labs_own_ranges_and_the_underlay_may_be_chosen(vpclab_lab, tmp_path):
    raw = yaml.safe_load(SEED.read_text())
    raw["underlay"] = {"cidr": "10.254.0.0/16"}
    raw["hosts"] = {"host1": {"underlay_ip": "10.254.7.1"}, "host2": {"underlay_ip": "10.254.9.2"}}
    raw["vpcs"] = {"default": {"cidr": "172.31.0.0/16"}, "lab": {"cidr": "192.168.100.0/24"}}
    raw["vms"] = {"a1": {"vpc": "default", "host": "host1", "ip": "172.31.0.10"},
                  "a2": {"vpc": "default", "host": "host2", "ip": "172.31.200.20"},
                  "b1": {"vpc": "lab", "host": "host1", "ip": "192.168.100.10"},
                  "b2": {"vpc": "lab", "host": "host2", "ip": "192.168.100.11"}}
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(raw))
    lab = vpclab_lab(path)
    for src, dst in (("a1", "172.31.200.20"), ("a2", "172.31.0.10"), ("b1", "192.168.100.11"),
                     ("b2", "192.168.100.10")):
        assert lab.ping(src, dst), (src, dst)
    assert "10.254.7.1/16" in lab.exec("host1", "ip", "-o", "addr", "show", "br-phy").stdout


def test_a_namespace_named_like_a_lab_without_its_records_is_left_alone():
    name = unique("bare")
    namespace = f"vpclab-{name}"
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    try:
        done = vpclab("down", name)
        assert done.returncode == 2 and "no lab records" in done.stderr, done.stderr
        assert namespace_exists(namespace)
    finally:
        subprocess.run(["ip", "netns", "delete", namespace], check=True)


def test_a_removal_never_kills_in_a_namespace_that_reused_one_of_the_lab_s_numbers(vpclab_lab):
    """The kernel hands a freed namespace's inode number to the next new namespace. While a
    lab is removed, other namespaces are created (another lab coming up): their processes
    must survive, though their namespaces may carry numbers the lab's nodes had."""
    lab = vpclab_lab(MULTI_VPC)
    others: list[subprocess.Popen] = []
    stop = threading.Event()

    def create_namespaces():
        while not stop.is_set() and len(others) < 300:
            others.append(subprocess.Popen(["unshare", "--net", "sleep", "120"]))
            time.sleep(0.005)
    spawner = threading.Thread(target=create_namespaces)
    spawner.start()
    try:
        lab.down()
    finally:
        stop.set()
        spawner.join()
    try:
        killed = [p.args for p in others if p.poll() is not None]
        assert len(others) > 20, "too few namespaces were made during the removal to tell"
        assert killed == [], f"{len(killed)} of {len(others)} processes of other namespaces killed"
    finally:
        for proc in others:
            proc.kill()
            proc.wait()
