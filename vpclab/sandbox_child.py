"""The child side of vpclab.sandbox: runs one learner's file, unprivileged, and answers calls.

It is started by `LearnerCode` as
`python -I -B <this file> PARENT_PID MEMORY_MB CALL_TIMEOUT [UID GID]`. It is run by path,
not `-m vpclab...`: under `-I` the checkout is not on `sys.path`, and this file needs only
the standard library (and os_ken, which the learner imports). The parent imports
`to_wire`/`from_wire` from here, so both sides encode bytes the same way.

With UID GID (a root parent), it starts as root inside new network, mount and IPC
namespaces that `unshare` made (and exec'd in place: same pid, same parent) and, before it
reads anything of the learner's, confines itself: it refuses to go on unless those
namespaces really are not its parent's, makes its whole mount tree read-only
(mount_setattr(2), recursive: Linux 5.12 or later), then drops to UID/GID with no
supplementary groups (setresuid clears every capability). Without them (a non-root
parent) it already runs as that unprivileged user. Either way it then checks that no id
is root's and refuses otherwise.

Before anything of the learner's runs, the child: dies with its parent (PR_SET_PDEATHSIG,
so a killed mapping service leaves no learner process behind), cannot gain privileges
through a setuid program (PR_SET_NO_NEW_PRIVS), and takes resource limits it cannot raise
again (soft = hard): address space, no new process or thread (RLIMIT_NPROC 0), no file
content written (RLIMIT_FSIZE 0; Python ignores SIGXFSZ, so a write raises OSError),
no core dump, few open files.

Protocol (JSON lines, each request with an "id" its reply repeats): the parent sends
{"load": SOURCE, "filename": NAME}; the child answers {"ready": true} or {"error": ...}.
Then {"call": NAME, "args": [...]} gets {"result": ..., "output": ...} or
{"error": {"type", "message", "traceback", "line"}} (with "timeout": true when the
learner's code ran past CALL_TIMEOUT). The learner's own
prints are captured per call (bounded) and returned as "output": the real stdout carries
only the protocol. A reply line is at most MAX_REPLY bytes: a larger result is refused
here ("TooLarge"), and the parent kills a child whose line runs past it.
"""
from __future__ import annotations

import ctypes
import faulthandler
import importlib
import importlib.abc
import importlib.util
import io
import json
import linecache
import os
import resource
import signal
import sys
import traceback
import types
from typing import Any

LOAD_TIMEOUT = 5.0           # module-level code and its imports (os_ken's take ~0.3 s)
MAX_OUTPUT = 64 * 1024       # characters of a call's prints kept
MAX_REPLY = 1024 * 1024      # bytes of one reply line (JSON is ASCII here: chars == bytes)
MAX_MESSAGE = 4096           # characters of an exception's message kept
MAX_TRACEBACK = 16 * 1024    # characters of a traceback kept (its end: the failing line)
MAX_OPEN_FILES = 32
BYTES_KEY = "$hex"           # bytes travel as {"$hex": "0a0b..."}


def to_wire(value: Any) -> Any:
    """JSON-ready copy of `value`: bytes become {"$hex": ...}; tuples become lists."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {BYTES_KEY: bytes(value).hex()}
    if isinstance(value, dict):
        return {key: to_wire(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_wire(item) for item in value]
    return value


def from_wire(value: Any) -> Any:
    """The inverse of `to_wire`: {"$hex": ...} becomes bytes again."""
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get(BYTES_KEY), str):
            return bytes.fromhex(value[BYTES_KEY])
        return {key: from_wire(item) for key, item in value.items()}
    if isinstance(value, list):
        return [from_wire(item) for item in value]
    return value


class Timeout(BaseException):
    """Raised inside the learner's code when it runs too long; a BaseException, so a
    learner's `except Exception` does not swallow it (a bare `except:` can: the parent
    then kills the child at its own, later deadline)."""


class _RyuAlias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """`import ryu...` (the Ryu book's spelling) gives the very same `os_ken...` module."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "ryu" or fullname.startswith("ryu."):
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def __init__(self) -> None:
        self.specs: dict[str, Any] = {}

    def create_module(self, spec):
        module = importlib.import_module("os_ken" + spec.name[len("ryu"):])
        self.specs[spec.name] = module.__spec__   # importlib overwrites __spec__ next
        return module

    def exec_module(self, module):
        # already executed as os_ken...: give it back its own spec
        module.__spec__ = self.specs.pop(module.__spec__.name)


class _Capture(io.TextIOBase):
    """A call's prints, kept up to MAX_OUTPUT characters (a chatty loop cannot fill memory
    or block on a pipe)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if self.size < MAX_OUTPUT:
            self.parts.append(text[:MAX_OUTPUT - self.size])
        self.size += len(text)
        return len(text)

    def text(self) -> str:
        out = "".join(self.parts)
        return out + ("\n[output cut]\n" if self.size > MAX_OUTPUT else "")


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


SYS_MOUNT_SETATTR = 442      # the same number on every architecture (new syscalls are)
AT_FDCWD, AT_RECURSIVE, MOUNT_ATTR_RDONLY = -100, 0x8000, 0x1


def _confine(parent: int, uid: int, gid: int) -> None:
    """As root, in namespaces of its own: the whole mount tree read-only, then uid/gid."""
    if os.geteuid() != 0 or uid == 0 or gid == 0:
        sys.exit("vpclab sandbox: confining needs root and a user that is not root")
    for kind in ("net", "mnt", "ipc"):         # never make the caller's own mounts read-only
        try:
            shared = os.readlink(f"/proc/self/ns/{kind}") == \
                os.readlink(f"/proc/{parent}/ns/{kind}")
        except OSError as exc:
            sys.exit(f"vpclab sandbox: cannot compare namespaces with the parent: {exc}")
        if shared:
            sys.exit(f"vpclab sandbox: refusing to run: its {kind} namespace is its parent's")
    libc = ctypes.CDLL(None, use_errno=True)
    attr = _MountAttr(MOUNT_ATTR_RDONLY, 0, 0, 0)
    if libc.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, b"/", AT_RECURSIVE, ctypes.byref(attr),
                    ctypes.sizeof(attr)) != 0:
        errno = ctypes.get_errno()
        sys.exit("vpclab sandbox: cannot make its file system read-only (mount_setattr, "
                 f"Linux 5.12 or later): {os.strerror(errno)}")
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)


def _harden(parent: int, memory_mb: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)         # PR_SET_PDEATHSIG
    if os.getppid() != parent:                     # the parent died before that
        os._exit(1)
    if 0 in (os.getuid(), os.geteuid(), os.getgid(), os.getegid(), *os.getgroups()):
        sys.exit("vpclab sandbox: refusing to run learner code as root")
    if libc.prctl(38, 1, 0, 0, 0) != 0:            # PR_SET_NO_NEW_PRIVS
        sys.exit("vpclab sandbox: cannot set no_new_privs")
    limits = {resource.RLIMIT_AS: memory_mb * 1024 * 1024, resource.RLIMIT_NPROC: 0,
              resource.RLIMIT_FSIZE: 0, resource.RLIMIT_CORE: 0,
              resource.RLIMIT_NOFILE: MAX_OPEN_FILES}
    for which, value in limits.items():
        resource.setrlimit(which, (value, value))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past RLIMIT_FSIZE: OSError, not death
    faulthandler.enable(sys.__stderr__)            # a segfault names the learner's line


def _error(exc: BaseException, filename: str) -> dict[str, Any]:
    """The learner's view of `exc`: only frames in the learner's file (not this one)."""
    traceback.clear_frames(exc.__traceback__)      # a MemoryError's hog is freed first
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]
    exc.__traceback__ = None
    line = frames[-1].lineno if frames else None
    if isinstance(exc, SyntaxError) and exc.filename == filename:
        line = exc.lineno
    text = "".join(traceback.format_list(frames))
    text = ("Traceback (most recent call last):\n" + text if text else "")
    text += "".join(traceback.format_exception_only(type(exc), exc))
    if len(text) > MAX_TRACEBACK:
        text = "[traceback cut]\n..." + text[-MAX_TRACEBACK:]
    message = exc.msg if isinstance(exc, SyntaxError) else str(exc)
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE] + "... [cut]"
    return {"type": type(exc).__name__, "message": message, "traceback": text, "line": line}


def _guarded(limit: float, function, *args) -> Any:
    """`function(*args)` with an alarm after `limit` seconds."""
    def alarm(signum, frame):
        raise Timeout(f"still running after {limit:g} s")
    signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        return function(*args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def _load(message: dict[str, Any]) -> types.ModuleType:
    filename, source = message["filename"], message["load"]
    # tracebacks show the learner's lines without reading their file (we may not be able to)
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    module = types.ModuleType("learner")
    module.__file__ = filename
    code = compile(source, filename, "exec")
    _guarded(LOAD_TIMEOUT, exec, code, module.__dict__)
    return module


def _answer(module: types.ModuleType, message: dict[str, Any], limit: float) -> dict[str, Any]:
    name = message["call"]
    function = getattr(module, name, None)
    if not callable(function):
        return {"error": {"type": "MissingFunction", "message": f"no function {name}",
                          "traceback": "", "line": None}}
    capture = _Capture()
    sys.stdout = sys.stderr = capture
    try:
        result = _guarded(limit, function, *from_wire(message["args"]))
    except Timeout as exc:
        return {"error": _error(exc, module.__file__), "timeout": True, "output": capture.text()}
    except BaseException as exc:                   # SystemExit and KeyboardInterrupt too
        return {"error": _error(exc, module.__file__), "output": capture.text()}
    finally:
        sys.stdout = sys.stderr = sys.__stderr__
    return {"result": result, "output": capture.text()}


def _encode(message: dict[str, Any], request_id: Any) -> str:
    """One reply line, at most MAX_REPLY bytes."""
    def failed(kind: str, text: str, output: str) -> str:
        return json.dumps({"error": {"type": kind, "message": text, "traceback": "",
                                     "line": None}, "output": output, "id": request_id})
    try:
        line = json.dumps({**to_wire(message), "id": request_id})
    except Exception as exc:                       # not JSON, or nested too deep
        return failed("BadResult", str(exc)[:MAX_MESSAGE], message.get("output", ""))
    if len(line) <= MAX_REPLY:
        return line
    if "result" in message:
        return failed("TooLarge", f"{len(line)} bytes once encoded (with what it printed); "
                      f"a reply is at most {MAX_REPLY} bytes", "")
    cut = {**message, "output": "[output cut: too long to send]\n"}   # an error, or ready
    return json.dumps({**to_wire(cut), "id": request_id})


def main() -> None:
    parent, memory_mb, limit = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    if len(sys.argv) == 6:                         # started as root by unshare
        _confine(parent, int(sys.argv[4]), int(sys.argv[5]))
    _harden(parent, memory_mb)
    # the protocol gets private copies of stdin/stdout; the learner's fd 0 is empty and
    # its fd 1 is stderr, so nothing it does can garble a reply
    requests = os.fdopen(os.dup(0), "r", encoding="utf-8")
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    sys.stdin, sys.stdout = open(os.devnull), sys.__stderr__

    sys.meta_path.insert(0, _RyuAlias())

    def reply(message: dict[str, Any], request_id: Any) -> None:
        replies.write(_encode(message, request_id) + "\n")
        replies.flush()

    first = json.loads(requests.readline() or "{}")
    if "load" not in first:
        return
    capture = _Capture()                           # module-level prints
    sys.stdout = sys.stderr = capture
    try:
        module = _load(first)
    except BaseException as exc:
        reply({"error": _error(exc, first["filename"]), "timeout": isinstance(exc, Timeout),
               "output": capture.text()}, first["id"])
        return
    finally:
        sys.stdout = sys.stderr = sys.__stderr__
    reply({"ready": True, "output": capture.text()}, first["id"])
    for line in requests:
        message = json.loads(line)
        reply(_answer(module, message, limit), message["id"])


if __name__ == "__main__":
    main()
