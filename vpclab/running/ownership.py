"""Files vpclab writes for the user who ran it through sudo belong to that user,
and nothing else does.

vpclab runs as root; a capture folder it writes under sudo would be root's,
and the user could not delete it. Giving it back must never reach further
than what this run created: an existing parent (`/tmp`, `/`, the user's home)
or a file that was already there keeps its owner. So the folder is looked at
before anything is written (which ancestors are missing, which of the files
this run will write exist already) and only what this run made is given away,
without following symlinks.
"""
from __future__ import annotations

import os
from pathlib import Path

from vpclab.errors import VpclabError


def sudo_owner() -> tuple[int, int] | None:
    """(uid, gid) of the user behind sudo, if we are root because of sudo."""
    uid = os.environ.get("SUDO_UID", "")
    if os.geteuid() != 0 or not uid.isdigit() or int(uid) == 0:
        return None
    gid = os.environ.get("SUDO_GID", "")
    return int(uid), int(gid) if gid.isdigit() else int(uid)


class OutputDir:
    """A folder this run writes into. `expect()` names the files it will write, before
    writing them; `give_back()` hands over the folders this run made and those of the
    expected files that did not exist before, and nothing else: a file someone else
    creates in the folder meanwhile keeps its owner."""

    def __init__(self, path: str | Path):
        self.path = Path(path).absolute()
        self.missing = _missing_ancestors(self.path)     # outermost first, the folder itself last
        self.new_files: list[Path] = []

    def make(self) -> Path:
        self.path.mkdir(parents=True, exist_ok=True)
        return self.path

    def expect(self, names: list[str]) -> None:
        """The files this run will write here; a symlink in their place is refused (root
        would write through it)."""
        for name in names:
            path = self.path / name
            if path.parent != self.path:
                raise VpclabError(f"{name!r} is not a file name in {self.path}")
            if path.is_symlink():
                raise VpclabError(f"refusing to write {path}: it is a symlink; remove it or "
                                  "choose another folder (-o)")
            if not os.path.lexists(path) and path not in self.new_files:
                self.new_files.append(path)

    def created(self) -> list[Path]:
        """What this run made: missing ancestors, then new regular files inside the folder."""
        folders = [p for p in self.missing if p.is_dir() and not p.is_symlink()]
        files = [p for p in self.new_files if p.is_file() and not p.is_symlink()]
        return folders + files

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


class OutputFile:
    """One file this run writes; `give_back()` hands it over only if this run created it."""

    def __init__(self, path: str | Path):
        self.path = Path(path).absolute()
        if self.path.is_symlink():
            raise VpclabError(f"refusing to write {self.path}: it is a symlink; remove it or "
                              "choose another file")
        self.existed = os.path.lexists(self.path)

    def give_back(self) -> list[Path]:
        owner = sudo_owner()
        if owner is None or self.existed or self.path.is_symlink() or not self.path.is_file():
            return []
        os.chown(self.path, *owner, follow_symlinks=False)
        return [self.path]
