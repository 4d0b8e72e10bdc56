"""The classroom on real labs: each exercise's starter fails with the feedback that points at
the work, its solution passes, typical wrong answers fail with the right hint, a student's
solution passes only with that student's ID, and the CLI's start/check/reset/grade work and
leave nothing behind."""
import csv
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.integration.labtools import REPO, VPCLAB
from vpclab.classroom.exercises import exercise
from vpclab.running.state import list_labs


def write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def results(report) -> dict[str, tuple[bool, str]]:
    return {r.title: (r.passed, f"{r.summary} | {r.hint}") for r in report.results}


def labs_now() -> set[str]:
    return set(list_labs())


# -- 01: predict the first ping -------------------------------------------------------------

def test_01_starter_fails_pointing_at_the_empty_predictions():
    ex = exercise(1)
    report = ex.check(ex.folder / "starter")
    assert report.passed == 0
    for passed, why in results(report).values():
        assert not passed and "is empty" in why


def test_01_solution_passes_and_a_flooded_arp_belief_fails_with_why(tmp_path):
    before = labs_now()
    ex = exercise(1)
    assert ex.check(ex.folder / "solution", full=True).all_passed
    right = ex.module.solution(ex.variant(None))
    vm1 = right["ZIGI-VM1.txt"].splitlines()
    # the classic mistake: ZIGI-VM2 sees ZIGI-VM1's ARP first, as on a switch
    flooded = write(tmp_path / "flooded", {**right, "ZIGI-VM2.txt": "\n".join(vm1) + "\n"})
    got = results(ex.check(flooded))
    assert got["ZIGI-VM1 sees what you predicted"][0]
    passed, why = got["ZIGI-VM2 sees what you predicted"]
    assert not passed and "packet #1 at ZIGI-VM2" in why and "never reached ZIGI-VM2" in why
    # the router answers with the ENI's MAC: a made-up MAC in the ARP reply fails, saying who answers
    wrong_mac = write(tmp_path / "mac", {**right, "ZIGI-VM1.txt": right["ZIGI-VM1.txt"].replace(
        "02:93:0e:03:bb:88", "02:00:00:00:00:01")})
    passed, why = results(ex.check(wrong_mac))["ZIGI-VM1 sees what you predicted"]
    assert not passed and "packet #2" in why and "who answers the ARP" in why
    assert labs_now() == before                   # every check's lab is gone


def test_01_a_student_s_answer_passes_only_with_that_student_s_id(tmp_path):
    ex = exercise(1)
    alice = write(tmp_path / "alice", ex.module.solution(ex.variant("alice")))
    assert ex.check(alice, student="alice").all_passed
    assert ex.check(alice, student="bob").passed == 0
    assert ex.check(ex.folder / "solution", student="alice").passed == 0


# -- 04: overlapping VPCs -------------------------------------------------------------------

def test_04_starter_fails_on_the_second_vpc_and_the_solution_passes():
    ex = exercise(4)
    starter = results(ex.check(ex.folder / "starter"))
    assert starter["topology.yaml is a valid lab"][0]
    passed, why = starter["two VPCs share your CIDR and VM addresses, over at least three hosts"]
    assert not passed and "1 VPC(s) use 10.0.0.0/24; two must" in why
    assert ex.check(ex.folder / "solution", full=True).all_passed


def test_04_wrong_answers_fail_with_the_right_hint(tmp_path):
    ex = exercise(4)
    right = ex.module.solution(ex.variant(None))
    # expecting the twin of the other VPC to see the ping: a leak believed in
    leaky_belief = write(tmp_path / "belief", {**right, "other-vpc.txt": right["own-vpc.txt"]})
    passed, why = results(ex.check(leaky_belief))[
        "the other VPC's VM with the same address stays silent, as your other-vpc.txt says"]
    assert not passed and "expects packets at RED-2" in why and "VNI" in why
    # both VPCs' VMs on two hosts only
    topo = yaml.safe_load(right["topology.yaml"])
    for vm in topo["vms"].values():
        vm["host"] = "host1" if vm["host"] == "host3" else vm["host"]
    two_hosts = write(tmp_path / "hosts", {**right, "topology.yaml": yaml.safe_dump(topo)})
    passed, why = results(ex.check(two_hosts))[
        "two VPCs share your CIDR and VM addresses, over at least three hosts"]
    assert not passed and "on 2 host(s)" in why
    # the other VPC only on a host of its own: no host shares both, the twin is never near
    topo = yaml.safe_load(right["topology.yaml"])
    for name, vm in topo["vms"].items():
        vm["host"] = "host3" if name.startswith("RED") else vm["host"]
    apart = write(tmp_path / "apart", {**right, "topology.yaml": yaml.safe_dump(topo)})
    passed, why = results(ex.check(apart))[
        "two VPCs share your CIDR and VM addresses, over at least three hosts"]
    assert not passed and "no host carries VMs of both BLUE and RED" in why
    # an invalid file: every error with its YAML path
    broken = write(tmp_path / "broken", {**right, "topology.yaml": "name: x\nvms: {A: {vpc: Q}}\n"})
    report = ex.check(broken)
    assert report.passed == 0
    assert "vms.A.vpc" in report.results[0].evidence


def test_04_a_student_s_answer_passes_only_with_that_student_s_id(tmp_path):
    ex = exercise(4)
    alice = write(tmp_path / "alice", ex.module.solution(ex.variant("alice")))
    assert ex.check(alice, student="alice").all_passed
    assert not ex.check(alice, student="bob").all_passed


# -- the CLI ----------------------------------------------------------------------------------

def vpclab(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(VPCLAB + [str(a) for a in args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def test_start_check_reset_as_a_learner_does(tmp_path):
    before = labs_now()
    started = vpclab("lab", "start", 1, cwd=tmp_path)
    try:
        assert started.returncode == 0, started.stderr
        assert "lab 'ex01' is running" in started.stdout and "10.0.0.185" in started.stdout
        work = tmp_path / "work" / "01-first-ping"
        checked = vpclab("lab", "check", 1, cwd=tmp_path)
        assert checked.returncode == 1 and "0 of 2 checks passed" in checked.stdout
        assert "is empty" in checked.stdout and "Traceback" not in checked.stderr
        for name in ("ZIGI-VM1.txt", "ZIGI-VM2.txt"):
            (work / name).write_text((REPO / "labs" / "01-first-ping" / "solution" / name).read_text())
        checked = vpclab("lab", "check", 1, "--json", cwd=tmp_path)
        assert checked.returncode == 0 and json.loads(checked.stdout)["passed"] == 2
        listed = vpclab("lab", "list", cwd=tmp_path)
        assert "2 of 2 passed" in listed.stdout
        again = vpclab("lab", "start", 1, cwd=tmp_path)          # the edits stay
        assert "kept as you left them" in again.stdout
        assert (work / "ZIGI-VM2.txt").read_text().startswith("ICMP echo request")
        reset = vpclab("lab", "reset", 1, cwd=tmp_path)
        assert reset.returncode == 0 and "your files are in" in reset.stdout
        assert (work / "ZIGI-VM2.txt").read_text().startswith("#")
        assert list(work.glob(".backup-*/ZIGI-VM2.txt"))
        assert vpclab("lab", "check", 1, "--work", REPO / "labs" / "01-first-ping" / "solution",
                      cwd=tmp_path).returncode == 0
        assert not (REPO / "labs" / "01-first-ping" / "solution" / ".vpclab-result.json").exists()
        bad = vpclab("lab", "check", 1, "--student", "../x", cwd=tmp_path)
        assert bad.returncode == 2 and "not a valid student ID" in bad.stderr
    finally:
        vpclab("down", "ex01", cwd=tmp_path)
    assert labs_now() == before


def test_grade_a_class(tmp_path):
    ex = exercise(1)
    subs = tmp_path / "submissions"
    write(subs / "alice", ex.module.solution(ex.variant("alice")))       # right
    write(subs / "bob", ex.module.solution(ex.variant("alice")))         # copied from alice
    (subs / "carol").mkdir()                                             # handed in nothing
    before = labs_now()
    done = vpclab("lab", "grade", 1, subs, "-o", tmp_path / "out", "--timeout", 60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = {row["student"]: row for row in csv.DictReader((tmp_path / "out" / "report.csv").open())}
    assert {s: (rows[s]["score"], rows[s]["total"]) for s in rows} == {
        "alice": ("3", "3"), "bob": ("0", "3"), "carol": ("0", "3")}   # with the hidden check
    assert "ZIGI-VM1.txt is missing" in (tmp_path / "out" / "carol" / "feedback.md").read_text()
    assert "**FAIL**" in (tmp_path / "out" / "bob" / "feedback.md").read_text()
    assert labs_now() == before
