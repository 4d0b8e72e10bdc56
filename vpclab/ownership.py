"""Files vpclab writes for the user who ran it through sudo belong to that user,
and nothing else does.

vpclab runs as root; a capture folder it writes under sudo would be root's,
and the user could not delete it. Giving it back must never reach further
than what this run created: an existing parent (`/tmp`, `/`, the user's home)
or a file that was already there keeps its owner. So the folder is looked at
before anything is written (which ancestors are missing, which entries exist)
and only the difference is given away, without following symlinks.
"""
from __future__ import annotations

import os
from pathlib import Path


def sudo_owner() -> tuple[int, int] | None:
    """(uid, gid) of the user behind sudo, if we are root because of sudo."""
    uid = os.environ.get("SUDO_UID", "")
    if os.geteuid() != 0 or not uid.isdigit() or int(uid) == 0:
        return None
    gid = os.environ.get("SUDO_GID", "")
    return int(uid), int(gid) if gid.isdigit() else int(uid)


class OutputDir:
    """A folder this run writes into; `give_back()` hands over what this run created."""

    def __init__(self, path: str | Path):
        self.path = Path(path).absolute()
        self.missing = _missing_ancestors(self.path)     # outermost first, the folder itself last
        self.existing = set(_entries(self.path)) if not self.missing else set()

    def make(self) -> Path:
        self.path.mkdir(parents=True, exist_ok=True)
        return self.path

    def created(self) -> list[Path]:
        """What this run made: missing ancestors, then new entries inside the folder."""
        inside = [p for p in _entries(self.path) if p not in self.existing]
        return [p for p in self.missing if os.path.lexists(p)] + inside

    def give_back(self) -> list[Path]:
        owner = sudo_owner()
        if owner is None:
            return []
        given = self.created()
        for path in given:
            os.chown(path, *owner, follow_symlinks=False)
        return given


def _missing_ancestors(path: Path) -> list[Path]:
    missing = []
    for candidate in [path, *path.parents]:
        if os.path.lexists(candidate):
            break
        missing.append(candidate)
    return list(reversed(missing))


def _entries(root: Path) -> list[Path]:
    """Everything under `root` (not `root` itself), never following a symlink."""
    if root.is_symlink() or not root.is_dir():
        return []
    found = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        found += [Path(folder) / name for name in dirs + files]
    return found


class OutputFile:
    """One file this run writes; `give_back()` hands it over only if this run created it."""

    def __init__(self, path: str | Path):
        self.path = Path(path).absolute()
        self.existed = os.path.lexists(self.path)

    def give_back(self) -> list[Path]:
        owner = sudo_owner()
        if owner is None or self.existed or self.path.is_symlink() or not self.path.is_file():
            return []
        os.chown(self.path, *owner, follow_symlinks=False)
        return [self.path]
