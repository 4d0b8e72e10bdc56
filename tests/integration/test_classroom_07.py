"""Exercise 07 on real labs: each injected fault is diagnosable with the tools a learner has
(a capture of one failing ping, `vpclab stats`, `vpclab mapping list`), the checks' survey
finds it on its router and nowhere else (and nothing in a fault-free lab), the mapping
service leaves it in place, and the checks pass the right diagnosis and fail a wrong fault,
the right fault on the wrong router, and evidence the lab does not show, each with its
hint. End to end: the starter fails pointing at its TODOs, a student's answer passes only
with that student's ID, `vpclab lab start 7` brings up the faulty lab, nothing is left."""
from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.labtools import VPCLAB, dump_flows
from vpclab import Lab
from vpclab.classroom.checks import CheckContext, run_checks
from vpclab.classroom.exercises import exercise
from vpclab.model.names import unique_name
from vpclab.running.state import list_labs
from vpclab.running.wait import wait_until

EX = exercise(7)
M = EX.module
RIGHT_FAULT, RIGHT_ROUTER, RIGHT_EVIDENCE = (c.title for c in EX.checks)
FAULT_FLOWS = M.FAULT_COOKIE_TEXT

# (fault, student): the student's router and values, that fault forced (routers differ)
CASES = [("stale-entry", None), ("wrong-vni", "frank"), ("arp-flood", "dave"),
         ("wrong-arp-mac", "erin")]


OURS = re.compile(r"t[0-9a-f]{4}-(t07|c07|i07)\b.*|ex07")   # unique_name's and `lab start 7`'s


def no_lab_left(before: set[str], wait: float = 60.0) -> bool:
    """Every lab of this exercise's tests that appeared since `before` is gone, or goes
    within `wait` s (other sessions' labs come and go as they please meanwhile)."""
    def ours() -> set[str]:
        return {name for name in list_labs() if OURS.fullmatch(name)}
    appeared = ours() - before
    deadline = time.monotonic() + wait
    while appeared and time.monotonic() < deadline:
        time.sleep(0.5)
        appeared &= ours()
    return not appeared


def write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def judged(tmp_path: Path, name: str, text: str, variant, seen) -> dict[str, tuple[bool, str]]:
    """The exercise's checks on `text`, graded against the survey `seen` of a real lab."""
    work = write(tmp_path / name, {"diagnosis.txt": text})
    ctx = CheckContext(work, variant, "i07")
    ctx.once("survey", lambda: seen)
    report = run_checks(EX.checks, ctx, "07")
    return {r.title: (r.passed, f"{r.summary} | {r.expected} | {r.seen} | {r.hint}")
            for r in report.results}


def symptom_with_the_tools(lab: Lab, fault, tmp_path: Path) -> None:
    """What a learner sees: one failing ping captured at both ends, the VMs beside the
    sender and the sender's host NIC; `vpclab stats`; `vpclab mapping list`."""
    nodes = lab.nodes()
    target = nodes[fault.target]
    asker = M._vm_on(lab, fault.router, target["vpc"])
    beside = [vm for vm in lab.vms if nodes[vm]["host"] == fault.router and vm != asker]
    nic = f"{fault.router}:eth0"
    with lab.capture([asker, fault.target, *beside, nic], tmp_path / "tools",
                     filter="arp or icmp or udp port 6081") as cap:
        done = lab.exec(asker, "ping", "-c", "1", "-W", "1", target["ip"])
    seen = cap.lines()
    stats = lab.stats()["routers"][fault.router]
    truth = {m["ip"]: m for m in lab.mappings()}[target["ip"]]
    assert not done.ok, f"{asker} -> {fault.target} passed despite {fault}"
    text = "\n".join(seen[nic])
    if fault.kind == "stale-entry":
        old_ip = nodes[fault.old_host]["underlay_ip"]
        assert truth["host"] == fault.new_host and truth["host_ip"] != old_ip
        assert f"> {old_ip}.6081: [no cksum] Geneve" in text, text
        assert stats["invalidations"] >= 1           # the router had the entry, and lost it
        assert not seen[fault.target]
    elif fault.kind == "wrong-vni":
        assert f"vni {fault.wrong_vni:#x}," in text and f"vni {truth['vni']:#x}," not in text, text
        assert not seen[fault.target]
    elif fault.kind == "arp-flood":
        request = f"Request who-has {target['ip']} tell {nodes[asker]['ip']}"
        for vm in beside:                             # every VM on that router, whatever VPC
            assert any(request in line for line in seen[vm]), (vm, seen[vm])
        assert not any("Reply" in line for line in seen[asker])
        assert stats["misses"] == 0                   # the router never asked the service
    else:
        assert any(f"is-at {fault.wrong_mac}" in line for line in seen[asker]), seen[asker]
        assert truth["mac"] != fault.wrong_mac
        asked = stats["misses"]                       # the ping, to a MAC nobody has: asked
        assert asked >= 1
        lab.exec(asker, "ping", "-c", "1", "-W", "1", target["ip"])
        wait_until(lambda: lab.stats()["routers"][fault.router]["misses"] > asked,
                   "the second ping's miss (the router asks again every time)")
        assert not seen[fault.target]


@pytest.mark.parametrize("kind, student", CASES)
def test_07_each_fault_shows_with_the_tools_and_only_its_diagnosis_passes(kind, student,
                                                                         tmp_path):
    before = set(list_labs())
    variant = EX.variant(student)
    with Lab(M.topology(variant), name=unique_name(f"t07-{kind}")) as lab:
        fault = M.prepare(lab, variant, kind)
        symptom_with_the_tools(lab, fault, tmp_path)
        for vm in lab.vms:                            # as fresh as the checks' own lab
            lab.exec(vm, "ip", "neigh", "flush", "all", check=True)
        seen = M.survey(lab, tmp_path / "survey")
        assert seen.faulty() == {fault.router: [kind]}, seen.lines
        for host in lab.hosts:                        # still there, on that router only
            assert (FAULT_FLOWS in dump_flows(lab, host)) == (host == fault.router)
        assert M.in_place(lab, fault)
        M.ofctl(lab, fault.router, "del-flows", f"cookie={M.FAULT_COOKIE:#x}/-1")
        assert not M.in_place(lab, fault)            # what a resynchronised router looks like

    right = M.solution(variant, kind)["diagnosis.txt"]
    got = judged(tmp_path, "right", right, variant, seen)
    assert all(passed for passed, _ in got.values()), got

    other = next(k for k in M.FAULTS if k != kind)
    got = judged(tmp_path, "fault", right.replace(f"fault: {kind}", f"fault: {other}"),
                 variant, seen)
    passed, why = got[RIGHT_FAULT]
    assert not passed and f"no {other} in your lab" in why and "would show as" in why
    assert got[RIGHT_ROUTER][0] and not got[RIGHT_EVIDENCE][0]

    elsewhere = next(h for h in M.HOSTS if h != fault.router)
    got = judged(tmp_path, "router", right.replace(f"router: {fault.router}",
                                                   f"router: {elsewhere}"), variant, seen)
    passed, why = got[RIGHT_ROUTER]
    assert not passed and f"{elsewhere}'s router does its job" in why
    assert fault.router not in why                    # the hint does not give it away
    assert got[RIGHT_FAULT][0]

    vms = M.topology(variant)["vms"]
    lie = {"stale-entry": "tunnels to 192.0.2.77", "wrong-vni": "vni 4242",
           "arp-flood": "seen at " + next(vm for vm in vms if vms[vm]["host"] != fault.router),
           "wrong-arp-mac": "is-at 02:00:00:00:00:77"}[kind]     # a VM of another router: nothing
    text = right.split("evidence:")[0] + f"evidence: {lie}\n"
    passed, why = judged(tmp_path, "evidence", text, variant, seen)[RIGHT_EVIDENCE]
    assert not passed and "in your lab" in why and "copy the value" in why
    assert no_lab_left(before)


def test_07_a_fault_free_lab_shows_no_fault(tmp_path):
    before = set(list_labs())
    with Lab(M.topology(EX.variant("alice")), name=unique_name("t07-clean")) as lab:
        seen = M.survey(lab, tmp_path / "survey")
    assert seen.faulty() == {}, seen.lines
    assert all(seen.pings.values())
    assert no_lab_left(before)


def test_07_solution_passes_and_the_starter_fails_pointing_at_its_todos():
    before = set(list_labs())
    assert EX.check(EX.folder / "solution", full=True).all_passed
    starter = EX.check(EX.folder / "starter")
    assert starter.passed == 0
    lines = {RIGHT_FAULT: "line 14: fault", RIGHT_ROUTER: "line 15: router",
             RIGHT_EVIDENCE: "line 16: evidence"}
    for result in starter.results:
        assert f"{lines[result.title]} is still TODO" in result.summary, result.summary
    assert no_lab_left(before)


def test_07_a_student_s_answer_passes_only_with_that_student_s_id(tmp_path):
    before = set(list_labs())
    alice, erin = (write(tmp_path / s, M.solution(EX.variant(s))) for s in ("alice", "erin"))
    assert (M.plan(EX.variant("alice")).kind, M.plan(EX.variant("alice")).router) != \
        (M.plan(EX.variant("erin")).kind, M.plan(EX.variant("erin")).router)
    assert EX.check(alice, student="alice").all_passed
    assert EX.check(erin, student="erin").all_passed
    assert EX.check(alice, student="erin").passed == 0
    assert not EX.check(erin, student="alice").all_passed
    assert not EX.check(EX.folder / "solution", student="alice").all_passed
    assert no_lab_left(before)


def test_07_lab_start_brings_up_the_student_s_faulty_lab(tmp_path):
    before = set(list_labs())
    fault = M.plan(EX.variant("erin"))
    started = subprocess.run(VPCLAB + ["lab", "start", "7", "--student", "erin"],
                             capture_output=True, text=True, cwd=tmp_path, timeout=300)
    try:
        assert started.returncode == 0, started.stderr
        assert "lab 'ex07' is running (student erin)" in started.stdout
        assert "wrong-vni, arp-flood" in started.stdout          # the briefing names them
        lab = Lab.attach("ex07")
        for host in lab.hosts:
            assert (FAULT_FLOWS in dump_flows(lab, host)) == (host == fault.router)
        assert (tmp_path / "work" / "07-troubleshoot" / "diagnosis.txt").is_file()
    finally:
        subprocess.run(VPCLAB + ["down", "ex07"], capture_output=True, cwd=tmp_path, timeout=120)
    assert no_lab_left(before)
