"""Root safety as pure logic: names that would become paths, the one removal helper,
and what is given back to a sudo user (no root needed: a temporary state root)."""
import os

import pytest

from vpclab.errors import VpclabError
from vpclab.model.names import check_interface_name, check_lab_name
from vpclab.running.ownership import OutputDir
from vpclab.running.state import MARKER, LabState, list_labs, remove_stale_socket, remove_state_dir

BAD_LAB_NAMES = ["/", "..", ".", "a/b", "../../etc", "seed\n", "", "Seed", "-x", "x" * 21,
                 "seed/..", "se ed"]


@pytest.mark.parametrize("name", BAD_LAB_NAMES)
def test_a_lab_name_that_could_be_a_path_is_refused_before_it_becomes_one(name, tmp_path):
    with pytest.raises(VpclabError, match="not a valid lab name"):
        check_lab_name(name)
    with pytest.raises(VpclabError):
        LabState(name, tmp_path)


def test_a_good_lab_name_passes():
    assert check_lab_name("seed-2") == "seed-2"


@pytest.mark.parametrize("iface", ["../x", "a/b", "..", "eth0 ", "x" * 16])
def test_a_capture_interface_that_could_be_a_path_is_refused(iface):
    with pytest.raises(VpclabError, match="not an interface name"):
        check_interface_name(iface, "host1")


def test_remove_state_dir_removes_a_marked_lab_dir(tmp_path):
    state = LabState("seed", tmp_path / "root")
    state.create()
    (state.dir / "hosts" / "h1").mkdir(parents=True)
    remove_state_dir(state)
    assert not state.dir.exists() and (tmp_path / "root").is_dir()


def test_remove_state_dir_refuses_a_dir_vpclab_did_not_create(tmp_path):
    state = LabState("seed", tmp_path)
    (tmp_path / "seed").mkdir()
    (tmp_path / "seed" / "precious").write_text("keep me")
    with pytest.raises(VpclabError, match="no .vpclab-lab marker"):
        remove_state_dir(state)
    assert (tmp_path / "seed" / "precious").exists()


def test_remove_state_dir_never_follows_a_symlink_out_of_the_root(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / MARKER).write_text("seed\n")       # even a marker there does not make it ours
    (elsewhere / "precious").write_text("keep me")
    root = tmp_path / "root"
    root.mkdir()
    (root / "seed").symlink_to(elsewhere)
    with pytest.raises(VpclabError, match="not a lab state directory"):
        remove_state_dir(LabState("seed", root))
    assert (elsewhere / "precious").exists()


def test_an_empty_unmarked_dir_is_debris_and_goes(tmp_path):
    (tmp_path / "seed").mkdir()
    remove_state_dir(LabState("seed", tmp_path))
    assert not (tmp_path / "seed").exists()


def test_list_labs_ignores_what_no_lab_could_be_named(tmp_path):
    for name in ("seed", "Not A Lab", ".hidden"):
        (tmp_path / name).mkdir()
    assert "seed" in list_labs(tmp_path)
    assert not {"Not A Lab", ".hidden"} & set(list_labs(tmp_path))


def test_output_dir_gives_back_only_what_this_run_created(tmp_path):
    parent = tmp_path / "existing"
    parent.mkdir()
    output = OutputDir(parent / "new" / "cap")
    output.expect(["a.pcap"])
    output.make()
    (output.path / "a.pcap").write_text("x")
    (output.path / "someone-elses").write_text("made meanwhile by another process")
    assert output.created() == [parent / "new", parent / "new" / "cap", output.path / "a.pcap"]


def test_output_dir_into_an_existing_folder_keeps_what_was_there(tmp_path):
    (tmp_path / "old.pcap").write_text("mine")
    output = OutputDir(tmp_path)
    output.expect(["old.pcap", "new.pcap"])
    (tmp_path / "new.pcap").write_text("x")
    (tmp_path / "old.pcap").write_text("overwritten, still not given away")
    assert output.created() == [tmp_path / "new.pcap"]


@pytest.mark.parametrize("name", ["../x.pcap", "sub/x.pcap"])
def test_output_dir_writes_only_directly_inside(tmp_path, name):
    with pytest.raises(VpclabError, match="not a file name"):
        OutputDir(tmp_path).expect([name])


def test_output_dir_refuses_to_write_through_a_symlink(tmp_path):
    (tmp_path / "a.pcap").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(VpclabError, match="symlink"):
        OutputDir(tmp_path).expect(["a.pcap"])


def test_nothing_is_given_back_without_sudo(tmp_path, monkeypatch):
    monkeypatch.delenv("SUDO_UID", raising=False)
    output = OutputDir(tmp_path / "cap")
    output.make()
    assert output.give_back() == []
    assert os.stat(output.path).st_uid == os.geteuid()


def test_a_stale_socket_goes_but_a_file_in_its_place_stays(tmp_path):
    import socket
    sock_path = tmp_path / "mapping.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock_path))
    server.close()
    remove_stale_socket(sock_path)
    assert not sock_path.exists()
    sock_path.write_text("not a socket")
    with pytest.raises(VpclabError, match="not a socket"):
        remove_stale_socket(sock_path)
    assert sock_path.read_text() == "not a socket"


def test_process_records_in_a_folder_vpclab_did_not_mark_are_not_followed(tmp_path):
    """A state folder without the marker is not vpclab's: its 'records' kill nothing."""
    import json
    import subprocess
    from vpclab.running.state import process_start_time, remove_lab
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        (tmp_path / "seed").mkdir()
        record = {"pid": bystander.pid, "start": process_start_time(bystander.pid), "role": "node"}
        (tmp_path / "seed" / "processes.jsonl").write_text(json.dumps(record) + "\n")
        with pytest.raises(VpclabError, match="no .vpclab-lab marker"):
            remove_lab(LabState("seed", tmp_path))
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()
