"""Exercise 05 on real labs: the learner's on_move runs unprivileged in place of the
mapping service's own invalidation after a move. The solution passes (the seed's values
and a student's); the starter passes nothing and points at its TODOs; typical wrong
answers each fail with the right hint: invalidating every router, never invalidating,
no barrier, the barrier before the invalidate, a crash and a hang; nothing is left behind."""
from pathlib import Path

from tests.integration.test_classroom_code import no_lab_left, no_learner_process_left, results
from vpclab.classroom.exercises import exercise
from vpclab.state import list_labs

SOLUTION = (Path(__file__).resolve().parents[2] / "labs" / "05-cache-invalidation" / "solution"
            / "invalidation.py").read_text()

PINGS = "the pings go on across the move: at most 2 of 10 a second lost"
STALE = "once the move is reported done, no router still tunnels the VM to its old host"
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
    assert "proves nothing" in got[ALONE][1]
    assert "never told to invalidate it" in got[CONFIRMED][1] and "TODO 1 to 3" in got[CONFIRMED][1]
    assert no_lab_left(before)
    assert no_learner_process_left()


def test_05_invalidating_every_router_fails_saying_a_router_that_never_cached_it_has_nothing_to_forget(tmp_path):
    everywhere = SOLUTION.replace(ONLY_CACHING, "")
    assert everywhere != SOLUTION
    got = check(tmp_path, everywhere)
    passed, why = got[ALONE]
    assert not passed and "host2, host3, host4 never cached ZIGI-VM2" in why
    assert "has nothing to forget" in why and "host4: invalidate ZIGI-VPC1 10.0.0.185" in why
    assert got[PINGS][0] and got[STALE][0] and got[CONFIRMED][0]     # it works: it is wasteful


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
    assert "without a barrier nobody knows the router has let go of the old entry" in why
    assert "FLOW_MOD delete" in why and "BARRIER_REQUEST" not in why   # host1's wire, captured
    assert got[PINGS][0] and got[STALE][0] and got[ALONE][0]


def test_05_a_barrier_before_the_invalidate_confirms_nothing_of_it(tmp_path):
    before = SOLUTION.replace(INVALIDATE + BARRIER, BARRIER + INVALIDATE)
    assert before != SOLUTION
    got = check(tmp_path, before)
    passed, why = got[CONFIRMED]
    assert not passed and "only barrier came before its invalidate" in why
    assert "the barrier goes after the invalidate" in why
    wire = why[why.index("OpenFlow connection"):]
    assert wire.index("BARRIER_REQUEST") < wire.index("FLOW_MOD delete") < wire.index("BARRIER_REPLY")
    assert got[PINGS][0] and got[STALE][0] and got[ALONE][0]


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
