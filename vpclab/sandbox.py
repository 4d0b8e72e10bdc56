"""Run a learner's Python file from a root process without trusting it.

A classroom exercise hands the mapping service a learner's file (Ryu-app style: plain
functions such as `def answer_arp(miss, mappings)`), which must never run as root and
must not be able to hang or crash the service. `LearnerCode` starts ONE child process,
`python -I -B vpclab/sandbox_child.py`, as an unprivileged user with no supplementary
groups, a minimal environment, cwd `/`, its own session and resource limits (see
sandbox_child.py), and, from a root caller, in network, mount and IPC namespaces of its
own; it calls the learner's functions in it over JSON lines:

    with LearnerCode(source, "answer_arp.py") as code:
        reply = code.call("answer_arp", miss, mappings)

- The SOURCE TEXT travels over the pipe: the child never opens the learner's file (a
  sudo user's home may be 0700), yet tracebacks name it and show its lines.
- Arguments and results are JSON: numbers, strings, lists (tuples arrive as lists), dicts
  with string keys, None, and bytes, which travel as {"$hex": "..."} and come back as bytes
  on both sides (`to_wire`/`from_wire`). Anything else returned is a LearnerError.
- A learner exception is a `LearnerError` with the learner's traceback, only frames of the
  learner's file. A call still running after `call_timeout` is a `LearnerTimeout`, which
  names the line it was running when the child's alarm could stop it; the child's session
  is then killed (at the latest `HARD_GRACE` s later, if the learner swallowed the alarm,
  whatever it writes meanwhile). A reply is at most MAX_REPLY bytes: a larger result is a
  LearnerError, and a child that writes more than that on its reply channel is killed.
  What the child writes on its own stdout/stderr is drained while it runs (the last
  STDERR_TAIL bytes are kept for a death report), so a chatty learner never blocks.
  A child that dies (os._exit, segfault) is a `LearnerError` saying how it died. After a
  timeout or a death the next `call` starts a fresh child: the file is loaded again, so
  module-level state starts afresh (`restarts` counts these).
- The user: `user=(uid, gid)`, else the user behind sudo, else `nobody`; never uid/gid 0.
  Run by a non-root process, the child runs as that process's own user (it is already
  unprivileged), and another `user` is refused.
- Run by root, the child is started as `unshare --net --ipc --mount --propagation private
  -- python ... UID GID`: unshare makes the namespaces as root and execs python in place
  (same pid, same parent), which makes its whole mount tree read-only (it refuses unless
  that tree is not its parent's) and only then drops to UID/GID (sandbox_child.py). So the
  learner has no network but a loopback that is down (not the lab's: no OpenFlow listener,
  no router to pose as), no SysV/POSIX IPC of the host's, and can create, remove or
  truncate no file anywhere (not even its own user's: grading runs it as the teacher).
  Needs util-linux's unshare and Linux 5.12 (mount_setattr); the child refuses to run
  without them.
- The child dies with its parent (PR_SET_PDEATHSIG): a killed service leaves no learner
  process. Linux ties that to the THREAD that started the child, so start `LearnerCode`
  in a thread that lives as long as it does (the main thread, or os-ken's hub).

Not contained: there is no PID namespace (it needs a fork, so the learner would no longer
be the process whose pid and death signal are ours): the child sees every process in
/proc and may signal those of its own user (another learner's child, under `nobody`).
A non-root caller's child gets only the rlimits and its user: it shares the caller's
network and can create EMPTY files where that user may write (RLIMIT_FSIZE 0 leaves no
content).
"""
from __future__ import annotations

import contextlib
import copy
import importlib.util
import json
import os
import pwd
import selectors
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from vpclab.errors import VpclabError
from vpclab.running.ownership import sudo_owner
from vpclab.sandbox_child import LOAD_TIMEOUT, MAX_REPLY, from_wire, to_wire

__all__ = ["LearnerCode", "LearnerError", "LearnerTimeout", "to_wire", "from_wire"]

CHILD = Path(__file__).resolve().with_name("sandbox_child.py")
ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/"}
HARD_GRACE = 1.0      # s after call_timeout before the parent kills a child that ignored its alarm
START_SLACK = 5.0     # s for the interpreter to start, on top of LOAD_TIMEOUT
CLOSE_GRACE = 0.5     # s between SIGTERM and SIGKILL
STDERR_TAIL = 4096    # bytes of the child's own stderr (faulthandler's dump) kept for a death
NAMESPACES = ["--net", "--ipc", "--mount", "--propagation", "private"]    # unshare's, as root


class LearnerError(VpclabError):
    """The learner's code failed: `str()` says how, with the learner's traceback.
    `kind` is the exception's type name ('' if none), `line` the line in the learner's file
    (None if unknown), `output` what the learner printed during the call."""

    def __init__(self, message: str, *, kind: str = "", traceback: str = "",
                 line: int | None = None, output: str = ""):
        super().__init__(message + ("\n" + traceback.rstrip() if traceback else ""))
        self.kind, self.traceback, self.line, self.output = kind, traceback, line, output


class LearnerTimeout(LearnerError):
    """A learner's function (or module-level code) ran past its time; its process was killed."""


class _Hung(Exception):
    pass


class _Died(Exception):
    def __init__(self, how: str, stderr: str):
        super().__init__(how)
        self.how, self.stderr = how, stderr


class _TooLong(Exception):
    pass


class LearnerCode:
    """One learner file, loaded in one unprivileged child process; see the module docstring.

    `start()` (or `with`) loads the file: a syntax or import error raises LearnerError with
    its line, and so does every later `call()` (no child is started again for a file that
    does not load). `call(name, *args)` runs one function; `close()` ends the child
    (idempotent).
    Calls are serialised by a lock: one learner process does one thing at a time.
    """

    def __init__(self, source: str, filename: str, user: tuple[int, int] | None = None,
                 call_timeout: float = 2.0, memory_mb: int = 512):
        self.source, self.filename = source, filename
        self.call_timeout, self.memory_mb = call_timeout, memory_mb
        self.user = _choose_user(user)             # None: run as ourselves (we are not root)
        self.output = ""                           # what the last call (or the load) printed
        self.restarts = 0
        self._proc: subprocess.Popen | None = None
        self._started = False
        self._failure: LearnerError | None = None  # the file's load error, said at every call
        self._lock = threading.Lock()
        self._buffer = bytearray()                 # the reply channel's bytes not yet a line
        self._stderr = bytearray()                 # the tail of the child's stderr, this exchange
        self._stderr_open = False
        self._sequence = 0                         # request ids: a stray line is not a reply

    @property
    def pid(self) -> int | None:
        """The child's pid while one runs."""
        return self._proc.pid if self._proc else None

    def __enter__(self) -> LearnerCode:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> LearnerCode:
        """Load the file; LearnerError if it cannot be (and every later call() says so again)."""
        with self._lock:
            self._started = True
            if self._proc is None and self._failure is None:
                self._load()
        return self

    def call(self, function: str, *args: Any) -> Any:
        """`function(*args)` in the learner's file; its result (bytes restored). Raises
        LearnerError, LearnerTimeout; TypeError if an argument is not JSON-ready."""
        arguments = to_wire(list(args))
        with self._lock:
            if not self._started:
                raise VpclabError("LearnerCode: call start() (or use `with`) before call()")
            if self._failure is not None:          # the file does not load: no new child
                raise copy.copy(self._failure)
            if self._proc is None:                 # the last call timed out or crashed
                self._load()
                self.restarts += 1
            self._sequence += 1
            request = {"id": self._sequence, "call": function, "args": arguments}
            try:
                reply = self._exchange(request, time.monotonic() + self.call_timeout + HARD_GRACE)
            except _Hung:
                self._kill()
                raise LearnerTimeout(self._late(f"your function {function}"),
                                     kind="Timeout") from None
            except _Died as died:
                raise LearnerError(f"the Python process running your function {function} ended "
                                   f"({died.how}); the file is loaded afresh at the next call",
                                   kind="Died", traceback=died.stderr) from None
            except _TooLong:
                self._kill()
                raise LearnerError(f"the Python process running your function {function} was "
                                   f"stopped: it wrote more than {MAX_REPLY} bytes on its reply "
                                   "channel; the file is loaded afresh at the next call",
                                   kind="TooLarge") from None
            self.output = reply.get("output", "")
            if "error" not in reply:
                return from_wire(reply["result"])
            error = reply["error"]
            details = dict(kind=error["type"], traceback=error["traceback"], line=error["line"],
                           output=self.output)
            if reply.get("timeout"):
                self._kill()
                raise LearnerTimeout(self._late(f"your function {function}", error["line"]),
                                     **details)
            if error["type"] == "MissingFunction":
                raise LearnerError(f"your file {self.filename} defines no function {function}",
                                   kind="MissingFunction")
            if error["type"] == "BadResult":
                raise LearnerError(f"your function {function} returned something that cannot "
                                   f"be sent back ({error['message']}): return numbers, "
                                   "strings, lists, dicts, None or bytes", kind="BadResult")
            if error["type"] == "TooLarge":
                raise LearnerError(f"your function {function} returned too much to send back "
                                   f"({error['message']})", kind="TooLarge")
            raise LearnerError(f"your function {function} raised {error['type']}"
                               + (f" at line {error['line']} of {self.filename}"
                                  if error["line"] else ""), **details)

    def close(self) -> None:
        """SIGTERM the child's session, SIGKILL it after CLOSE_GRACE, always reap it."""
        with self._lock:
            self._started, self._failure = False, None
            self._kill(grace=CLOSE_GRACE)

    # --- the child process

    def _load(self) -> None:
        try:
            self._spawn()
        except LearnerError as exc:
            self._failure = exc
            raise

    def _spawn(self) -> None:
        argv = [sys.executable, "-I", "-B", str(CHILD), str(os.getpid()), str(self.memory_mb),
                repr(float(self.call_timeout))]
        if self.user is not None:                  # root: namespaces first, the user in the child
            unshare = shutil.which("unshare", path=ENV["PATH"])
            if unshare is None:
                raise VpclabError("cannot start the learner sandbox: util-linux's unshare is "
                                  "not installed")
            argv = [unshare, *NAMESPACES, "--", *argv, str(self.user[0]), str(self.user[1])]
        try:
            self._proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, cwd="/", env=ENV, umask=0o077,
                                          start_new_session=True)
        except OSError as exc:
            raise VpclabError(f"cannot start the learner sandbox {argv[0]}: {exc}") from None
        for pipe in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
            os.set_blocking(pipe.fileno(), False)
        self._buffer = bytearray()
        self._stderr_open = True
        self._sequence += 1
        load = {"id": self._sequence, "load": self.source, "filename": self.filename}
        try:
            reply = self._exchange(load, time.monotonic() + LOAD_TIMEOUT + START_SLACK)
        except _Hung:
            self._kill()
            raise LearnerTimeout(self._late(f"your file {self.filename}", limit=LOAD_TIMEOUT),
                                 kind="Timeout") from None
        except _Died as died:
            raise LearnerError(f"{self.filename} could not be loaded: the Python process "
                               f"loading it ended ({died.how})", kind="Died",
                               traceback=died.stderr) from None
        except _TooLong:
            self._kill()
            raise LearnerError(f"{self.filename} could not be loaded: it wrote more than "
                               f"{MAX_REPLY} bytes on its reply channel", kind="TooLarge") from None
        self.output = reply.get("output", "")
        if "error" in reply:
            self._kill()
            error = reply["error"]
            if reply.get("timeout"):
                raise LearnerTimeout(self._late(f"your file {self.filename}", error["line"],
                                                LOAD_TIMEOUT),
                                     kind="Timeout", traceback=error["traceback"],
                                     line=error["line"], output=self.output)
            where = f", line {error['line']}" if error["line"] else ""
            raise LearnerError(f"{self.filename}{where} could not be loaded: {error['type']}: "
                               f"{error['message']}", kind=error["type"],
                               traceback=error["traceback"], line=error["line"],
                               output=self.output)

    def _late(self, what: str, line: int | None = None, limit: float | None = None) -> str:
        done = "return" if limit is None else "finish loading"
        limit = self.call_timeout if limit is None else limit
        where = f" (it was running line {line} of {self.filename})" if line else ""
        return f"{what} did not {done} within {limit:g} s: an endless loop?{where}"

    def _exchange(self, request: dict[str, Any], deadline: float) -> dict[str, Any]:
        """Send one line, read one line, by `deadline` (however much the child writes
        meanwhile). _Hung if late, _TooLong past MAX_REPLY bytes without a line's end,
        _Died on EOF or on a line that is not the reply to this request (the learner wrote
        on the channel)."""
        assert self._proc is not None
        self._stderr.clear()
        data = memoryview((json.dumps(request) + "\n").encode())
        fd = self._proc.stdin.fileno()
        while data:
            self._wait(fd, selectors.EVENT_WRITE, deadline)
            try:
                data = data[os.write(fd, data):]
            except BlockingIOError:
                continue
            except BrokenPipeError:
                raise self._death() from None
        fd = self._proc.stdout.fileno()
        end = self._buffer.find(b"\n")
        while end < 0 and len(self._buffer) <= MAX_REPLY:
            self._wait(fd, selectors.EVENT_READ, deadline)
            try:
                chunk = os.read(fd, 1 << 16)
            except BlockingIOError:
                continue
            if not chunk:
                raise self._death()
            at = chunk.find(b"\n")                 # only the new bytes are searched
            if at >= 0:
                end = len(self._buffer) + at
            self._buffer += chunk
        if end < 0 or end > MAX_REPLY:
            raise _TooLong()
        line = bytes(self._buffer[:end])
        del self._buffer[:end + 1]
        try:
            reply = json.loads(line)
        except ValueError:
            reply = None
        if not _is_reply(reply, request["id"]):
            self._kill()
            raise _Died("it was stopped: something other than its reply came on its channel", "")
        return reply

    def _wait(self, fd: int, event: int, deadline: float) -> None:
        """Until `fd` is ready, draining the child's stderr meanwhile; _Hung at `deadline`,
        checked before every wait (a selector still polls with no time left). A selector,
        not select.select: no limit on fd numbers (a busy service has many), and green in
        an eventlet-patched process (os-ken's hub)."""
        assert self._proc is not None
        stderr = self._proc.stderr.fileno()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _Hung()
            with selectors.DefaultSelector() as selector:
                selector.register(fd, event)
                if self._stderr_open:
                    selector.register(stderr, selectors.EVENT_READ)
                ready = {key.fd for key, _ in selector.select(left)}
            if stderr in ready:
                self._drain_stderr()
            if fd in ready:
                return

    def _drain_stderr(self, reads: int = 16) -> None:
        """What the child wrote on its stderr (and its fd 1, the same pipe), its tail kept;
        at most `reads` reads, so an endless writer cannot keep us from the deadline."""
        assert self._proc is not None
        for _ in range(reads):
            if not self._stderr_open:
                return
            try:
                chunk = os.read(self._proc.stderr.fileno(), 1 << 16)
            except BlockingIOError:
                return
            if not chunk:
                self._stderr_open = False
                return
            self._stderr += chunk
            del self._stderr[:-STDERR_TAIL]

    def _death(self) -> _Died:
        """How the child ended (it closed its reply pipe), with what it wrote on stderr; reaped."""
        assert self._proc is not None
        try:
            self._proc.wait(timeout=CLOSE_GRACE)
        except subprocess.TimeoutExpired:
            pass                                   # closed the pipe but lives: killed below
        code = self._proc.returncode
        # faulthandler's dump of a crash, without this side's frames (sandbox_child.py)
        tail = "\n".join(line for line in self._stderr_tail().splitlines()
                         if str(CHILD) not in line)
        self._kill()
        if code is None:
            return _Died("it closed its connection", tail)
        if code < 0:
            return _Died(f"killed by {signal.Signals(-code).name}", tail)
        return _Died(f"exit status {code}", tail)

    def _stderr_tail(self) -> str:
        self._drain_stderr(reads=64)               # the child has ended (or is killed next)
        return self._stderr.decode(errors="replace").strip()

    def _kill(self, grace: float = 0.0) -> None:
        """End the child's session and reap it. The pid is ours until wait(), so the group
        signalled is the child's own session, never a recycled number."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if grace:
            _signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        if proc.returncode is None:
            _signal_group(proc, signal.SIGKILL)
        proc.wait()
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            with contextlib.suppress(OSError):
                pipe.close()


def _is_reply(reply: Any, request_id: int) -> bool:
    if not isinstance(reply, dict) or reply.get("id") != request_id:
        return False
    error = reply.get("error")
    if error is not None:
        return isinstance(error, dict) and {"type", "message", "traceback", "line"} <= set(error)
    return "result" in reply or "ready" in reply


def _signal_group(proc: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(proc.pid, signum)                # start_new_session: pgid == pid
    except (ProcessLookupError, PermissionError):
        pass


def _choose_user(user: tuple[int, int] | None) -> tuple[int, int] | None:
    """(uid, gid) the child runs as, or None for "as this (non-root) process"."""
    if os.geteuid() != 0:
        if user is not None and tuple(user) != (os.getuid(), os.getgid()):
            raise VpclabError("only root can run learner code as another user: "
                              f"leave user unset to run it as uid {os.getuid()}")
        if os.getuid() == 0:
            raise VpclabError("refusing to run learner code: the real user is root")
        return None
    if user is None:
        user = sudo_owner()
    if user is None:
        try:
            nobody = pwd.getpwnam("nobody")
        except KeyError:
            raise VpclabError("no user to run learner code as: there is no sudo user and no "
                              "'nobody'; pass user=(uid, gid)") from None
        user = (nobody.pw_uid, nobody.pw_gid)
    uid, gid = int(user[0]), int(user[1])
    if uid == 0 or gid == 0:
        raise VpclabError(f"refusing to run learner code as uid {uid} gid {gid}: "
                          "root's ids are never used for it")
    problem = _unreachable(uid, gid)
    if problem:
        raise VpclabError(problem)
    return uid, gid


def _unreachable(uid: int, gid: int) -> str | None:
    """What the user cannot reach of what the child needs (python, this package, os_ken),
    from the mode bits (ACLs are not read), as a message that names the path to fix."""
    needs = [(Path(sys.executable), 1), (Path(sys.executable).resolve(), 1), (CHILD, 4)]
    if (Path(sys.prefix) / "pyvenv.cfg").exists():
        needs.append((Path(sys.prefix) / "pyvenv.cfg", 4))
    spec = importlib.util.find_spec("os_ken")
    if spec is not None and spec.origin:
        needs.append((Path(spec.origin), 4))
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = f"uid {uid}"
    for path, bit in needs:
        for step, want in [*((p, 1) for p in reversed(path.parents)), (path, bit)]:
            st = step.stat()
            shift = 6 if st.st_uid == uid else 3 if st.st_gid == gid else 0
            if not (st.st_mode >> shift) & want:
                verb = "read" if want == 4 else "run" if step == path else "enter"
                letter = "r" if want == 4 else "x"
                return (f"learner code runs as {name} (uid {uid}), who cannot {verb} {step} "
                        f"(mode {st.st_mode & 0o777:o}, owner uid {st.st_uid}), on the way to "
                        f"{path}: make it reachable (e.g. chmod o+{letter} {step}) or keep "
                        f"the checkout where {name} can read it")
    return None
