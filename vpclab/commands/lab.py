"""vpclab lab list|start|check|reset|grade: the classroom exercises in labs/."""
import json
import time
from pathlib import Path

from vpclab.classroom import work
from vpclab.classroom.exercises import LABS, all_exercises, exercise
from vpclab.classroom.grading import grade
from vpclab.errors import EXIT_CHECK_FAILED, EXIT_OK, VpclabError
from vpclab.lab import Lab
from vpclab.report import table

NEEDS_ROOT = False          # list and reset need none; start, check and grade ask for it


def add_parser(verbs):
    p = verbs.add_parser(
        "lab", help="classroom exercises: list, start, check, reset, grade",
        description="Exercises graded on your own work in real labs (labs/NN-slug/). "
                    "`start` copies the starter files into your work folder and brings up the "
                    "exercise's lab; `check` grades your files in fresh labs and says, for each "
                    "check, what was expected, what was seen and why.",
        epilog="examples:\n  vpclab lab list\n  vpclab lab start 1\n  vpclab lab check 1\n"
               "  vpclab lab check 1 --work labs/01-first-ping/solution\n"
               "  vpclab lab grade 1 submissions/ -o grades/",
        formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("list", help="the exercises and your last result for each")
    for action, text in (("start", "copy the starter, bring up the exercise's lab"),
                         ("check", "grade your work files"),
                         ("reset", "put the starter back (your files are backed up)")):
        a = sub.add_parser(action, help=text)
        a.add_argument("number", type=int, help="exercise number (vpclab lab list)")
        a.add_argument("--work", type=Path, help="work folder (default: work/NN-slug)")
        if action != "reset":
            a.add_argument("--student", help="your student ID: your own addresses and variant")
        if action == "check":
            a.add_argument("--json", action="store_true", help="machine-readable result")
    g = sub.add_parser("grade", help="grade a folder of submissions (teachers)")
    g.add_argument("number", type=int)
    g.add_argument("submissions", type=Path, help="one folder per student, named by their ID")
    g.add_argument("-o", "--output", type=Path, required=True, help="report folder")
    g.add_argument("--timeout", type=float, help="seconds per check (default: each check's own)")
    return p


def main(args) -> int:
    return {"list": _list, "start": _start, "check": _check, "reset": _reset,
            "grade": _grade}[args.action](args)


def _ensure_root(args) -> None:
    from vpclab.cli import ensure_root
    import sys
    ensure_root(sys.argv[1:])


def _list(args) -> int:
    rows = []
    for ex in all_exercises():
        result = work.last_result(work.default_work(ex))
        last = "not checked yet" if result is None else \
            f"{result['passed']} of {result['total']} passed ({time.strftime('%Y-%m-%d %H:%M', time.localtime(result['at']))})"
        rows.append([str(ex.number), ex.slug, ex.title, last])
    print(table(["N", "EXERCISE", "WHAT YOU DO", "YOUR LAST CHECK"], rows))
    print(f"\nstart one: vpclab lab start N   (each exercise's README is in {LABS}/NN-slug/)")
    return EXIT_OK


def _start(args) -> int:
    ex = exercise(args.number)
    _ensure_root(args)
    folder = args.work or work.default_work(ex)
    if work.in_labs(folder):
        raise VpclabError(f"{folder} is part of the exercise itself (labs/): start makes "
                          "your own work folder (default work/NN-slug)")
    copied, kept = work.copy_starter(ex, folder)
    work.remember_student(folder, args.student)
    variant = ex.variant(args.student)
    name = f"ex{ex.number:02d}"
    Lab.remove(name)                    # the learner's own exploring lab from last time
    learner = {hook: folder / file for hook, file in getattr(ex.module, "LEARNER_HOOKS", {}).items()}
    lab = Lab(ex.topology(variant), name=name, learner=learner or None).start()
    if hasattr(ex.module, "prepare"):   # e.g. 07: the fault to find, injected in the running lab
        ex.module.prepare(lab, variant)
    lab.detach()
    print(f"exercise {ex.number:02d}: {ex.title}\n")
    print(f"your work folder: {folder}/  ({len(copied)} starter file(s) copied"
          + (f", {', '.join(kept)} kept as you left them" if kept else "") + ")")
    print(f"read: {ex.folder / 'README.md'}\n")
    print(f"lab {lab.name!r} is running ({variant.describe()}):")
    rows = [[vm, n.get("vpc", ""), n.get("host", ""), n.get("ip", ""), n.get("mac", "")]
            for vm, n in lab.nodes().items() if n["kind"] == "vm"]
    print(table(["VM", "VPC", "HOST", "IP", "MAC"], rows))
    if hasattr(ex.module, "briefing"):
        print("\n" + ex.module.briefing(variant))
    student = f" --student {args.student}" if args.student else ""
    work_opt = f" --work {folder}" if args.work else ""
    print(f"\nnext: edit {', '.join(ex.work_files)}, then: vpclab lab check {ex.number}{work_opt}")
    if learner:
        print(f"      this lab runs your {', '.join(f.name for f in learner.values())} as it is "
              f"now: `vpclab lab start {ex.number}{student}{work_opt}` again to run your edits")
    print(f"explore: vpclab exec {lab.name} NODE -- CMD   ·   done: vpclab down {lab.name}")
    return EXIT_OK


def _check(args) -> int:
    ex = exercise(args.number)
    _ensure_root(args)
    folder = args.work or work.default_work(ex)
    student = args.student if args.student is not None else work.remembered_student(Path(folder))
    report = ex.check(folder, student=student)
    if not work.in_labs(folder):                            # never write into labs/
        work.save_result(Path(folder), report)
    if args.json:
        print(json.dumps(report.to_dict(), indent=1))
    else:
        print(report)
        if report.all_passed:
            print("\nall checks passed")
    return EXIT_OK if report.all_passed else EXIT_CHECK_FAILED


def _reset(args) -> int:
    ex = exercise(args.number)
    folder = args.work or work.default_work(ex)
    backup = work.reset(ex, folder)
    print(f"{folder}/: the starter files are back" +
          (f"; your files are in {backup}/" if backup else ""))
    return EXIT_OK


def _grade(args) -> int:
    ex = exercise(args.number)
    _ensure_root(args)

    def said(student, report):
        print(f"  {student:<24} {report.score()} ({report.seconds:.1f} s)", flush=True)
    print(f"grading exercise {ex.number:02d} ({ex.slug}), every check, each student's variant:")
    reports = grade(ex, args.submissions, args.output, args.timeout, on_student=said)
    print(f"\nwrote {args.output / 'report.csv'} and {len(reports)} feedback.md")
    return EXIT_OK
