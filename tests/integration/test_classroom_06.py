"""Exercise 06 on real labs: the learner's check_source runs unprivileged in place of the
mapping service's receive check, graded with VXLAN packets a rogue host forges and honest
ones. The solution passes (seed and student variants), and so does it when each call takes
1.2 s; the starter (accepts everything) passes nothing and points at its TODOs; typical wrong
answers each fail with the right hint: ignoring the outer source, dropping everything,
comparing with the receiving router's own underlay IP, accepting any host of the VPC,
refusing the rogue host outright, trusting a source once seen, ignoring the VNI (a visible
check); a crash, a hang and a non-bool answer are reported as such; nothing is left behind."""
from pathlib import Path

from tests.integration.test_classroom_code import no_lab_left, no_learner_process_left, results
from vpclab.classroom.exercises import exercise
from vpclab.running.state import list_labs

FOLDER = Path(__file__).resolve().parents[2] / "labs" / "06-receive-check"
SOLUTION = (FOLDER / "solution" / "receive_check.py").read_text()

HONEST = "honest packets are delivered: a VM's ping, and the same packet from its own host"
FORGED = "the rogue host's packets claiming ZIGI-VM1 are dropped and counted"
AFTER = "a forged claim is still dropped after the real VM's packets were accepted"
OTHER_VPC = "a claim of another VPC's VM, in this VPC's VNI, is dropped"

FIND = ('    sender = next((m for m in mappings\n'
        '                   if m["vni"] == arrival["vni"] and m["ip"] == arrival["src_ip"]), None)\n')
DECIDE = '    return sender["host_ip"] == arrival["outer_src"]\n'
assert FIND in SOLUTION and DECIDE in SOLUTION


def submit(tmp_path: Path, source: str) -> Path:
    folder = tmp_path / "work"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "receive_check.py").write_text(source)
    return folder


def deciding(tmp_path: Path, decision: str, full: bool = False) -> dict:
    """The checks' results for the solution with its last line replaced by `decision`."""
    source = SOLUTION.replace(DECIDE, decision)
    assert source != SOLUTION
    return results(exercise(6).check(submit(tmp_path, source), full=full))


def test_06_solution_passes_and_starter_passes_nothing_pointing_at_its_todos(tmp_path):
    before = set(list_labs())
    ex = exercise(6)
    report = ex.check(ex.folder / "solution")
    assert report.all_passed, str(report)
    assert len(report.results) == 4                       # every check visible
    assert report.seconds < 30, str(report)
    # another placement: the rogue, the sender and the receiver are other hosts
    assert ex.module.roles(ex.variant("s3")) != ex.module.roles(ex.variant(None))
    assert ex.check(ex.folder / "solution", student="s3", full=True).all_passed
    got = results(ex.check(ex.folder / "starter"))
    assert not any(passed for passed, _ in got.values()), got
    passed, why = got[FORGED]
    assert "ZIGI-VM2 received them" in why and "the TODOs" in why
    assert "-> True (deliver)" in why and "ICMP echo request" in why     # its answers, the capture
    assert "0 before, 0 after" in why                                     # nothing counted
    assert "the TODOs" in got[AFTER][1] and "the TODOs" in got[OTHER_VPC][1]
    assert "proves nothing" in got[HONEST][1] and "the TODOs" in got[HONEST][1]
    assert no_lab_left(before)


def test_06_ignoring_the_outer_source_lets_the_rogue_through(tmp_path):
    got = deciding(tmp_path, "    return True\n")      # in the VPC: enough for it
    passed, why = got[FORGED]
    assert not passed and "ZIGI-VM2 received them" in why
    assert "ZIGI-VM1 lives on host1" in why
    assert "outer source was host3 (192.168.100.3); where does the mapping say ZIGI-VM1 lives?" \
        in why
    assert not got[AFTER][0] and not got[HONEST][0]


def test_06_dropping_everything_fails_the_honest_check_and_earns_nothing(tmp_path):
    got = deciding(tmp_path, "    return False\n")
    passed, why = got[HONEST]
    assert not passed and "check_source dropped its request" in why and "a true claim" in why
    assert "-> False (drop)" in why
    for title in (FORGED, AFTER):
        assert not got[title][0] and "proves nothing" in got[title][1]


def test_06_comparing_with_the_receiving_router_s_own_address_refuses_true_claims(tmp_path):
    got = deciding(tmp_path, '    return sender["host_ip"] == router["underlay_ip"]\n')
    passed, why = got[HONEST]
    assert not passed and "ZIGI-VM1's ping to ZIGI-VM2 got no reply" in why
    assert "its underlay_ip is host2's own" in why and "outer_src 192.168.100.1" in why
    assert not got[FORGED][0] and "proves nothing" in got[FORGED][1]


def test_06_any_host_of_the_vpc_is_not_the_sender_s_host(tmp_path):
    got = deciding(tmp_path, '    return any(m["vni"] == arrival["vni"] and m["host_ip"] == '
                             'arrival["outer_src"] for m in mappings)\n')
    passed, why = got[FORGED]
    assert not passed and "host3 does hold a VM of ZIGI-VPC1 (ZIGI-VM3), just not ZIGI-VM1" in why
    assert not got[AFTER][0]


def test_06_refusing_the_rogue_host_outright_drops_its_own_vm(tmp_path):
    got = deciding(tmp_path, '    return sender["host_ip"] == arrival["outer_src"] != '
                             '"192.168.100.3"\n')
    passed, why = got[HONEST]
    assert not passed and "ZIGI-VM3's ping to ZIGI-VM2 got no reply" in why
    assert "judge each packet's claim" in why
    assert got[FORGED][0] and got[AFTER][0]


def test_06_trusting_a_source_once_seen_fails_after_it_was_verified(tmp_path):
    source = SOLUTION.replace(
        "def check_source(router, arrival, mappings):\n",
        "SEEN = set()\n\n\ndef check_source(router, arrival, mappings):\n"
        "    if arrival['src_ip'] in SEEN:\n        return True\n").replace(
        DECIDE, '    if sender["host_ip"] == arrival["outer_src"]:\n'
                '        SEEN.add(arrival["src_ip"])\n        return True\n    return False\n')
    got = results(exercise(6).check(submit(tmp_path, source)))
    passed, why = got[AFTER]
    assert not passed and "once ZIGI-VM4's own packets had passed" in why
    assert "ZIGI-VM4 from host1" in why and "-> True (deliver)" in why
    assert got[HONEST][0] and got[FORGED][0]


def test_06_ignoring_the_vni_fails_a_visible_check(tmp_path):
    ip_only = SOLUTION.replace('if m["vni"] == arrival["vni"] and m["ip"] == arrival["src_ip"]',
                               'if m["ip"] == arrival["src_ip"] and '
                               'm["host_ip"] == arrival["outer_src"]')
    assert ip_only != SOLUTION
    report = exercise(6).check(submit(tmp_path, ip_only))         # as `vpclab lab check 6`
    got = results(report)
    passed, why = got[OTHER_VPC]
    assert not passed and "OTHER-VM1 does live on host3, but in OTHER-VPC" in why
    assert "which VPC does the packet's VNI name" in why and "the TODOs" not in why
    assert "10.0.0.77 > 10.0.0.185" in why and "-> True (deliver)" in why
    assert not any(r.hidden for r in report.results)
    assert got[HONEST][0] and got[FORGED][0] and got[AFTER][0]


def test_06_a_correct_but_slow_check_passes(tmp_path):
    slow = SOLUTION.replace("def check_source(router, arrival, mappings):\n",
                            "import time\n\n\ndef check_source(router, arrival, mappings):\n"
                            "    time.sleep(1.2)\n")
    assert slow != SOLUTION
    report = exercise(6).check(submit(tmp_path, slow))
    assert report.all_passed, str(report)


def test_06_a_crash_a_hang_and_a_non_bool_are_reported_and_leave_nothing(tmp_path):
    before = set(list_labs())
    crash = deciding(tmp_path / "crash", "    print('checking', arrival['src_ip'])\n"
                                         "    return 1 / 0\n")
    passed, why = crash[HONEST]
    assert not passed and "your check_source failed" in why and "ZeroDivisionError" in why
    assert "receive_check.py" in why and "checking 10.0.0.148" in why
    passed, why = crash[FORGED]
    assert not passed and "fails closed" in why and "ZeroDivisionError" in why
    not_bool = deciding(tmp_path / "yes", '    return "yes"\n')
    passed, why = not_bool[HONEST]
    assert not passed and "not 'yes'" in why and "returns a bool" in why
    hang = deciding(tmp_path / "hang", "    while True:\n        pass\n")
    passed, why = hang[HONEST]
    assert not passed and "did not return" in why and "look for a loop" in why
    assert no_lab_left(before)
    assert no_learner_process_left()
