"""Learner code handed to a lab: which of the mapping service's parts it replaces, and how
the file is read.

A classroom exercise runs the learner's own function in place of one part of the real
mapping service (HOOKS). The lab API reads the learner's file here, as root, and must
not become a way to read what the learner could not: the file is opened without
following a symlink, must be a regular file of reasonable size, and under sudo must be
the learner's own or readable by everyone. Its text goes into the lab's state folder
(learner.json), with the user it runs as; the mapping service runs it with
vpclab.sandbox, never as root.
"""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Mapping

from vpclab.errors import VpclabError
from vpclab.running.ownership import sudo_owner

LEARNER_FILE = "learner.json"
HOOKS = {      # (ryu_apps/learner_*.py wire each into the service)
    "answer_arp": "the answer to an ARP miss: the reply, and where the entry is cached",
    "tunnel": "the tunnel: encapsulate (VNI, outer destination) and deliver (to which VM)",
    "on_move": "after a VM moved: which routers invalidate which entry, and the barriers",
    "check_source": "the receive check: does a tunnelled packet's sender live behind its "
                    "outer source?",
}
MAX_SOURCE = 256 * 1024


def read_learner_file(path: str | Path) -> str:
    """The text of a learner's file, read safely as root (see the module's docstring)."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise VpclabError(f"cannot read {path}: {exc.strerror}"
                          + (" (a symlink is not followed)" if os.path.islink(path) else ""))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise VpclabError(f"{path} is not a regular file")
        if info.st_size > MAX_SOURCE:
            raise VpclabError(f"{path} is {info.st_size} bytes; a learner file is at most "
                              f"{MAX_SOURCE // 1024} KiB")
        owner = sudo_owner()
        if owner is not None and info.st_uid != owner[0] and not info.st_mode & stat.S_IROTH:
            raise VpclabError(f"{path} is neither yours nor readable by everyone")
        data = os.read(fd, MAX_SOURCE + 1)
    finally:
        os.close(fd)
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise VpclabError(f"{path} is not UTF-8 text") from None


def learner_record(hooks: Mapping[str, str | Path], user: tuple[int, int] | None) -> dict:
    """What the lab keeps in learner.json: for each hook, the file's name and text."""
    record: dict = {"user": list(user) if user else None, "hooks": {}}
    for hook, path in hooks.items():
        if hook not in HOOKS:
            raise VpclabError(f"no part of the mapping service is called {hook!r}; parts a "
                              f"learner may replace: {', '.join(HOOKS)}")
        record["hooks"][hook] = {"filename": Path(path).name, "source": read_learner_file(path)}
    return record


def write_learner(state_dir: Path, record: dict) -> None:
    """learner.json, readable by root alone (it holds a learner's code)."""
    fd = os.open(state_dir / LEARNER_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW,
                 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(json.dumps(record))


def read_learner(state_dir: Path) -> dict | None:
    path = state_dir / LEARNER_FILE
    return json.loads(path.read_text()) if path.is_file() else None
