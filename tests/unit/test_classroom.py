"""Classroom logic without a lab: variants, student IDs, running checks (a crash or a hang
is a failed check, never a traceback), hidden checks, reports and the work folder."""
import time
from pathlib import Path

import pytest

from vpclab.classroom import Failed, Variant, check
from vpclab.classroom.checks import CheckContext, run_checks
from vpclab.classroom.exercises import all_exercises, exercise
from vpclab.classroom import work
from vpclab.errors import VpclabError
from vpclab.lab import Lab


def test_a_variant_is_the_same_for_the_same_student_and_differs_between_students():
    alice, bob = Variant.of("01", "alice"), Variant.of("01", "bob")
    assert alice.seed_lab("x") == Variant.of("01", "alice").seed_lab("x")
    assert alice.seed_lab("x")["vms"] != bob.seed_lab("x")["vms"]
    assert alice.seed_lab("x") != Variant.of("02", "alice").seed_lab("x")     # per exercise
    Lab(alice.seed_lab("x"))                     # a valid topology, checked like a file
    seed = Variant.of("01", None).seed_lab("x")  # no student: the seed's own values
    assert seed["vms"]["ZIGI-VM2"] == {"vpc": "ZIGI-VPC1", "host": "host2", "ip": "10.0.0.185",
                                       "mac": "02:93:0e:03:bb:88"}


@pytest.mark.parametrize("student", ["../x", "", "a b", ".hidden", "x" * 65, "é"])
def test_a_student_id_is_checked_like_a_name(student):
    with pytest.raises(VpclabError, match="not a valid student ID"):
        Variant.of("01", student)


def context(tmp_path) -> CheckContext:
    return CheckContext(tmp_path, Variant.of("99", None), "c99")


def test_a_crash_or_a_hang_in_a_check_fails_it_and_the_others_still_run(tmp_path):
    @check("fine")
    def fine(ctx):
        pass

    @check("wrong, with why")
    def wrong(ctx):
        raise Failed("packet #1 differs", expected="A", seen="B", hint="think")

    @check("crashes")
    def crashes(ctx):
        {}["missing"]

    @check("hangs", timeout=0.3)
    def hangs(ctx):
        time.sleep(5)

    @check("for the teacher", hidden=True)
    def hidden(ctx):
        pass

    started = time.monotonic()
    report = run_checks([fine, wrong, crashes, hangs, hidden], context(tmp_path), "ex 99")
    assert time.monotonic() - started < 3
    assert [(r.title, r.passed) for r in report.results] == [
        ("fine", True), ("wrong, with why", False), ("crashes", False), ("hangs", False)]
    assert report.score() == "1 of 4 checks passed" and not report.all_passed
    crash, hang = report.results[2], report.results[3]
    assert "KeyError" in crash.summary and "not in your work" in crash.hint
    assert hang.summary == "the check did not finish in 0.3 s"
    text = str(report)
    assert "FAIL  wrong, with why" in text and "expected: A" in text and "hint:     think" in text
    full = run_checks([fine, hidden], context(tmp_path), "ex 99", full=True)
    assert [r.title for r in full.results] == ["fine", "for the teacher"]


def test_a_student_s_feedback_tells_a_hidden_check_s_verdict_but_not_what_it_checks(tmp_path):
    from vpclab.classroom.grading import feedback

    @check("shown")
    def shown(ctx):
        raise Failed("the shown one failed", hint="a shown hint")

    @check("the teacher's secret probe", hidden=True)
    def secret(ctx):
        raise Failed("the secret probe's evidence", hint="the secret hint")

    report = run_checks([shown, secret], context(tmp_path), "ex 99", full=True)
    report.student = "alice"
    text = feedback(exercise(1), report)
    assert "the shown one failed" in text and "a shown hint" in text
    assert "**FAIL**: your teacher's check 1" in text
    assert "secret" not in text


def test_every_shipped_exercise_declares_what_a_learner_needs():
    exercises = all_exercises()
    assert [e.number for e in exercises] == sorted({e.number for e in exercises})
    for ex in exercises:
        assert (ex.folder / "README.md").is_file() and ex.title and ex.checks
        starter = {p.name for p in (ex.folder / "starter").iterdir()}
        assert starter == set(ex.work_files), ex.name
        assert {p.name for p in (ex.folder / "solution").iterdir()} >= set(ex.work_files)
        if hasattr(ex.module, "solution"):       # the shipped solution is the seed's variant
            for name, text in ex.module.solution(ex.variant(None)).items():
                assert (ex.folder / "solution" / name).read_text() == text, (ex.name, name)
        Lab(ex.topology(ex.variant(None)))
        Lab(ex.topology(ex.variant("alice")))


def test_start_never_overwrites_the_learner_s_edits_and_reset_keeps_a_backup(tmp_path):
    ex = exercise(1)
    folder = tmp_path / "work"
    copied, kept = work.copy_starter(ex, folder)
    assert sorted(copied) == sorted(ex.work_files) and kept == []
    (folder / "ZIGI-VM1.txt").write_text("my prediction\n")
    copied, kept = work.copy_starter(ex, folder)
    assert copied == [] and "ZIGI-VM1.txt" in kept
    assert (folder / "ZIGI-VM1.txt").read_text() == "my prediction\n"
    backup = work.reset(ex, folder)
    assert (backup / "ZIGI-VM1.txt").read_text() == "my prediction\n"
    assert (folder / "ZIGI-VM1.txt").read_text() == (ex.folder / "starter" / "ZIGI-VM1.txt").read_text()


def test_an_unknown_exercise_names_the_ones_there_are():
    with pytest.raises(VpclabError, match=r"there is no exercise 42; exercises: 1, "):
        exercise(42)


def test_a_learner_s_link_is_never_read_through(tmp_path):
    """A prediction linked to a root-only file must not bring its text into the feedback."""
    (tmp_path / "ZIGI-VM1.txt").symlink_to("/etc/passwd")
    ctx = context(tmp_path)
    with pytest.raises(Failed) as failed:
        ctx.file("ZIGI-VM1.txt")
    assert "cannot be used" in failed.value.summary and "root:" not in str(vars(failed.value))
    with pytest.raises(Failed):
        ctx.copy("ZIGI-VM1.txt")
    ctx.close()
    report = exercise(1).check(tmp_path)
    assert "root:x" not in str(report) and "cannot be used" in str(report)


def test_two_resets_in_one_second_keep_both_backups_and_labs_is_never_reset(tmp_path):
    ex = exercise(1)
    folder = tmp_path / "work"
    work.copy_starter(ex, folder)
    (folder / "ZIGI-VM1.txt").write_text("first\n")
    one = work.reset(ex, folder)
    (folder / "ZIGI-VM1.txt").write_text("second\n")
    two = work.reset(ex, folder)
    assert one != two
    assert (one / "ZIGI-VM1.txt").read_text() == "first\n"
    assert (two / "ZIGI-VM1.txt").read_text() == "second\n"
    with pytest.raises(VpclabError, match="part of the exercise itself"):
        work.reset(ex, ex.folder / "solution")
    assert (ex.folder / "solution" / "ZIGI-VM1.txt").exists()


def test_the_student_given_at_start_is_the_one_check_uses(tmp_path):
    work.remember_student(tmp_path, "alice")
    assert work.remembered_student(tmp_path) == "alice"
    work.remember_student(tmp_path, None)
    assert work.remembered_student(tmp_path) is None


def test_grading_runs_learner_code_as_nobody_never_as_the_teacher(tmp_path, monkeypatch):
    import pwd
    from vpclab.classroom import exercises
    seen = []
    monkeypatch.setattr(exercises, "run_checks",
                        lambda checks, ctx, *a, **k: seen.append(ctx.learner_user))
    ex = exercise(2)
    ex.check(tmp_path, untrusted=True)
    ex.check(tmp_path)
    nobody = pwd.getpwnam("nobody")
    assert seen == [(nobody.pw_uid, nobody.pw_gid), None]


def test_a_check_run_leaves_no_scratch_folder(tmp_path):
    unused = context(tmp_path)
    unused.close()
    assert "tmp" not in vars(unused)                  # never asked for: never made
    used = context(tmp_path)
    scratch = used.tmp
    (scratch / "capture.pcap").write_text("x")
    used.close()
    assert not scratch.exists()


def test_a_probe_reads_only_its_own_learner_events_once_its_calls_ended():
    from types import SimpleNamespace
    from vpclab.classroom import learner_events
    log = [{"event": "learner_called", "function": "deliver"},
           {"event": "learner_error", "function": "deliver", "message": "old crash", "output": "x"}]
    lab = SimpleNamespace(state=SimpleNamespace(events=SimpleNamespace(read=lambda: iter(log))))
    start = learner_events.mark(lab)
    log += [{"event": "miss"}, {"event": "learner_called", "function": "encapsulate"}]
    started = time.monotonic()
    assert learner_events.settled(lab, start, timeout=0.2)[-1]["event"] == "learner_called"
    assert time.monotonic() - started >= 0.2                    # it waited for the call to end
    log.append({"event": "learner_answer", "function": "encapsulate", "output": "hi\n"})
    mine = learner_events.settled(lab, start, timeout=5)
    assert learner_events.trouble(mine) is None                  # the earlier crash is not ours
    assert learner_events.trouble(log, "deliver")["message"] == "old crash"
    assert learner_events.printed(mine, labelled=True) == "[encapsulate] hi\n"
    assert learner_events.printed(mine, "deliver") == ""
    assert [e["event"] for e in learner_events.calls(mine)] == ["learner_called", "learner_answer"]
