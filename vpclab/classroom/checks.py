"""Checks: plain Python functions on the lab API that grade what the learner made.

An exercise declares its checks with `@check("what it proves")`. A check gets a
`CheckContext` (the learner's work folder, the student's variant, a lab brought up on
demand) and either returns (passed) or raises `Failed` with what was expected, what
was seen, the evidence and a hint: "wrong" is never said without why. A check that
raises anything else, or runs out of time, fails too, saying so: a learner never sees
a traceback of the checker. `hidden=True` checks run only when a teacher grades.
"""
from __future__ import annotations

import functools
import os
import signal
import tempfile
import textwrap
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from vpclab.classroom.variant import Variant
from vpclab.errors import VpclabError
from vpclab.lab import Lab, TopologySource
from vpclab.learner import read_learner_file
from vpclab.model.names import unique_name


class Failed(Exception):
    """A check's verdict that the learner's work is not right yet, and why."""

    def __init__(self, summary: str, *, expected: str = "", seen: str = "", hint: str = "",
                 evidence: str = ""):
        super().__init__(summary)
        self.summary, self.expected, self.seen, self.hint, self.evidence = \
            summary, expected, seen, hint, evidence


@dataclass(frozen=True)
class Check:
    title: str
    run: Callable[["CheckContext"], None]
    hidden: bool = False
    timeout: float = 60.0


def check(title: str, hidden: bool = False, timeout: float = 60.0):
    """Declare a check of an exercise: `@check("ZIGI-VM2 sees what you predicted")`."""
    def declare(function: Callable[["CheckContext"], None]) -> Check:
        return Check(title, function, hidden, timeout)
    return declare


@dataclass
class CheckResult:
    title: str
    passed: bool
    summary: str = ""
    expected: str = ""
    seen: str = ""
    hint: str = ""
    evidence: str = ""
    seconds: float = 0.0
    hidden: bool = False        # a teacher's check: its title and evidence stay with them


@dataclass
class Report:
    exercise: str
    student: str | None
    results: list[CheckResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> int:
        return sum(r.passed for r in self.results)

    @property
    def all_passed(self) -> bool:
        return bool(self.results) and self.passed == len(self.results)

    def score(self) -> str:
        return f"{self.passed} of {len(self.results)} checks passed"

    def to_dict(self) -> dict[str, Any]:
        return {"exercise": self.exercise, "student": self.student, "passed": self.passed,
                "total": len(self.results), "seconds": round(self.seconds, 2),
                "checks": [asdict(r) for r in self.results]}

    def __str__(self) -> str:
        who = f" (student {self.student})" if self.student else ""
        lines = [f"{self.exercise}{who}: {self.score()} in {self.seconds:.1f} s"]
        for result in self.results:
            lines.append(f"  {'PASS' if result.passed else 'FAIL'}  {result.title}")
            if not result.passed:
                lines.append(f"        {result.summary}")
                for label in ("expected", "seen", "evidence", "hint"):
                    text = getattr(result, label)
                    if text:
                        lines += _labelled(label, text)
        return "\n".join(lines)


def _labelled(label: str, text: str) -> list[str]:
    rows = text.rstrip().splitlines() or [""]
    if label == "hint":          # prose: wrapped; evidence and captures keep their columns
        rows = textwrap.wrap(" ".join(rows), 80) or [""]
    return [f"        {label + ':':<10}{rows[0]}"] + [f"{'':18}{row}" for row in rows[1:]]


class CheckContext:
    """What a check works with. Labs it brings up (`ctx.lab(...)`) are shared by the
    checks of one run, keyed by what they were made from, and all removed at its end."""

    def __init__(self, work: Path, variant: Variant, tag: str,
                 learner_user: tuple[int, int] | None = None):
        self.work, self.variant, self.tag = work, variant, tag
        self.learner_user = learner_user       # who runs learner code (None: vpclab.sandbox's choice)
        self._labs: dict[str, Lab] = {}
        self._memo: dict[str, Any] = {}

    @functools.cached_property
    def tmp(self) -> Path:
        """A scratch folder of this run (captures, copies), made when first asked for and
        removed by close()."""
        return Path(tempfile.mkdtemp(prefix="vpclab-check-"))

    def file(self, name: str) -> str:
        """The text of one of the learner's files, read as root must read what a learner
        hands in (no symlink followed, a regular file of theirs: vpclab.learner); a missing
        or unreadable one fails the check, saying so."""
        path = self.work / name
        if not os.path.lexists(path):
            raise Failed(f"{name} is missing from {self.work}",
                         hint=f"`vpclab lab reset` puts the starter files back (your edits "
                              "are kept in a backup)")
        try:
            return read_learner_file(path)
        except VpclabError as exc:
            raise Failed(f"{name} cannot be used", seen=str(exc),
                         hint="hand in plain files of your own, not links") from None

    def copy(self, name: str) -> Path:
        """A copy of one of the learner's files (read as `file` reads it), for the tools that
        take a path: what they read is then never what a link points at."""
        text = self.file(name)
        target = self.tmp / "work" / name
        target.parent.mkdir(exist_ok=True)
        target.write_text(text)
        return target

    def lab(self, topology: TopologySource, key: str = "main", mode: str | None = None,
            learner: dict[str, Path] | None = None) -> Lab:
        """A ready lab of `topology`, brought up once per run (a fresh name each run);
        `learner` runs the learner's files in place of parts of the mapping service."""
        if key not in self._labs:
            self._labs[key] = Lab(topology, name=unique_name(f"{self.tag}-{key}"), mode=mode,
                                  learner=learner, learner_user=self.learner_user).start()
        return self._labs[key]

    def once(self, key: str, compute: Callable[[], Any]) -> Any:
        """`compute()`'s result, computed by the first check that asks (a capture, say)."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def close(self) -> None:
        errors = []
        for lab in self._labs.values():
            try:
                lab.down()
            except Exception as exc:  # noqa: BLE001 - every lab goes; reported after
                errors.append(f"{lab.name}: {exc}")
        self._labs.clear()
        if "tmp" in vars(self):             # made by this run: remove it
            _remove_own_tmp(self.tmp)
            del self.tmp
        if errors:
            raise VpclabError("labs not removed: " + "; ".join(errors))


def _remove_own_tmp(path: Path) -> None:
    """The context's own mkdtemp folder (captures inside it are root's, made by this run)."""
    import shutil
    if path.is_dir() and not path.is_symlink() and path.name.startswith("vpclab-check-"):
        shutil.rmtree(path, ignore_errors=True)


def run_checks(checks: list[Check], ctx: CheckContext, exercise: str,
               full: bool = False, timeout: float | None = None) -> Report:
    """Run each check (the hidden ones only if `full`), each on its own: one that fails,
    crashes or times out does not stop the others. Every lab is removed at the end."""
    report = Report(exercise, ctx.variant.student)
    started = time.monotonic()
    try:
        for item in checks:
            if item.hidden and not full:
                continue
            report.results.append(_run_one(item, ctx, timeout or item.timeout))
    finally:
        ctx.close()
        report.seconds = time.monotonic() - started
    return report


def _run_one(item: Check, ctx: CheckContext, timeout: float) -> CheckResult:
    started = time.monotonic()
    try:
        with _time_limit(timeout):
            item.run(ctx)
        result = CheckResult(item.title, True)
    except Failed as failed:
        result = CheckResult(item.title, False, failed.summary, failed.expected, failed.seen,
                             failed.hint, failed.evidence)
    except CheckTimeout:
        result = CheckResult(item.title, False, f"the check did not finish in {timeout:g} s",
                             hint="the lab or your work was too slow (a busy machine, or code "
                                  "that hangs): try again; if it keeps happening, look for a loop")
    except VpclabError as exc:
        result = CheckResult(item.title, False, "the lab could not do what the check needs",
                             seen=str(exc))
    except Exception as exc:  # noqa: BLE001 - a learner sees a verdict, never a traceback
        result = CheckResult(item.title, False, f"the check itself failed: "
                             f"{type(exc).__name__}: {exc}",
                             hint="this is a fault in the exercise, not in your work: tell "
                                  "your teacher")
    result.seconds = round(time.monotonic() - started, 2)
    result.hidden = item.hidden
    return result


class CheckTimeout(Exception):
    pass


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """SIGALRM in the main thread (where the CLI runs checks); elsewhere, no limit."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise CheckTimeout()
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
