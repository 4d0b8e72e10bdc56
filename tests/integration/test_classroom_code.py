"""Exercise 02 on real labs: the learner's answer_arp runs unprivileged in place of the
mapping service's own; the solution passes, the starter passes nothing and points at its
TODOs, and typical wrong answers (flooding, flooding only the unknown, the wrong VPC's MAC,
a dict by IP, caching everywhere, never caching, a made-up MAC, a crash, a hang) each fail
with the right hint and what the code printed, leaving nothing behind."""
from pathlib import Path

from vpclab.classroom.exercises import exercise
from vpclab.running.state import list_labs

SOLUTION = (Path(__file__).resolve().parents[2] / "labs" / "02-arp-responder" / "solution"
            / "arp_responder.py").read_text()


def submit(tmp_path: Path, source: str) -> Path:
    folder = tmp_path / "work"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "arp_responder.py").write_text(source)
    return folder


def no_lab_left(before: set[str], wait: float = 60.0) -> bool:
    """Every lab that appeared since `before` is gone, or goes within `wait` s: other
    sessions' checks may be bringing up and removing labs of their own meanwhile, but a
    lab these checks leave behind stays."""
    import time
    appeared = set(list_labs()) - before
    deadline = time.monotonic() + wait
    while appeared and time.monotonic() < deadline:
        time.sleep(0.5)
        appeared &= set(list_labs())
    return not appeared


def no_learner_process_left(wait: float = 60.0) -> bool:
    """No learner process (sandbox_child.py) runs, or those that do end within `wait` s
    (other sessions' tests may run some of their own)."""
    import subprocess
    import time

    def running() -> set[str]:
        return set(subprocess.run(["pgrep", "-f", "sandbox_child.py"], capture_output=True,
                                  text=True).stdout.split())
    left = running()
    deadline = time.monotonic() + wait
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        left &= running()
    return not left


def results(report) -> dict[str, tuple[bool, str]]:
    return {r.title: (r.passed, f"{r.summary} | {r.expected} | {r.seen} | {r.hint} | {r.evidence}")
            for r in report.results}


SEED_ORDER = "the first ping has the seed's order at both VMs"
SILENT = "an address no VM has gets no answer at all"
RIGHT_VPC = "an address two VPCs share is answered with the asking VPC's MAC"
NOT_FLOODED = "nothing is flooded: VMs beside the asker see no ARP request"
CACHED = "the entry is cached on the asking router only"

FIND = ('    found = next((m for m in mappings\n'
        '                  if m["vpc"] == miss["vpc"] and m["ip"] == request.dst_ip), None)\n')
NOTHING = "        return None                         # nobody has it in this VPC: say nothing\n"
CACHE = ',\n            "cache": [{"router": miss["router"], "vpc": miss["vpc"], "ip": found["ip"]}]}'
assert FIND in SOLUTION and NOTHING in SOLUTION and CACHE in SOLUTION


def test_02_solution_passes_and_starter_passes_nothing_pointing_at_its_todos(tmp_path):
    before = set(list_labs())
    ex = exercise(2)
    report = ex.check(ex.folder / "solution", full=True)
    assert report.all_passed, str(report)
    assert report.seconds < 30, str(report)
    # s13: ZIGI-VM1's 10.119.31.14 is a prefix of ZIGI-VM2's 10.119.31.146
    assert ex.check(ex.folder / "solution", student="s13").all_passed
    got = results(ex.check(ex.folder / "starter"))
    assert not any(passed for passed, _ in got.values()), got
    passed, why = got[SEED_ORDER]
    assert "got no reply" in why and "TODO 2 and 3" in why
    for title in (SILENT, NOT_FLOODED):                      # doing nothing earns nothing
        assert "answered no ARP at all" in got[title][1]
    assert no_lab_left(before)


def test_02_the_flood_matcher_takes_the_whole_address():
    asked_by = exercise(2).module.asked_by
    line = ("10:00:01.000001 ARP, Request who-has 10.119.31.14 tell 10.119.31.146, length 28")
    assert asked_by(line, "10.119.31.146") and not asked_by(line, "10.119.31.14")
    arping = ("10:00:01.000001 ARP, Request who-has 10.119.31.146 (ff:ff:ff:ff:ff:ff) tell "
              "10.119.31.14, length 28")
    assert asked_by(arping, "10.119.31.14") and not asked_by(arping, "10.119.31.1")
    assert not asked_by("10:00:01.000001 ARP, Reply 10.119.31.14 is-at 02:00:00:00:00:01, "
                        "length 28", "10.119.31.14")


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


def test_02_a_dict_by_address_fails_whichever_vpc_comes_last(tmp_path):
    by_ip = SOLUTION.replace(FIND, '    by_ip = {m["ip"]: m for m in mappings}\n'
                                   '    found = by_ip.get(request.dst_ip)\n')
    assert by_ip != SOLUTION
    passed, why = results(exercise(2).check(submit(tmp_path, by_ip)))[RIGHT_VPC]
    assert not passed and "was given the wrong MAC" in why and "the VPC decides" in why


def test_02_flooding_only_an_unknown_address_fails(tmp_path):
    flood = SOLUTION.replace(NOTHING, '        return {"send": [{"port": "flood", "frame": miss["frame"]}]}\n')
    assert flood != SOLUTION
    got = results(exercise(2).check(submit(tmp_path, flood)))
    passed, why = got[NOT_FLOODED]
    assert not passed and "which no VM has" in why and "never floods" in why
    assert got[SEED_ORDER][0] and got[RIGHT_VPC][0]


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


def test_02_never_caching_fails_and_its_prints_are_shown(tmp_path):
    never = SOLUTION.replace(CACHE, "}").replace(
        "    reply = packet.Packet()\n",
        "    print('answering', request.dst_ip)\n    reply = packet.Packet()\n")
    assert never.count("print(") == 1 and '"cache"' not in never
    report = exercise(2).check(submit(tmp_path, never), full=True)
    got = results(report)
    passed, why = got[CACHED]
    assert not passed and "cached on no router" in why and "host1 only" in why
    assert "what answer_arp printed" in why and "answering" in why
    passed, why = got["a second ARP for the address is answered by the router itself"]
    assert not passed and "went to the mapping service again" in why
    assert got[SEED_ORDER][0] and got[RIGHT_VPC][0]     # a ping works: the service's IP path


def test_02_a_made_up_mac_is_named_from_the_capture_not_called_no_reply(tmp_path):
    made_up = SOLUTION.replace('arp.arp(opcode=arp.ARP_REPLY, src_mac=found["mac"]',
                               'arp.arp(opcode=arp.ARP_REPLY, src_mac="02:00:00:00:00:01"')
    assert made_up != SOLUTION
    passed, why = results(exercise(2).check(submit(tmp_path, made_up)))[SEED_ORDER]
    assert not passed and "got no reply" not in why
    assert "is-at 02:00:00:00:00:01" in why and "ZIGI-VM2's MAC is" in why


def test_02_a_crash_on_one_probe_is_blamed_there_only(tmp_path):
    # crashes for an address nobody has (found is None) and never caches: the unknown
    # probe's traceback must not stand in for the cache check's own verdict
    crash = SOLUTION.replace(NOTHING, "        pass\n").replace(CACHE, "}")
    assert crash.count("return None") == 0
    got = results(exercise(2).check(submit(tmp_path, crash)))
    passed, why = got[SILENT]
    assert not passed and "your answer_arp failed" in why and "TypeError" in why
    passed, why = got[CACHED]
    assert not passed and "cached on no router" in why and "answer_arp failed" not in why
    assert got[SEED_ORDER][0] and got[RIGHT_VPC][0]


def test_02_a_crash_and_a_hang_are_reported_with_the_learner_s_line(tmp_path):
    crash = SOLUTION.replace("    reply = packet.Packet()\n", "    reply = packet.Packet()\n"
                                                               "    print('about to divide')\n"
                                                               "    1 / 0\n")
    passed, why = results(exercise(2).check(submit(tmp_path, crash)))[SEED_ORDER]
    assert not passed and "your answer_arp failed" in why and "ZeroDivisionError" in why
    assert "arp_responder.py" in why and "about to divide" in why
    hang = SOLUTION.replace("    reply = packet.Packet()\n", "    while True:\n        pass\n")
    before = set(list_labs())
    passed, why = results(exercise(2).check(submit(tmp_path / "h", hang)))[SEED_ORDER]
    assert not passed and "did not return" in why
    assert no_lab_left(before)


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
    assert no_lab_left(before)
    assert no_learner_process_left()
