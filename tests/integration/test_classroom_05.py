"""Exercise 05 on real labs: the learner's on_move runs unprivileged in place of the
mapping service's own invalidation after a move. The solution passes (the seed's values
and a student's); the starter passes nothing and points at its TODOs; typical wrong
answers each fail with the right hint: invalidating every router, invalidating everything
a caching router cached, matching the cached entries by IP only (either way), skipping the
host the VM moves to, never invalidating, no barrier, the barrier before the invalidate, a
crash and a hang; nothing is left behind."""
from pathlib import Path

from tests.integration.test_classroom_code import no_lab_left, no_learner_process_left, results
from vpclab.classroom.exercises import exercise
from vpclab.running.state import list_labs

SOLUTION = (Path(__file__).resolve().parents[2] / "labs" / "05-cache-invalidation" / "solution"
            / "invalidation.py").read_text()

PINGS = "the pings go on across the move: at most 2 of 10 a second lost"
STALE = "once the move is reported done, no router still tunnels the VM to its old host"
KEPT = "routers that cached the VM keep their other entries"
ALONE = "routers that never cached the VM are left alone"
CONFIRMED = "the move is reported done only once the router that cached the VM confirmed"

ONLY_CACHING = ('        if entry not in router["cached"]:\n'
                '            continue                    # a router that never cached it has '
                'nothing to forget\n')
INVALIDATE = '        messages.append({"router": host, "message": "invalidate", **entry})\n'
BARRIER = ('        messages.append({"router": host, "message": "barrier"})     '
           '# after the invalidate\n')
assert ONLY_CACHING in SOLUTION and INVALIDATE in SOLUTION and BARRIER in SOLUTION


def submit(tmp_path: Path, source: str) -> Path:
    folder = tmp_path / "work"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "invalidation.py").write_text(source)
    return folder


def check(tmp_path: Path, source: str) -> dict[str, tuple[bool, str]]:
    return results(exercise(5).check(submit(tmp_path, source)))


def test_05_solution_passes_and_starter_passes_nothing_pointing_at_its_todos(tmp_path):
    before = set(list_labs())
    ex = exercise(5)
    report = ex.check(ex.folder / "solution", full=True)
    assert report.all_passed, str(report)
    assert report.seconds < 30, str(report)
    assert ex.check(ex.folder / "solution", student="s05").all_passed   # other hosts' roles
    got = results(ex.check(ex.folder / "starter"))
    assert not any(passed for passed, _ in got.values()), got
    passed, why = got[PINGS]
    assert "were lost across the move" in why and "TODO 1 and 2" in why
    assert "set_field:192.168.100.2->tun_dst" in why          # host1's stale flow, as evidence
    assert "still held ZIGI-VM2's old entry" in got[STALE][1]
    assert "on host1, host3" in got[STALE][1]            # the pinger's and the target's
    assert "proves nothing" in got[KEPT][1] and "proves nothing" in got[ALONE][1]
    assert "never told to invalidate it" in got[CONFIRMED][1] and "TODO 1 to 3" in got[CONFIRMED][1]
    assert no_lab_left(before)
    assert no_learner_process_left()


def test_05_invalidating_every_router_fails_saying_a_router_that_never_cached_it_has_nothing_to_forget(tmp_path):
    everywhere = SOLUTION.replace(ONLY_CACHING, "")
    assert everywhere != SOLUTION
    got = check(tmp_path, everywhere)
    passed, why = got[ALONE]
    assert not passed and "host2, host4 never cached ZIGI-VM2" in why    # host3 did
    assert "has nothing to forget" in why and "host4: invalidate ZIGI-VPC1 10.0.0.185" in why
    assert "another VPC" not in why                      # not taken for an IP-only match
    assert got[PINGS][0] and got[STALE][0] and got[KEPT][0] and got[CONFIRMED][0]   # wasteful


def test_05_invalidating_everything_a_caching_router_cached_fails_saying_it_keeps_what_is_still_true(tmp_path):
    everything = SOLUTION.replace(INVALIDATE, '        messages += [{"router": host, "message": '
                                              '"invalidate", **e} for e in router["cached"]]\n')
    assert everything != SOLUTION
    got = check(tmp_path, everything)
    passed, why = got[KEPT]
    assert not passed and "host1 lost ZIGI-VM3 (ZIGI-VPC1 10.0.0.20)" in why
    assert "OTHER-VM2 (OTHER-VPC 10.0.0.185)" in why     # the twin's entry went too
    assert "a router that cached other VMs keeps what is still true" in why
    assert "set_field:192.168.100.3->tun_dst" in why     # host1's lost flow to ZIGI-VM3, as evidence
    assert "host3: invalidate ZIGI-VPC1 10.0.0.148" in why   # what the code made the service send
    assert got[PINGS][0] and got[STALE][0] and got[ALONE][0] and got[CONFIRMED][0]


def test_05_matching_the_cached_entries_by_ip_only_fails_on_the_twin_in_the_other_vpc(tmp_path):
    by_ip = SOLUTION.replace(ONLY_CACHING, '        if not any(e["ip"] == move["ip"] for e in '
                                           'router["cached"]):\n            continue\n')
    assert by_ip != SOLUTION
    got = check(tmp_path / "routers", by_ip)             # the routers chosen by IP
    passed, why = got[ALONE]
    assert not passed and "host4 never cached ZIGI-VM2, and was sent messages" in why
    assert "host4 cached OTHER-VPC's 10.0.0.185 (OTHER-VM2), not ZIGI-VM2" in why
    assert "the same address in another VPC is another VM" in why
    assert got[PINGS][0] and got[STALE][0] and got[KEPT][0] and got[CONFIRMED][0]
    entries = by_ip.replace(INVALIDATE, '        messages += [{"router": host, "message": '
                                        '"invalidate", **e} for e in router["cached"] '
                                        'if e["ip"] == move["ip"]]\n')
    assert entries != by_ip
    got = check(tmp_path / "entries", entries)           # the entries too
    passed, why = got[KEPT]
    assert not passed and "host1 lost OTHER-VM2 (OTHER-VPC 10.0.0.185)" in why
    assert "an address names a VM only within its VPC" in why
    assert "keeps what is still true" not in why
    assert not got[ALONE][0] and got[PINGS][0] and got[STALE][0] and got[CONFIRMED][0]


def test_05_skipping_the_host_the_vm_moves_to_leaves_its_old_entry_there(tmp_path):
    not_there = SOLUTION.replace(ONLY_CACHING, ONLY_CACHING.replace(
        "if entry not in", 'if host == move["to_host"] or entry not in'))
    assert not_there != SOLUTION
    got = check(tmp_path, not_there)
    passed, why = got[STALE]
    assert not passed and "host3 still held ZIGI-VM2's old entry" in why
    assert "set_field:192.168.100.2->tun_dst" in why
    assert "ZIGI-VM2 now lives on host3 itself: which routers did your on_move tell?" in why
    assert "host1: invalidate ZIGI-VPC1 10.0.0.185, barrier" in why and "host3: invalidate" not in why
    assert got[PINGS][0] and got[KEPT][0] and got[ALONE][0] and got[CONFIRMED][0]


def test_05_never_invalidating_leaves_the_stale_entry_and_loses_the_pings(tmp_path):
    barriers_only = SOLUTION.replace(INVALIDATE, "")
    assert barriers_only != SOLUTION
    got = check(tmp_path, barriers_only)
    passed, why = got[PINGS]
    assert not passed and "were lost" in why and "still tunnels to host2" in why
    passed, why = got[STALE]
    assert not passed and "host1 still held ZIGI-VM2's old entry" in why
    assert "host1: barrier" in why                       # what the code made the service send
    passed, why = got[CONFIRMED]
    assert not passed and "never told to invalidate" in why


def test_05_no_barrier_is_reported_done_while_the_router_is_stopped(tmp_path):
    no_barrier = SOLUTION.replace(BARRIER, "")
    assert no_barrier != SOLUTION
    got = check(tmp_path, no_barrier)
    passed, why = got[CONFIRMED]
    assert not passed and "reported done while host1 was stopped" in why
    assert "with none to wait for, nobody knows whether host1 has let go" in why
    assert "FLOW_MOD delete" in why and "BARRIER_REQUEST" not in why   # host1's wire, captured
    assert got[PINGS][0] and got[STALE][0] and got[KEPT][0] and got[ALONE][0]


def test_05_a_barrier_before_the_invalidate_confirms_nothing_of_it(tmp_path):
    before = SOLUTION.replace(INVALIDATE + BARRIER, BARRIER + INVALIDATE)
    assert before != SOLUTION
    got = check(tmp_path, before)
    passed, why = got[CONFIRMED]
    assert not passed and "only barrier came before its invalidate" in why
    assert "what did host1's barrier confirm?" in why
    wire = why[why.index("OpenFlow connection"):]
    assert wire.index("BARRIER_REQUEST") < wire.index("FLOW_MOD delete") < wire.index("BARRIER_REPLY")
    assert got[PINGS][0] and got[STALE][0] and got[KEPT][0] and got[ALONE][0]


def test_05_a_crash_and_a_hang_are_reported_with_the_learner_s_line(tmp_path):
    crash = SOLUTION.replace("    messages = []\n", "    messages = []\n"
                                                  "    print('moving', move['ip'])\n"
                                                  "    routers['nowhere']\n")
    got = check(tmp_path / "crash", crash)
    passed, why = got[STALE]
    assert not passed and "your on_move failed" in why and "KeyError" in why
    assert "invalidation.py" in why and "moving 10.0.0.185" in why
    hang = SOLUTION.replace("    messages = []\n", "    while True:\n        pass\n")
    before = set(list_labs())
    passed, why = check(tmp_path / "hang", hang)[STALE]
    assert not passed and "did not return" in why
    assert no_lab_left(before)
    assert no_learner_process_left()
