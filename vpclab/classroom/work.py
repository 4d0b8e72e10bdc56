"""The learner's work folder: starter files copied in, never overwritten, backed up on reset.

`vpclab lab start` copies the starter into work/NN-slug/ (only the files that are not
there: a learner's edits are never lost), `reset` puts the starter back after copying
the learner's files into a dated backup folder, and `check` leaves its last result in
.vpclab-result.json for `vpclab lab list`. Under sudo, everything written here belongs
to the learner.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from vpclab.classroom.checks import Report
from vpclab.classroom.exercises import Exercise
from vpclab.errors import VpclabError
from vpclab.ownership import OutputDir

RESULT = ".vpclab-result.json"


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
    back. Returns the backup folder (None if there was nothing to keep)."""
    names = [n for n in _starter_names(exercise) if (work / n).is_file()]
    backup = None
    if names:
        backup = work / f".backup-{time.strftime('%Y%m%d-%H%M%S')}"
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
