"""A failed test's evidence: gathered by root into memory, written as the user it is for.

The pytest plugin keeps a failed test's labs' logs, flows and captures in the user's
checkout. Root reads them (the lab's state is root's) but never writes in a folder the
user owns, where a symlink swapped in at the right moment would send root's writes, or
a chown, elsewhere. So there are two halves:

- `gather(labs)` runs as root and returns the evidence as bytes in memory, keyed by a
  relative path: each lab's logs and records (its state folder's *.log, *.jsonl, *.json
  and *.yaml regular files), each host's `ovs-vsctl show` and flows, and each capture's
  files (regular files at the top of its folder only, under `captures/N-FOLDER/`). No
  symlink is followed: a file is opened with O_NOFOLLOW and kept only if fstat says it
  is a regular file. Under sudo, a capture file is kept only if that user could read it
  anyway (theirs, or readable by all). At most MAX_BYTES in all; what is left out, and
  why, is listed in LAB/not-kept.txt.
- `write(root, name, files)` creates `root` (with its parents) and a new folder `name`
  in it (`name-2`, `name-3`... if taken), writes the files there and returns the folder.
  `keep()` runs it as the user behind sudo, in a child process (`python -m
  vpclab.running.evidence ROOT NAME`, the files as marshal on stdin, the folder printed on
  stdout), so everything it makes is that user's from the start and nothing is chowned;
  as plain root it runs here.
"""
from __future__ import annotations

import marshal
import os
import stat
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Iterable, Mapping

from vpclab.errors import VpclabError
from vpclab.running.ownership import sudo_owner

if TYPE_CHECKING:
    from vpclab.lab import Lab

MAX_BYTES = 200 * 1024 * 1024          # all of one test's evidence
STATE_PATTERNS = ("*.log", "*.jsonl", "*.json", "*.yaml")
NOT_KEPT = "not-kept.txt"
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class Budget:
    """What may still be kept, in bytes, across every lab of a test."""

    def __init__(self, limit: int = MAX_BYTES):
        self.limit = self.left = limit


class LabEvidence:
    """One lab's files (relative path -> bytes) and what was left out."""

    def __init__(self, name: str, budget: Budget):
        self.name, self.budget = name, budget
        self.files: dict[str, bytes] = {}
        self.skipped: list[str] = []

    def add(self, path: str, data: bytes) -> bool:
        if len(data) > self.budget.left:
            self.skip(path, f"{len(data)} bytes, over the {self.budget.limit // 2**20} MB "
                            "kept per test")
            return False
        self.budget.left -= len(data)
        self.files[path] = data
        return True

    def skip(self, path: str, why: str) -> None:
        self.skipped.append(f"{path}: {why}")

    def read_regular(self, path: str, name: str | Path, dir_fd: int | None = None,
                     readable_by: int | None = None) -> bytes | None:
        """The bytes of `name` (relative to `dir_fd`) if it is a regular file, else None and
        a note. Symlinks are not followed; FIFOs and devices are not read. With
        `readable_by`, only a file that uid owns or everyone may read is taken."""
        try:
            fd = os.open(name, READ_FLAGS, dir_fd=dir_fd)
        except OSError as exc:
            self.skip(path, "a symlink, not followed" if _is_symlink(name, dir_fd)
                      else f"cannot open: {exc.strerror}")
            return None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                self.skip(path, "not a regular file")
                return None
            if readable_by is not None and info.st_uid != readable_by \
                    and not info.st_mode & stat.S_IROTH:
                self.skip(path, f"uid {info.st_uid}'s, mode {stat.filemode(info.st_mode)}: "
                                f"not readable by uid {readable_by}")
                return None
            if info.st_size > self.budget.left:
                self.skip(path, f"{info.st_size} bytes, over the {self.budget.limit // 2**20} MB "
                                "kept per test")
                return None
            chunks, total = [], 0
            while True:                       # a file still growing is read up to the budget
                chunk = os.read(fd, min(1 << 20, self.budget.left + 1 - total))
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
                if total > self.budget.left:
                    self.skip(path, f"grew past the {self.budget.limit // 2**20} MB kept per test")
                    return None
            return b"".join(chunks)
        except OSError as exc:
            self.skip(path, f"cannot read: {exc.strerror}")
            return None
        finally:
            os.close(fd)

    def all_files(self) -> dict[str, bytes]:
        files = {f"{self.name}/{path}": data for path, data in self.files.items()}
        if self.skipped:
            files[f"{self.name}/{NOT_KEPT}"] = ("".join(line + "\n" for line in self.skipped)
                                                 .encode())
        return files


def _is_symlink(name: str | Path, dir_fd: int | None) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode)
    except OSError:
        return False


def gather(labs: Iterable["Lab"], budget: Budget | None = None,
           echo=print) -> dict[str, bytes]:
    """Every running lab's evidence, as `LAB/relative/path -> bytes`; empty if none of the
    labs is running from its handle. Flows and the end of the mapping service's log are
    also echoed (CI often shows only a test's output)."""
    budget = budget or Budget()
    files: dict[str, bytes] = {}
    for lab in labs:
        try:
            state = lab.state
        except VpclabError as exc:       # removed by the test, or replaced by another lab
            echo(f"vpclab: lab {lab.name} not kept: {exc}")
            continue
        evidence = LabEvidence(lab.name, budget)
        for step in (_state_files, _host_views, _captures):
            try:
                step(lab, state, evidence, echo)
            except Exception as exc:  # noqa: BLE001 - keep what the other steps find
                evidence.skip(step.__name__.strip("_"), f"{type(exc).__name__}: {exc}")
        files.update(evidence.all_files())
    return files


def _state_files(lab: "Lab", state, evidence: LabEvidence, echo) -> None:
    top = str(state.dir)
    for folder, dirs, names in os.walk(top, followlinks=False):
        dirs.sort()
        for name in sorted(names):
            if not any(fnmatch(name, pattern) for pattern in STATE_PATTERNS):
                continue
            path = os.path.join(folder, name)
            relative = PurePosixPath(os.path.relpath(path, top)).as_posix()
            data = evidence.read_regular(relative, path)
            if data is not None:
                evidence.add(relative, data)
    log = evidence.files.get("mapping-service.log")
    if log is not None:
        echo(f"--- {state.log('mapping-service')} (end)\n"
             f"{log[-3000:].decode(errors='replace')}")


def _host_views(lab: "Lab", state, evidence: LabEvidence, echo) -> None:
    nodes = lab.nodes()
    for host in lab.hosts:
        mgmt = f"unix:{state.host_dir(nodes[host]['node'])}/br-int.mgmt"
        for what, argv in (("ovs", ["ovs-vsctl", "show"]),
                           ("flows", ["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", mgmt])):
            try:
                done = lab.exec(host, *argv, timeout=20)
                text = done.stdout + done.stderr
            except VpclabError as exc:
                text = f"(could not run {' '.join(argv)}: {exc})\n"
            evidence.add(f"{host}.{what}.txt", text.encode())
            echo(f"--- {lab.name} {host}: {' '.join(argv[:2])}\n{text}")


def _captures(lab: "Lab", state, evidence: LabEvidence, echo) -> None:
    """Each capture's regular files, from the top of its folder only, under
    captures/N-FOLDER/ (N its place in lab.captures: two folders of one name stay apart)."""
    owner = sudo_owner()
    readable_by = owner[0] if owner else None
    for index, capture in enumerate(lab.captures, 1):
        where = f"captures/{index}-{capture.dir.name or 'capture'}"
        try:
            dir_fd = os.open(capture.dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
                             | os.O_CLOEXEC)
        except OSError as exc:
            evidence.skip(f"{where} ({capture.dir})",
                          "a symlink, not followed" if os.path.islink(capture.dir)
                          else f"cannot open: {exc.strerror}")
            continue
        try:
            for name in sorted(os.listdir(dir_fd)):
                data = evidence.read_regular(f"{where}/{name}", name, dir_fd, readable_by)
                if data is not None:
                    evidence.add(f"{where}/{name}", data)
        finally:
            os.close(dir_fd)


# -- writing -----------------------------------------------------------------------------------

def keep(root: Path, name: str, files: Mapping[str, bytes]) -> Path:
    """Write `files` into a new folder `name` (or name-2...) under `root`, as the user behind
    sudo if there is one (a child process running as them), else here. Returns the folder."""
    root = Path(root).absolute()
    owner = sudo_owner()
    if owner is None:
        return write(root, name, files)
    uid, gid = owner
    package_parent = str(Path(__file__).resolve().parents[2])     # the folder holding vpclab/
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [package_parent,
                                                         os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-s", "-m", "vpclab.running.evidence", str(root), name],
                          input=marshal.dumps(dict(files)), capture_output=True, cwd="/",
                          env=env, user=uid, group=gid, extra_groups=[], timeout=300)
    if done.returncode != 0:
        raise VpclabError(f"could not keep the evidence in {root} as uid {uid}: "
                          f"{done.stderr.decode(errors='replace').strip()}")
    return Path(os.fsdecode(done.stdout.rstrip(b"\n").rsplit(b"\n", 1)[-1]))


def write(root: Path, name: str, files: Mapping[str, bytes]) -> Path:
    """Create `root` with its parents, then a new folder in it (`name`, else name-2,
    name-3...: never one that exists), and write `files` (relative paths) into it.
    Inside the new folder nothing is followed or reused: every folder and file is made
    by this call, relative to its parent's descriptor."""
    for path in files:
        _parts(path)                       # every path checked before anything is made
    root = Path(root).absolute()
    root.mkdir(parents=True, exist_ok=True)
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        made, top = _new_folder(root_fd, name)
    finally:
        os.close(root_fd)
    folders = {(): top}
    try:
        for path, data in files.items():
            *dirs, filename = _parts(path)
            parent = _folder(folders, tuple(dirs))
            fd = os.open(filename, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o666, dir_fd=parent)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
    finally:
        for fd in folders.values():
            os.close(fd)
    return root / made


def _parts(path: str) -> tuple[str, ...]:
    parts = PurePosixPath(path).parts
    if not parts or PurePosixPath(path).is_absolute() or any(p in ("", ".", "..") for p in parts) \
            or path != "/".join(parts):
        raise VpclabError(f"not a relative file path: {path!r}")
    return parts


def _new_folder(root_fd: int, name: str) -> tuple[str, int]:
    """mkdir `name` (else name-2, name-3...) in root_fd, never reusing one that exists;
    return its name and a descriptor of it, checked to be the folder this call made."""
    if len(_parts(name)) != 1:
        raise VpclabError(f"not a folder name: {name!r}")
    n = 1
    while True:
        candidate = name if n == 1 else f"{name}-{n}"
        try:
            os.mkdir(candidate, 0o777, dir_fd=root_fd)
            break
        except FileExistsError:
            n += 1
    fd = os.open(candidate, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                 dir_fd=root_fd)
    if os.fstat(fd).st_uid != os.geteuid():
        os.close(fd)
        raise VpclabError(f"the folder {candidate} just made was replaced by someone else's")
    return candidate, fd


def _folder(folders: dict[tuple[str, ...], int], parts: tuple[str, ...]) -> int:
    """A descriptor of the folder `parts` inside the new folder, made on first use."""
    if parts in folders:
        return folders[parts]
    parent = _folder(folders, parts[:-1])
    os.mkdir(parts[-1], 0o777, dir_fd=parent)          # FileExistsError: not ours, stop
    folders[parts] = os.open(parts[-1], os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
                             | os.O_CLOEXEC, dir_fd=parent)
    return folders[parts]


def main(argv: list[str]) -> int:
    """`python -m vpclab.running.evidence ROOT NAME`, the files as marshal on stdin: write them,
    print the folder made."""
    if len(argv) != 2:
        print("usage: python -m vpclab.running.evidence ROOT NAME < marshalled {path: bytes}",
              file=sys.stderr)
        return 2
    files = marshal.loads(sys.stdin.buffer.read())
    if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, bytes)
                                              for k, v in files.items()):
        print("stdin is not a marshalled {path: bytes}", file=sys.stderr)
        return 2
    try:
        folder = write(Path(argv[0]), argv[1], files)
    except (OSError, VpclabError) as exc:
        print(exc, file=sys.stderr)
        return 1
    sys.stdout.buffer.write(os.fsencode(folder) + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
