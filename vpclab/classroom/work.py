"""The learner's work folder: starter files copied in, never overwritten, backed up on reset.

`vpclab lab start` copies the starter into work/NN-slug/ (only the files that are not
there: a learner's edits are never lost), `reset` puts the starter back after copying
the learner's files into a dated backup folder, and `check` leaves its last result in
.vpclab-result.json for `vpclab lab list`. Under sudo, everything written here belongs
to the learner.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from vpclab.classroom.checks import Report
from vpclab.classroom.exercises import LABS, Exercise
from vpclab.model.names import check_student_id
from vpclab.errors import VpclabError
from vpclab.running.ownership import OutputDir

RESULT = ".vpclab-result.json"
STUDENT = ".vpclab-student"


def default_work(exercise: Exercise) -> Path:
    return Path("work") / exercise.name


def copy_starter(exercise: Exercise, work: Path) -> tuple[list[str], list[str]]:
    """Copy the starter files that are missing from `work`; (copied, kept as they were)."""
    names = _starter_names(exercise)
    output = OutputDir(work)
    output.expect(names)
    copied, kept = [], []
    try:
        output.make()
        for name in names:
            target = work / name
            if target.exists():
                kept.append(name)
                continue
            shutil.copyfile(exercise.folder / "starter" / name, target)
            copied.append(name)
    finally:
        output.give_back()
    return copied, kept


def reset(exercise: Exercise, work: Path) -> Path | None:
    """Back up the learner's files (a new dated folder inside `work`), then put the starter
    back. Returns the backup folder (None if there was nothing to keep). Never in labs/."""
    if in_labs(work):
        raise VpclabError(f"{work} is part of the exercise itself (labs/): reset works on "
                          "your work folder")
    names = [n for n in _starter_names(exercise) if (work / n).is_file()]
    backup = None
    if names:
        backup = _new_backup(work)
        output = OutputDir(backup)
        output.expect(names)
        try:
            output.make()
            for name in names:
                shutil.copyfile(work / name, backup / name)
        finally:
            output.give_back()
    for name in names:
        (work / name).unlink()
    copy_starter(exercise, work)
    return backup


def _new_backup(work: Path) -> Path:
    """A backup folder no earlier reset made (-2, -3... within one second)."""
    base = work / f".backup-{time.strftime('%Y%m%d-%H%M%S')}"
    path, n = base, 1
    while os.path.lexists(path):
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def remember_student(work: Path, student: str | None) -> None:
    """`start --student ID` is remembered, so `check` in that folder uses the same variant."""
    output = OutputDir(work)
    output.expect([STUDENT])
    try:
        if student is None:
            if (work / STUDENT).is_file() and not (work / STUDENT).is_symlink():
                (work / STUDENT).unlink()
        else:
            (work / STUDENT).write_text(student + "\n")
    finally:
        output.give_back()


def remembered_student(work: Path) -> str | None:
    path = work / STUDENT
    if path.is_symlink() or not path.is_file():
        return None
    return check_student_id(path.read_text().strip())


def in_labs(folder: Path) -> bool:
    """Is `folder` (resolved) inside the exercises' own labs/ folder? Never written there."""
    return Path(folder).resolve().is_relative_to(LABS.resolve())


def save_result(work: Path, report: Report) -> None:
    output = OutputDir(work)
    output.expect([RESULT])
    try:
        (work / RESULT).write_text(json.dumps({**report.to_dict(), "at": time.time()}, indent=1))
    finally:
        output.give_back()


def last_result(work: Path) -> dict | None:
    try:
        return json.loads((work / RESULT).read_text())
    except (OSError, ValueError):
        return None


def _starter_names(exercise: Exercise) -> list[str]:
    starter = exercise.folder / "starter"
    names = [p.name for p in sorted(starter.iterdir()) if p.is_file()]
    if not names:
        raise VpclabError(f"{starter} holds no files: the exercise is broken")
    return names
