"""vpclab.sandbox: a learner's file runs unprivileged, limited and timed, and a failure of
any kind comes back as a LearnerError with the learner's own traceback, leaving no process.

Runs as any user: as root (CI) the child is `nobody` (or the sudo user), in network, mount
and IPC namespaces of its own with a read-only file system; as a plain user it is that
user, with the same limits. The tests about choosing another user or the namespaces need
root.
"""
from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from os_ken.lib.packet import arp, ethernet, packet
from vpclab import sandbox
from vpclab.errors import VpclabError
from vpclab.sandbox import LearnerCode, LearnerError, LearnerTimeout, from_wire, to_wire
from vpclab.sandbox_child import MAX_REPLY
from vpclab.running.state import process_start_time

REPO = Path(__file__).resolve().parents[2]
ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="choosing the child's user needs root")
confined = pytest.mark.skipif(not ROOT, reason="only a root caller confines the child in "
                              "namespaces of its own")

LEARNER = textwrap.dedent('''\
    import os
    import resource
    import signal
    from ryu.lib.packet import packet, ethernet, arp
    from ryu.ofproto import ether

    def add(a, b):
        return a + b

    def echo(value):
        return value

    def divide(a, b):
        ratio = a / b
        return ratio

    def answer_arp(miss, mappings):
        mac = mappings[miss["target_ip"]]
        reply = packet.Packet()
        reply.add_protocol(ethernet.ethernet(dst=miss["src_mac"], src=mac,
                                             ethertype=ether.ETH_TYPE_ARP))
        reply.add_protocol(arp.arp(opcode=arp.ARP_REPLY, src_mac=mac, src_ip=miss["target_ip"],
                                   dst_mac=miss["src_mac"], dst_ip=miss["src_ip"]))
        reply.serialize()
        return reply.data

    def ids():
        return [os.getuid(), os.geteuid(), os.getgid(), os.getegid(), os.getgroups()]

    def spin():
        while True:
            pass

    def spin_deaf():
        signal.signal(signal.SIGALRM, signal.SIG_IGN)   # no alarm: the parent must kill
        while True:
            pass

    def fork():
        return os.fork()

    def write(path):
        with open(path, "w") as out:
            out.write("x" * 10)

    KEPT = []

    def hog():
        while True:
            KEPT.append(bytearray(16 * 1024 * 1024))

    def hogged():
        megabytes = 16 * len(KEPT)
        KEPT.clear()
        return megabytes

    def leave(code):
        os._exit(code)

    def segfault():
        import ctypes
        return ctypes.string_at(0)

    def chatty():
        for i in range(3):
            print("line", i)
        return "done"

    def packet_object():
        return packet.Packet()

    def forge():
        for fd in map(int, os.listdir("/proc/self/fd")):
            if fd > 2:
                try:
                    os.write(fd, b'{"result": "forged"}\\n')
                except OSError:
                    pass
        return "real"

    def no_new_privs():
        return [line.split()[1] for line in open("/proc/self/status")
                if line.startswith("NoNewPrivs:")][0]

    def capabilities():
        return {line.split(":")[0]: int(line.split()[1], 16) for line in open("/proc/self/status")
                if line.startswith(("CapInh", "CapPrm", "CapEff", "CapAmb"))}

    def interfaces():
        import socket
        return sorted(name for _, name in socket.if_nameindex())

    def reach(host, port):
        import socket
        try:
            socket.create_connection((host, port), timeout=0.5).close()
        except OSError as exc:
            return type(exc).__name__ + ": " + str(exc)
        return "connected"

    def touch(path, mode):
        try:
            if mode == "unlink":
                os.unlink(path)
            else:
                open(path, mode).close()
        except OSError as exc:
            return exc.strerror
        return "done"

    def _reply_fds():
        return [int(fd) for fd in os.listdir("/proc/self/fd") if int(fd) > 2]

    def _write_endlessly(fds, chunk, pause):
        import time
        signal.signal(signal.SIGALRM, signal.SIG_IGN)    # deaf: the parent's clock must stop it
        stop = time.monotonic() + 8
        while time.monotonic() < stop:                   # bounded: a broken parent fails, not hangs
            for fd in fds:
                try:
                    os.write(fd, chunk)
                except OSError:
                    pass
            time.sleep(pause)
        return "stopped"

    def trickle():
        return _write_endlessly(_reply_fds(), b"x", 0.001)

    def flood():
        return _write_endlessly(_reply_fds(), b"x" * 65536, 0)

    def roar():
        return _write_endlessly([2], b"z" * 65536, 0)

    def huge(size):
        return "x" * size

    def shout(size):
        for fd in (1, 2):
            written = 0
            while written < size:
                written += os.write(fd, b"y" * (size - written))
        return "said"
''')


@pytest.fixture
def code():
    with LearnerCode(LEARNER, "learner.py", call_timeout=1.0) as running:
        yield running


def running(pid: int | None) -> bool:
    """Is `pid` a live (not zombie) sandbox child? Checked by its command line, so a recycled
    pid does not count."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, TypeError):
        return False
    return b"sandbox_child" in cmdline and state not in ("Z", "X")


def test_a_function_is_called_and_its_result_comes_back(code):
    assert code.call("add", 2, 3) == 5
    assert code.call("echo", {"a": [1, "x", None, True, 2.5]}) == {"a": [1, "x", None, True, 2.5]}


def test_bytes_round_trip_as_hex(code):
    data = bytes(range(256))
    assert code.call("echo", data) == data
    assert code.call("echo", {"frames": [b"\x00\x01", b""]}) == {"frames": [b"\x00\x01", b""]}
    assert to_wire(b"\x0a\xff") == {"$hex": "0aff"}
    assert from_wire(to_wire({"x": (b"ab", 1)})) == {"x": [b"ab", 1]}


def test_ryu_imports_are_os_kens_modules(code):
    # the learner's own imports (ryu spelling) built a real ARP reply
    miss = {"src_mac": "02:00:5e:ad:58:40", "src_ip": "10.0.0.148", "target_ip": "10.0.0.185"}
    frame = code.call("answer_arp", miss, {"10.0.0.185": "02:93:0e:03:bb:88"})
    reply = packet.Packet(frame)
    assert reply.get_protocol(ethernet.ethernet).dst == "02:00:5e:ad:58:40"
    answer = reply.get_protocol(arp.arp)
    assert (answer.opcode, answer.src_mac, answer.src_ip) == (arp.ARP_REPLY, "02:93:0e:03:bb:88",
                                                              "10.0.0.185")
    source = textwrap.dedent('''\
        import os_ken.lib.packet.ethernet
        import ryu.lib.packet.ethernet
        from ryu.ofproto import ofproto_v1_3
        def same():
            return [ryu.lib.packet.ethernet is os_ken.lib.packet.ethernet,
                    ryu.lib.packet.ethernet.__spec__.name, ofproto_v1_3.OFP_VERSION]
    ''')
    with LearnerCode(source, "ryu_book.py") as other:
        assert other.call("same") == [True, "os_ken.lib.packet.ethernet", 4]


def test_a_learner_exception_carries_the_learners_traceback(code):
    with pytest.raises(LearnerError) as raised:
        code.call("divide", 1, 0)
    error = raised.value
    assert error.kind == "ZeroDivisionError" and error.line == 14
    assert "line 14 of learner.py" in str(error)
    assert 'File "learner.py", line 14, in divide' in error.traceback
    assert "ratio = a / b" in error.traceback            # the learner's source line, from the text
    assert "sandbox" not in error.traceback               # none of our frames
    assert code.call("add", 1, 1) == 2                    # the child lives on


def test_an_endless_loop_times_out_names_its_line_and_leaves_no_process(code):
    pid = code.pid
    started = time.monotonic()
    with pytest.raises(LearnerTimeout) as raised:
        code.call("spin")
    assert time.monotonic() - started < 1.0 + 0.9     # the alarm, not the parent (2 s)
    assert "your function spin did not return within 1 s: an endless loop?" in str(raised.value)
    assert raised.value.line == 31 and 'learner.py", line 31, in spin' in raised.value.traceback
    assert not running(pid) and code.pid is None
    assert code.call("add", 1, 2) == 3 and code.restarts == 1      # a fresh child
    assert code.pid != pid


def test_a_loop_that_ignores_the_alarm_is_killed_by_the_parent(code):
    pid = code.pid
    started = time.monotonic()
    with pytest.raises(LearnerTimeout, match="did not return within 1 s"):
        code.call("spin_deaf")
    assert time.monotonic() - started < 1.0 + sandbox.HARD_GRACE + 0.5
    assert not running(pid)


def test_a_syntax_error_reports_its_line_at_start():
    with pytest.raises(LearnerError) as raised:
        LearnerCode("x = 1\ndef answer_arp(miss:\n    return 1\n", "broken.py").start()
    assert raised.value.kind == "SyntaxError" and raised.value.line == 2
    assert str(raised.value).startswith("broken.py, line 2 could not be loaded: SyntaxError")
    assert 'File "broken.py", line 2' in raised.value.traceback


def test_a_file_that_does_not_load_says_so_at_every_call(monkeypatch):
    code = LearnerCode("def answer_arp(miss, mappings):\n    return [\n", "open.py")
    with pytest.raises(LearnerError) as at_start:
        code.start()
    def no_new_child(*args, **kwargs):
        raise AssertionError("a child was started again for a file that does not load")
    monkeypatch.setattr(sandbox.subprocess, "Popen", no_new_child)
    for _ in range(2):
        with pytest.raises(LearnerError) as at_call:
            code.call("answer_arp", {}, [])
        assert str(at_call.value) == str(at_start.value) and at_call.value.line == 2
    assert code.pid is None
    code.close()


def test_an_import_error_reports_its_line_at_start():
    with pytest.raises(LearnerError) as raised:
        with LearnerCode("import os\nimport no_such_module_here\n", "imports.py"):
            pass
    assert raised.value.kind == "ModuleNotFoundError" and raised.value.line == 2
    assert "imports.py, line 2 could not be loaded" in str(raised.value)


def test_a_missing_function_is_named(code):
    with pytest.raises(LearnerError, match="^your file learner.py defines no function answer_ip$"):
        code.call("answer_ip")
    with pytest.raises(LearnerError, match="defines no function LEARNER"):
        code.call("LEARNER")                   # ... or something that is not a function


def test_the_child_never_runs_as_root():
    before = os.getgroups()
    if ROOT:
        os.setgroups([0, 4242])          # root's supplementary groups must not reach the child
    try:
        with LearnerCode(LEARNER, "learner.py") as code:
            uid, euid, gid, egid, groups = code.call("ids")
            assert code.call("no_new_privs") == "1"      # a setuid program cannot make it root
            caps = code.call("capabilities")
    finally:
        if ROOT:
            os.setgroups(before)
    assert 0 not in (uid, euid, gid, egid) and 0 not in groups
    assert set(caps.values()) == {0}                     # setresuid left no capability
    if ROOT:
        assert (uid, gid) == sandbox._choose_user(None) and groups == []
    else:
        assert (uid, gid) == (os.getuid(), os.getgid())


def test_root_ids_are_refused():
    with pytest.raises(VpclabError):
        LearnerCode("", "x.py", user=(0, 0))
    if ROOT:
        with pytest.raises(VpclabError, match="never used"):
            LearnerCode("", "x.py", user=(65534, 0))


@needs_root
def test_the_default_user_is_the_one_behind_sudo_else_nobody(monkeypatch):
    monkeypatch.setenv("SUDO_UID", "4242")
    monkeypatch.setenv("SUDO_GID", "4343")
    with LearnerCode(LEARNER, "learner.py") as code:
        assert code.call("ids")[:4] == [4242, 4242, 4343, 4343]
    monkeypatch.delenv("SUDO_UID")
    nobody = pwd.getpwnam("nobody")
    with LearnerCode(LEARNER, "learner.py") as code:
        assert code.call("ids")[:4] == [nobody.pw_uid] * 2 + [nobody.pw_gid] * 2


@needs_root
def test_an_unreadable_checkout_is_named_with_its_fix(monkeypatch):
    # a checkout in a 0700 home: /tmp/X (0755) / home (0700) / sandbox_child.py
    outer = Path("/tmp") / f"vpclab-sandbox-test-{uuid.uuid4().hex}"
    private = outer / "home"
    try:
        private.mkdir(parents=True, mode=0o700)
        outer.chmod(0o755)
        child = private / "sandbox_child.py"
        child.write_text(sandbox.CHILD.read_text())
        monkeypatch.setattr(sandbox, "CHILD", child)
        with pytest.raises(VpclabError) as raised:
            LearnerCode(LEARNER, "learner.py", user=(65534, 65534))
        message = str(raised.value)
        assert f"cannot enter {private} (mode 700" in message and f"chmod o+x {private}" in message
        private.chmod(0o701)
        with LearnerCode(LEARNER, "learner.py", user=(65534, 65534)) as code:   # fixed: runs
            assert code.call("add", 1, 1) == 2
    finally:
        shutil.rmtree(outer, ignore_errors=True)


def test_the_child_cannot_fork(code):
    with pytest.raises(LearnerError) as raised:
        code.call("fork")
    assert raised.value.kind == "BlockingIOError" and raised.value.line == 40


def test_the_child_cannot_write_file_content():
    target = Path("/tmp") / f"vpclab-sandbox-test-{uuid.uuid4().hex}"
    try:
        with LearnerCode(LEARNER, "learner.py") as code:
            # root's child: a read-only file system; a plain user's: RLIMIT_FSIZE 0
            with pytest.raises(LearnerError, match="Read-only file system" if ROOT
                               else "File too large"):
                code.call("write", str(target))
        assert not target.exists() if ROOT else target.stat().st_size == 0
    finally:
        target.unlink(missing_ok=True)     # a plain user's child can make it, empty (a known limit)


@confined
def test_the_child_can_create_remove_or_truncate_no_file():
    places = [place for place in ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")
              if os.path.isdir(place)]
    made = [Path(place) / f"vpclab-sandbox-test-{uuid.uuid4().hex}" for place in places]
    own = Path("/tmp") / f"vpclab-sandbox-test-{uuid.uuid4().hex}"
    try:
        with LearnerCode(LEARNER, "learner.py") as code:
            uid, _, gid, *_ = code.call("ids")
            for path in made:
                assert code.call("touch", str(path), "x") == "Read-only file system"
                assert not path.exists()
            # a file of the child's own user (grading runs it as the teacher): kept whole
            own.write_text("the teacher's grades")
            os.chown(own, uid, gid)
            assert code.call("touch", str(own), "w") == "Read-only file system"
            assert code.call("touch", str(own), "unlink") == "Read-only file system"
            assert own.read_text() == "the teacher's grades"
            assert code.call("touch", "/dev/null", "w") == "done"     # a device still opens
    finally:
        for path in (*made, own):
            path.unlink(missing_ok=True)


@confined
def test_the_child_has_no_network_but_its_own_loopback():
    with socket.create_server(("127.0.0.1", 0)) as listener:   # a listener in OUR namespace
        port = listener.getsockname()[1]
        with LearnerCode(LEARNER, "learner.py") as code:
            assert code.call("interfaces") == ["lo"]
            assert code.call("reach", "127.0.0.1", port).startswith("OSError: [Errno 101]")
            for kind in ("net", "mnt", "ipc"):
                assert os.readlink(f"/proc/{code.pid}/ns/{kind}") != \
                    os.readlink(f"/proc/self/ns/{kind}")
            # the pid is the learner's python itself (unshare exec'd it), our child
            status = Path(f"/proc/{code.pid}/status").read_text()
            assert f"PPid:\t{os.getpid()}\n" in status
            assert Path(f"/proc/{code.pid}/exe").resolve() == Path(sys.executable).resolve()
        socket.create_connection(("127.0.0.1", port), timeout=1).close()   # it was listening


def test_a_child_that_is_not_confined_as_asked_refuses_to_run(tmp_path):
    # started as root with a user to drop to, but in OUR namespaces (no unshare): it must
    # refuse before touching the mounts, which are ours
    if not ROOT:
        pytest.skip("the child's confinement runs as root")
    # a mount namespace of its own all the same, so that a broken check spoils only that
    argv = ["unshare", "--mount", "--propagation", "private", "--", sys.executable, "-I", "-B",
            str(sandbox.CHILD), str(os.getpid()), "64", "1.0", "65534", "65534"]
    done = subprocess.run(argv, input="", capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert "refusing to run: its net namespace is its parent's" in done.stderr
    probe = tmp_path / "still-writable"
    probe.write_text("ok")


def test_a_memory_hog_is_an_error_not_a_hang():
    with LearnerCode(LEARNER, "learner.py", memory_mb=256, call_timeout=10) as code:
        started = time.monotonic()
        with pytest.raises(LearnerError) as raised:
            code.call("hog")
        assert time.monotonic() - started < 5
        assert raised.value.kind == "MemoryError" and raised.value.line == 50
        assert 128 < code.call("hogged") < 256       # it stopped at memory_mb
        assert code.call("add", 1, 1) == 2


def test_a_process_that_exits_or_crashes_is_reported_and_reaped(code):
    pid = code.pid
    with pytest.raises(LearnerError, match=r"running your function leave ended \(exit status 3\)"):
        code.call("leave", 3)
    assert not running(pid) and code.pid is None
    pid = code.call("add", 0, 0) == 0 and code.pid
    with pytest.raises(LearnerError, match="killed by SIGSEGV") as raised:
        code.call("segfault")
    assert 'File "learner.py", line 62 in segfault' in raised.value.traceback   # faulthandler's
    assert "sandbox_child" not in raised.value.traceback
    assert not running(pid)


def test_prints_are_captured_and_cannot_garble_a_reply(code):
    with LearnerCode("print('loading')\ndef f():\n    return 1\n", "loud.py") as loud:
        assert loud.output == "loading\n" and loud.call("f") == 1 and loud.output == ""
    assert code.call("chatty") == "done"
    assert code.output == "line 0\nline 1\nline 2\n"
    with pytest.raises(LearnerError, match="cannot be sent back"):
        code.call("packet_object")


def test_a_line_written_on_the_reply_channel_is_not_taken_for_a_reply(code):
    with pytest.raises(LearnerError, match="something other than its reply came on its channel"):
        code.call("forge")
    assert code.call("echo", 1) == 1 and code.call("echo", 2) == 2     # in step again


@pytest.fixture
def busy_service(monkeypatch):
    """The caller reads its pipes slowly (a loaded os-ken hub): a learner that keeps writing
    then always has bytes waiting when the caller looks."""
    read = os.read

    def slow_read(fd: int, size: int) -> bytes:
        data = read(fd, size)
        time.sleep(0.005)                  # busy elsewhere before it looks again
        return data
    monkeypatch.setattr(sandbox.os, "read", slow_read)


def test_a_slow_writer_on_the_reply_channel_still_times_out(code, busy_service):
    # deaf to its alarm, it keeps the reply pipe readable without ever ending a line, under
    # MAX_REPLY: the deadline is checked before every wait, not only when nothing is ready
    pid = code.pid
    started = time.monotonic()
    with pytest.raises(LearnerTimeout, match="your function trickle did not return within 1 s"):
        code.call("trickle")
    assert time.monotonic() - started < 1.0 + sandbox.HARD_GRACE + 0.5
    assert not running(pid)
    assert code.call("add", 1, 2) == 3                  # a fresh child, in step


def test_a_flood_on_stderr_still_times_out(code, busy_service):
    # deaf to its alarm, it keeps its stderr (drained, never capped) readable all the time
    pid = code.pid
    started = time.monotonic()
    with pytest.raises(LearnerTimeout, match="your function roar did not return within 1 s"):
        code.call("roar")
    assert time.monotonic() - started < 1.0 + sandbox.HARD_GRACE + 0.5
    assert not running(pid)
    assert code.call("add", 1, 2) == 3


def test_a_flood_on_the_reply_channel_is_cut_off_at_its_size_limit(code):
    pid = code.pid
    started = time.monotonic()
    with pytest.raises(LearnerError) as raised:
        code.call("flood")
    assert time.monotonic() - started < 1.0             # at MAX_REPLY bytes, not at the clock
    assert not isinstance(raised.value, LearnerTimeout) and raised.value.kind == "TooLarge"
    assert f"wrote more than {MAX_REPLY} bytes on its reply channel" in str(raised.value)
    assert not running(pid)
    assert code.call("add", 1, 2) == 3


def test_a_result_too_large_to_send_back_is_refused(code):
    pid = code.pid
    with pytest.raises(LearnerError, match="your function huge returned too much to send back "
                       rf"\(\d+ bytes once encoded.*at most {MAX_REPLY} bytes\)") as raised:
        code.call("huge", 2 * MAX_REPLY)
    assert raised.value.kind == "TooLarge"
    assert code.pid == pid and code.call("huge", 1000) == "x" * 1000   # the child lives on


def test_a_learner_writing_much_on_its_stdout_and_stderr_is_not_blocked(code):
    # more than a pipe holds (64 KiB), on fd 1 and fd 2: drained while the call runs
    started = time.monotonic()
    assert code.call("shout", 1 << 20) == "said"
    assert time.monotonic() - started < 1.0
    assert code.call("add", 1, 1) == 2


def test_close_is_idempotent_and_runs_when_the_block_raises():
    with pytest.raises(RuntimeError):
        with LearnerCode(LEARNER, "learner.py") as code:
            pid = code.pid
            assert running(pid)
            raise RuntimeError("the caller failed")
    assert not running(pid)
    code.close()
    with pytest.raises(VpclabError, match="start"):
        code.call("add", 1, 2)


def test_the_child_dies_with_its_parent(tmp_path):
    driver = textwrap.dedent('''\
        import sys
        from vpclab.sandbox import LearnerCode
        code = LearnerCode("def spin():\\n    while True: pass\\n", "l.py", call_timeout=60).start()
        print(code.pid, flush=True)
        code.call("spin")
    ''')
    parent = subprocess.Popen([sys.executable, "-c", driver], cwd=REPO, stdout=subprocess.PIPE,
                              text=True)
    try:
        pid = int(parent.stdout.readline())
        start = process_start_time(pid)     # the child, as recorded: never another process
        time.sleep(0.3)                     # the child is spinning now
        assert running(pid)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        parent.stdout.close()
    deadline = time.monotonic() + 2
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    survived = running(pid)
    if survived and process_start_time(pid) == start:
        os.kill(pid, signal.SIGKILL)        # the orphan this test made: its pid and start time
    assert not survived
