"""Exercise 07 without a lab: the answer file's forgiving syntax and its errors (each naming
its line), the per-student fault (different IDs, different faults and routers; every kind
and every router reachable; fixed without an ID), valid per-student labs, what a piece of
evidence cites, and the checks' verdicts on a given survey (right, wrong fault, wrong
router, evidence that does not hold, every value listed)."""
from __future__ import annotations

import pytest

from vpclab.classroom import Failed
from vpclab.classroom.checks import CheckContext, run_checks
from vpclab.classroom.exercises import exercise
from vpclab.lab import Lab

EX = exercise(7)
M = EX.module
IDS = [f"student{n}" for n in range(12)]


def variant(student=None):
    return EX.variant(student)


# -- the answer file ------------------------------------------------------------------------

def test_the_answer_file_is_forgiving():
    diag = M.parse("# mine\n\n  Fault = Wrong_VNI \nROUTER: host2's router  # the one\n"
                   "evidence: vni 0x3f2 on host2:eth0\n   and nothing at ZIGI-VM1\n"
                   "Evidence: twice\n")
    assert diag.get("fault") == "wrong-vni" and diag.get("router") == "host2"
    assert diag.get("evidence") == "vni 0x3f2 on host2:eth0\nand nothing at ZIGI-VM1\ntwice"
    assert M.parse("fault: `arp flood`.\nrouter: host3\nevidence: x\n").get("fault") == "arp-flood"


@pytest.mark.parametrize("text, key, said", [
    ("fault: TODO\nrouter: host1\nevidence: x\n", "fault", "line 1: fault is still TODO"),
    ("fault: arp-flood\nrouter: TODO\nevidence: x\n", "router", "line 2: router is still TODO"),
    ("fault: arp-flood\nrouter: host1\nevidence:\n", "evidence", "line 3: evidence is still TODO"),
    ("fault: broken-cable\nrouter: host1\nevidence: x\n", "fault",
     "line 1: 'broken-cable' is not a fault of this exercise"),
    ("fault: arp-flood\nrouter: host1 or host2\nevidence: x\n", "router", "names 2 routers"),
    ("fault: arp-flood\nrouter: the third one\nevidence: x\n", "router", "names no router"),
    ("fault: arp-flood\nevidence: x\n", "router", "has no `router:` line"),
])
def test_each_field_s_problem_names_its_own_line(text, key, said):
    diag = M.parse(text)
    with pytest.raises(Failed) as failed:
        diag.get(key)
    assert said in failed.value.summary
    for other in {"fault", "router", "evidence"} - {key}:
        diag.get(other)                   # the other fields are still read


@pytest.mark.parametrize("text, said", [
    ("fault: arp-flood\nthe router is host1\n", "line 2: it is not `key: value`"),
    ("fault: arp-flood\nroute: host1\n", "line 2: `route` is not a key"),
    ("fault: arp-flood\nfault: wrong-vni\n", "line 2: a second `fault:` (line 1 has one)"),
])
def test_a_line_that_is_no_field_fails_naming_it(text, said):
    with pytest.raises(Failed) as failed:
        M.parse(text)
    assert said in failed.value.summary


def test_the_starter_and_the_solution_files_parse_as_they_should():
    starter = M.parse((EX.folder / "starter" / "diagnosis.txt").read_text())
    for key in ("fault", "router", "evidence"):
        with pytest.raises(Failed, match="still TODO"):
            starter.get(key)
    solution = M.parse((EX.folder / "solution" / "diagnosis.txt").read_text())
    fault = M.plan(variant())
    assert (solution.get("fault"), solution.get("router")) == (fault.kind, fault.router)
    assert (EX.folder / "solution" / "diagnosis.txt").read_text() == \
        M.solution(variant())["diagnosis.txt"]
    for name in M.FAULTS:                       # the starter lists every fault by name
        assert name in (EX.folder / "starter" / "diagnosis.txt").read_text()
        assert f"`{name}`" in (EX.folder / "README.md").read_text()


# -- per-student faults ---------------------------------------------------------------------

def test_different_students_get_different_faults_and_routers():
    plans = [M.plan(variant(s)) for s in IDS]
    assert len({p.kind for p in plans}) >= 3
    assert len({p.router for p in plans}) >= 2
    answers = [M.solution(variant(s))["diagnosis.txt"] for s in IDS]
    assert len(set(answers)) == len(answers)                 # nobody's answer is another's
    assert M.plan(variant("student0")) == M.plan(variant("student0"))     # deterministic


def test_every_kind_and_every_router_is_reachable():
    plans = [M.plan(variant(f"s{n}")) for n in range(60)]
    assert {p.kind for p in plans} == set(M.FAULTS)
    assert {p.router for p in plans} == set(M.HOSTS)
    assert {(p.kind, p.router) for p in plans} >= {(k, "host1") for k in M.FAULTS}


def test_without_a_student_the_values_are_fixed():
    assert M.topology(variant()) == M.topology(variant())
    fault = M.plan(variant())
    assert (fault.kind, fault.router, fault.target) == ("stale-entry", "host3", "ZIGI-VM2")
    assert M.topology(variant())["vms"]["ZIGI-VM2"]["ip"] == "10.0.0.185"


@pytest.mark.parametrize("student", [None] + IDS)
def test_every_variant_is_a_valid_lab_with_a_fault_that_can_show(student):
    topo = M.topology(variant(student))
    Lab(topo)                                           # validated like a topology file
    vms = topo["vms"]
    for host in M.HOSTS:
        here = [vm for vm in vms.values() if vm["host"] == host]
        assert len(here) == 2 and any(vm["vpc"] == M.VPC1 for vm in here)
    assert len({vm["ip"] for vm in vms.values()}) == len(vms)
    assert len({vm["mac"] for vm in vms.values()}) == len(vms)
    for kind in M.FAULTS:
        fault = M.plan(variant(student), kind)
        assert fault.kind == kind and vms[fault.target]["host"] != fault.router
        assert fault.wrong_vni not in {vpc["vni"] for vpc in topo["vpcs"].values()} or \
            kind == "stale-entry"
        assert fault.wrong_mac not in {vm["mac"] for vm in vms.values()} or kind == "stale-entry"
        if kind == "stale-entry":
            assert fault.old_host == vms[fault.target]["host"]
            assert len({fault.old_host, fault.new_host, fault.router}) == 3


# -- what evidence cites ------------------------------------------------------------------

def survey(kind: str = "wrong-vni", router: str = "host2", values=("1010",)) -> "M.Survey":
    facts = {k: {h: set() for h in M.HOSTS} for k in M.FAULTS}
    facts[kind][router] = set(values)
    lines = {k: {h: [] for h in M.HOSTS} for k in M.FAULTS}
    return M.Survey(facts, lines, {"host1": "192.168.100.1", "host2": "192.168.100.2",
                                   "host3": "192.168.100.3"},
                    [f"ZIGI-VM{n}" for n in range(1, 7)])


def test_evidence_cites_numbers_ips_macs_and_vms_apart():
    s = survey()
    text = ("ZIGI-VM3 on host3 sent vni 0x3f2 (1010 too) from 192.168.100.3 > 10.0.0.185, "
            "reply 10.0.0.185 is-at 02:93:0E-03-bb-89, ZIGI-VM4 saw it")
    assert M.cited("wrong-vni", text, s) == {"1010"}
    assert M.cited("stale-entry", text, s) == {"192.168.100.3", "10.0.0.185"}
    assert M.cited("wrong-arp-mac", text, s) == {"02:93:0e:03:bb:89"}
    assert M.cited("arp-flood", text, s) == {"ZIGI-VM3", "ZIGI-VM4"}
    pasted = ("192.168.100.3.33306 > 192.168.100.2.6081: [no cksum] Geneve, Flags [C], "
              "vni 0x3f2, options [class Experimental (0xffff) type 0x80(C) len 12]")
    assert M.cited("stale-entry", pasted, s) == {"192.168.100.3", "192.168.100.2"}
    assert "1010" in M.cited("wrong-vni", pasted, s)


# -- the verdicts on a survey (the checks as `vpclab lab check` runs them) -------------------
RIGHT_FAULT, RIGHT_ROUTER, RIGHT_EVIDENCE = (c.title for c in EX.checks)


def judged(tmp_path, text: str, seen) -> dict[str, tuple[bool, str]]:
    (tmp_path / "diagnosis.txt").write_text(text)
    ctx = CheckContext(tmp_path, variant(), "u07")
    ctx.once("survey", lambda: seen)                     # the survey a lab would have made
    report = run_checks(EX.checks, ctx, "07")
    return {r.title: (r.passed, f"{r.summary} | {r.expected} | {r.seen} | {r.hint}")
            for r in report.results}


def test_a_right_diagnosis_passes_and_each_wrong_part_fails_on_its_own(tmp_path):
    seen = survey("wrong-vni", "host2", {"1010"})
    right = judged(tmp_path, "fault: wrong-vni\nrouter: host2\nevidence: vni 1010\n", seen)
    assert all(passed for passed, _ in right.values()), right
    wrong_fault = judged(tmp_path, "fault: stale-entry\nrouter: host2\nevidence: 1.2.3.4\n", seen)
    passed, why = wrong_fault[RIGHT_FAULT]
    assert not passed and "no stale-entry in your lab" in why and "would show as" in why
    assert wrong_fault[RIGHT_ROUTER][0]
    assert "no stale-entry" in wrong_fault[RIGHT_EVIDENCE][1]
    wrong_router = judged(tmp_path, "fault: wrong-vni\nrouter: host1\nevidence: vni 1010\n", seen)
    assert wrong_router[RIGHT_FAULT][0] and wrong_router[RIGHT_EVIDENCE][0]
    passed, why = wrong_router[RIGHT_ROUTER]
    assert not passed and "host1's router does its job" in why and "host2" not in why
    made_up = judged(tmp_path, "fault: wrong-vni\nrouter: host2\nevidence: vni 0x3f3\n", seen)
    passed, why = made_up[RIGHT_EVIDENCE]
    assert not passed and "1011 is not the wrong VNI seen on the wire" in why and "1010" not in why
    vague = judged(tmp_path, "fault: wrong-vni\nrouter: host2\nevidence: the VNI is wrong\n", seen)
    assert "cites no value (it should cite the wrong VNI seen on the wire)" in \
        vague[RIGHT_EVIDENCE][1]


def test_evidence_that_lists_every_possible_value_fails(tmp_path):
    seen = survey("stale-entry", "host3", {"192.168.100.2"})
    every = "evidence: 192.168.100.1 192.168.100.2 192.168.100.3\n"
    passed, why = judged(tmp_path, "fault: stale-entry\nrouter: host3\n" + every,
                         seen)[RIGHT_EVIDENCE]
    assert not passed and "every possible value" in why
    one = "evidence: host3 tunnels ZIGI-VM2's packets to 192.168.100.2\n"
    assert judged(tmp_path, "fault: stale-entry\nrouter: host3\n" + one, seen)[RIGHT_EVIDENCE][0]
