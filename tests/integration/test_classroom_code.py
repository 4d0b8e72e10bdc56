"""Exercise 02 on real labs: the learner's answer_arp runs unprivileged in place of the
mapping service's own; the solution passes, the starter fails pointing at its TODOs, and
typical wrong answers (flooding, the wrong VPC's MAC, caching everywhere, a crash, a hang)
each fail with the right hint, leaving nothing behind."""
from pathlib import Path

from vpclab.classroom.exercises import exercise
from vpclab.state import list_labs

SOLUTION = (Path(__file__).resolve().parents[2] / "labs" / "02-arp-responder" / "solution"
            / "arp_responder.py").read_text()


def submit(tmp_path: Path, source: str) -> Path:
    folder = tmp_path / "work"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "arp_responder.py").write_text(source)
    return folder


def results(report) -> dict[str, tuple[bool, str]]:
    return {r.title: (r.passed, f"{r.summary} | {r.expected} | {r.seen} | {r.hint} | {r.evidence}")
            for r in report.results}


SEED_ORDER = "the first ping has the seed's order at both VMs"
SILENT = "an address no VM has gets no answer at all"
RIGHT_VPC = "an address two VPCs share is answered with the asking VPC's MAC"
NOT_FLOODED = "nothing is flooded: VMs beside the asker see no ARP request"
CACHED = "the entry is cached on the asking router only"


def test_02_solution_passes_and_starter_points_at_its_todos(tmp_path):
    before = set(list_labs())
    ex = exercise(2)
    assert ex.check(ex.folder / "solution", full=True).all_passed
    got = results(ex.check(ex.folder / "starter"))
    passed, why = got[SEED_ORDER]
    assert not passed and "got no reply" in why and "TODO 2 and 3" in why
    assert got[SILENT][0] and got[NOT_FLOODED][0]           # saying nothing is right there
    assert set(list_labs()) == before


def test_02_flooding_the_arp_fails_saying_a_vpc_never_floods(tmp_path):
    flood = SOLUTION.replace('return {"send": [{"port": "in_port", "frame": bytes(reply.data)}],',
                             'return {"send": [{"port": "flood", "frame": miss["frame"]}],')
    assert flood != SOLUTION
    got = results(exercise(2).check(submit(tmp_path, flood)))
    passed, why = got[NOT_FLOODED]
    assert not passed and "reached" in why and "never floods" in why
    assert not got[SEED_ORDER][0]


def test_02_the_wrong_vpc_s_mac_fails_saying_the_vpc_decides(tmp_path):
    any_vpc = SOLUTION.replace('if m["vpc"] == miss["vpc"] and m["ip"] == request.dst_ip',
                               'if m["ip"] == request.dst_ip')
    assert any_vpc != SOLUTION
    passed, why = results(exercise(2).check(submit(tmp_path, any_vpc)))[RIGHT_VPC]
    assert not passed and "wrong MAC" in why and "the VPC decides" in why


def test_02_caching_on_every_router_fails_naming_them(tmp_path):
    everywhere = SOLUTION.replace(
        '"cache": [{"router": miss["router"], "vpc": miss["vpc"], "ip": found["ip"]}]}',
        '"cache": [{"router": h, "vpc": miss["vpc"], "ip": found["ip"]} '
        'for h in sorted({m["host"] for m in mappings})]}')
    assert everywhere != SOLUTION
    got = results(exercise(2).check(submit(tmp_path, everywhere)))
    passed, why = got[CACHED]
    assert not passed and "cached on host1, host2, host3" in why and "host1 only" in why
    assert got[SEED_ORDER][0]                # it still works: it is only wasteful


def test_02_a_crash_and_a_hang_are_reported_with_the_learner_s_line(tmp_path):
    crash = SOLUTION.replace("    reply = packet.Packet()\n", "    reply = packet.Packet()\n"
                                                               "    1 / 0\n")
    passed, why = results(exercise(2).check(submit(tmp_path, crash)))[SEED_ORDER]
    assert not passed and "your answer_arp failed" in why and "ZeroDivisionError" in why
    assert "arp_responder.py" in why
    hang = SOLUTION.replace("    reply = packet.Packet()\n", "    while True:\n        pass\n")
    before = set(list_labs())
    passed, why = results(exercise(2).check(submit(tmp_path / "h", hang)))[SEED_ORDER]
    assert not passed and "did not return" in why
    assert set(list_labs()) == before


def test_grading_a_class_with_a_right_a_wrong_a_crashing_and_a_hanging_submission(tmp_path):
    import csv
    import subprocess
    from tests.integration.labtools import VPCLAB
    subs = tmp_path / "subs"
    crash = "raise RuntimeError('my module does not load')\n" + SOLUTION
    hang = SOLUTION.replace("    reply = packet.Packet()\n", "    while True:\n        pass\n")
    flood = SOLUTION.replace('return {"send": [{"port": "in_port", "frame": bytes(reply.data)}],',
                             'return {"send": [{"port": "flood", "frame": miss["frame"]}],')
    for student, source in (("alice", SOLUTION), ("bob", flood), ("carol", crash), ("dave", hang)):
        (subs / student).mkdir(parents=True)
        (subs / student / "arp_responder.py").write_text(source)
    before = set(list_labs())
    done = subprocess.run(VPCLAB + ["lab", "grade", "2", str(subs), "-o", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {r["student"]: r for r in csv.DictReader((tmp_path / "out" / "report.csv").open())}
    assert rows["alice"]["score"] == rows["alice"]["total"] == "6"        # hidden check too
    assert int(rows["bob"]["score"]) < 6 and rows["bob"][NOT_FLOODED] == "fail"
    assert rows["carol"]["score"] == "0" and rows["dave"]["score"] == "0"  # code that never ran
    carol = (tmp_path / "out" / "carol" / "feedback.md").read_text()
    assert "my module does not load" in carol and "arp_responder.py" in carol
    assert "did not return" in (tmp_path / "out" / "dave" / "feedback.md").read_text()
    assert set(list_labs()) == before
    assert subprocess.run(["pgrep", "-f", "sandbox_child.py"], capture_output=True).stdout == b""
