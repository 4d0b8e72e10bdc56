"""The exercises in labs/: found by their folder, loaded from their exercise.py.

Every exercise is a folder `labs/NN-slug/` with README.md, `starter/` (the files the
learner edits, copied to their work folder), `solution/` and `exercise.py`, which
declares TITLE, WORK_FILES, `topology(variant)` (the lab `vpclab lab start` brings
up) and its checks (`@check`). Adding an exercise is adding a folder.
"""
from __future__ import annotations

import importlib.util
import pwd
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from vpclab.classroom.checks import Check, CheckContext, Report, run_checks
from vpclab.classroom.variant import Variant
from vpclab.errors import VpclabError

LABS = Path(__file__).resolve().parents[2] / "labs"
FOLDER = re.compile(r"(\d\d)-([a-z0-9-]+)")


@dataclass(frozen=True)
class Exercise:
    number: int
    slug: str
    folder: Path
    module: ModuleType

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def title(self) -> str:
        return self.module.TITLE

    @property
    def work_files(self) -> list[str]:
        return list(self.module.WORK_FILES)

    @property
    def checks(self) -> list[Check]:
        return [value for value in vars(self.module).values() if isinstance(value, Check)]

    def variant(self, student: str | None) -> Variant:
        return Variant.of(self.name, student)

    def topology(self, variant: Variant) -> dict:
        """The lab `vpclab lab start` brings up for this student."""
        return self.module.topology(variant)

    def check(self, work: Path, student: str | None = None, full: bool = False,
              timeout: float | None = None, untrusted: bool = False) -> Report:
        """Grade the files in `work` in fresh labs; `full` adds the teacher's hidden checks;
        `timeout` caps every check (default: each check's own). `untrusted` (a teacher
        grading others' work): learner code runs as `nobody`, never as the teacher behind
        sudo, whose files and processes it could otherwise reach."""
        work = Path(work).absolute()
        if work.is_symlink():
            raise VpclabError(f"{work} is a symlink: give the work folder itself")
        if not work.is_dir():
            raise VpclabError(f"no work folder {work}: `vpclab lab start {self.number}` makes it")
        ctx = CheckContext(work, self.variant(student), f"c{self.number:02d}",
                           nobody() if untrusted else None)
        return run_checks(self.checks, ctx, f"exercise {self.number:02d} ({self.slug})", full,
                          timeout)


def nobody() -> tuple[int, int]:
    try:
        entry = pwd.getpwnam("nobody")
    except KeyError:
        raise VpclabError("grading runs learner code as the user `nobody`, and there is none "
                          "on this machine") from None
    return entry.pw_uid, entry.pw_gid


def all_exercises(labs: Path = LABS) -> list[Exercise]:
    found = []
    for folder in sorted(labs.iterdir()) if labs.is_dir() else []:
        match = FOLDER.fullmatch(folder.name)
        if match and (folder / "exercise.py").is_file():
            found.append(Exercise(int(match.group(1)), match.group(2), folder, _load(folder)))
    return found


def exercise(number: int, labs: Path = LABS) -> Exercise:
    exercises = all_exercises(labs)
    for candidate in exercises:
        if candidate.number == number:
            return candidate
    raise VpclabError(f"there is no exercise {number}; exercises: "
                      f"{', '.join(str(e.number) for e in exercises) or 'none'} (`vpclab lab list`)")


def _load(folder: Path) -> ModuleType:
    name = f"vpclab_exercise_{folder.name.replace('-', '_')}"
    spec = importlib.util.spec_from_file_location(name, folder / "exercise.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module          # dataclasses and pickling look modules up by name
    spec.loader.exec_module(module)
    return module
