"""A teacher grades a class: one folder per student, each in fresh labs with its variant.

SUBMISSIONS/<student>/ holds that student's work files; the folder's name is the student
ID (validated like every name). Each is graded with the full check set, hidden checks
included, each check under the time limit. What a submission lacks, crashes on or hangs
in fails those checks and grading goes on. OUT/report.csv has one row per student (score
and each check), OUT/<student>/feedback.md what the student would read.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Callable

from vpclab.classroom.checks import CheckResult, Report
from vpclab.classroom.exercises import Exercise
from vpclab.errors import VpclabError
from vpclab.model.names import STUDENT_ID, check_student_id
from vpclab.running.ownership import OutputDir


def grade(exercise: Exercise, submissions: Path, out: Path, timeout: float | None = None,
          on_student: Callable[[str, Report], None] = lambda s, r: None) -> list[Report]:
    students = _students(submissions)
    reports = []
    for student in students:
        try:
            report = exercise.check(submissions / student, student=student, full=True,
                                    timeout=timeout, untrusted=True)
        except VpclabError as exc:          # the next student is graded all the same
            report = Report(f"exercise {exercise.number:02d}", student,
                            [CheckResult(c.title, False, "not graded", seen=str(exc))
                             for c in exercise.checks])
        reports.append(report)
        on_student(student, report)
    _write(exercise, out, reports)
    return reports


def _students(submissions: Path) -> list[str]:
    if not submissions.is_dir():
        raise VpclabError(f"{submissions} is not a folder of submissions (one folder per "
                          "student, named by the student's ID)")
    students = sorted(p.name for p in submissions.iterdir() if p.is_dir() and not p.is_symlink())
    bad = [s for s in students if not STUDENT_ID.fullmatch(s) or s == "report.csv"]
    if bad:
        check_student_id(bad[0])        # raises, naming the rule
        raise VpclabError(f"{submissions / bad[0]}: 'report.csv' is the report's own name")
    if not students:
        raise VpclabError(f"{submissions} holds no student folders")
    return students


def _write(exercise: Exercise, out: Path, reports: list[Report]) -> None:
    titles = [result.title for result in reports[0].results] if reports else []
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(["student", "score", "total", *titles])
    for report in reports:
        writer.writerow([report.student, report.passed, len(report.results),
                         *("pass" if r.passed else "fail" for r in report.results)])
    output = OutputDir(out)
    output.expect(["report.csv"])
    try:
        output.make()
        (out / "report.csv").write_text(table.getvalue())
        for report in reports:
            folder = OutputDir(out / report.student)
            folder.expect(["feedback.md"])
            try:
                folder.make()
                (out / report.student / "feedback.md").write_text(feedback(exercise, report))
            finally:
                folder.give_back()
    finally:
        output.give_back()


def feedback(exercise: Exercise, report: Report) -> str:
    """What a student reads: the score, then each check with what was expected and seen.
    A hidden check is the teacher's: the student reads only that one passed or failed (its
    title and evidence are in report.csv and the teacher's own view), so it stays a test of
    what the student understood, not of what the feedback told them."""
    lines = [f"# Exercise {exercise.number:02d}: {exercise.title}", "",
             f"Student {report.student}: **{report.score()}**.", ""]
    teachers = 0
    for result in report.results:
        verdict = "PASS" if result.passed else "**FAIL**"
        if result.hidden:
            teachers += 1
            lines.append(f"- {verdict}: your teacher's check {teachers} (not shown: ask your "
                         "teacher)")
            continue
        lines.append(f"- {verdict}: {result.title}")
        if not result.passed:
            lines.append(f"  - {result.summary}")
            for label in ("expected", "seen", "hint"):
                if getattr(result, label):
                    lines.append(f"  - {label}: {getattr(result, label)}")
            if result.evidence:
                lines += ["", "  ```", *("  " + row for row in result.evidence.splitlines()),
                          "  ```"]
    return "\n".join(lines) + "\n"
