"""Exercise 03 on real labs: the learner's tunnel (encapsulate, deliver) runs unprivileged in
place of the mapping service's own. The solution passes (the seed's values and students');
the starter passes nothing and points at its TODOs; typical wrong answers each fail with the
right hint, read from the underlay and VM captures: the VNI of the wrong VPC, the sender's
own host as the outer destination, delivery by address only (the twin in the other VPC on
the same host gets the packet), delivery by VNI only (another VM of the VPC gets it), delivery
blind to the VNI (by MAC, or by address and MAC: host1's forged packet in OTHER-VPC's VNI to
ZIGI-VM2's own address and MAC reaches ZIGI-VM2); a crash and a hang are reported with the
learner's line; a correct but slow learner (1.2 s a call) passes; nothing is left behind."""
from pathlib import Path

from tests.integration.test_classroom_code import no_lab_left, no_learner_process_left, results
from vpclab.classroom.exercises import exercise
from vpclab.running.state import list_labs

SOLUTION = (Path(__file__).resolve().parents[2] / "labs" / "03-encapsulation" / "solution"
            / "tunnel.py").read_text()

ENCAPSULATED = ("ZIGI-VM1's ping crosses the underlay in VXLAN: ZIGI-VPC1's VNI, host to host, "
                "the VMs' own packet inside")
DELIVERED = "out of the tunnel, the request goes to ZIGI-VM2 and the reply back to ZIGI-VM1"
OTHER = "OTHER-VM1's ping to OTHER-VM2 (the same addresses) works with OTHER-VPC's VNI"
ISOLATED = "isolation: no VM sees the other VPC's ping, not even its twin on the same host"
VNI = ("deliver reads the VNI: a packet in OTHER-VPC's VNI to ZIGI-VM2's own address and MAC "
       "does not reach ZIGI-VM2")

HEADER = 'return {"vni": destination["vni"], "remote_ip": destination["host_ip"]}'
MATCH = ('        if (vm["vni"] == arrival["vni"] and vm["ip"] == arrival["dst_ip"]\n'
         '                and vm["mac"] == arrival["dst_mac"]):\n')
assert HEADER in SOLUTION and MATCH in SOLUTION


def submit(tmp_path: Path, source: str) -> Path:
    folder = tmp_path / "work"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tunnel.py").write_text(source)
    return folder


def check(tmp_path: Path, source: str, student: str | None = None) -> dict:
    return results(exercise(3).check(submit(tmp_path, source), student=student, full=True))


def test_03_solution_passes_and_starter_passes_nothing_pointing_at_its_todos():
    before = set(list_labs())
    ex = exercise(3)
    report = ex.check(ex.folder / "solution", full=True)
    assert report.all_passed, str(report)
    assert len(report.results) == 5 and VNI in results(report)
    assert report.seconds < 30, str(report)
    for student in ("s1", "s13"):             # hosts swapped, their own VNIs and underlay
        assert ex.check(ex.folder / "solution", student=student).all_passed
    got = results(ex.check(ex.folder / "starter"))
    assert not any(passed for passed, _ in got.values()), got
    passed, why = got[ENCAPSULATED]
    assert "your encapsulate returned None" in why and "TODO 1 and 2" in why
    assert "(no tunnelled packet)" in why                 # the capture, as evidence
    passed, why = got[DELIVERED]
    assert "delivery was not tried" in why and "deliver answered None" in why and "TODO 3" in why
    assert "TODO 1 and 2" in got[OTHER][1] and "proves nothing" in got[ISOLATED][1]
    assert "proves nothing" in got[VNI][1] and "TODO 3" in got[VNI][1]
    assert no_lab_left(before)


def test_03_the_vni_of_the_wrong_vpc_fails_on_the_wire(tmp_path):
    # the VNI of the sending router's first VM: host1 carries both VPCs, ZIGI-VM1 first
    first_vm = SOLUTION.replace(HEADER, HEADER.replace('destination["vni"]',
                                                       'router["ports"][0]["vni"]'))
    assert first_vm != SOLUTION
    got = check(tmp_path, first_vm)
    passed, why = got[OTHER]
    assert not passed and "carried the wrong VNI" in why
    assert "expected vni 1002 (OTHER-VPC's)" not in why and "vni 1002 (OTHER-VPC's)" in why
    assert "vni 1001 (ZIGI-VPC1's)" in why and "VXLAN 192.168.100.1 > 192.168.100.2" in why
    passed, why = got[ISOLATED]
    assert not passed and "travelled as a packet of ZIGI-VPC1" in why
    assert got[ENCAPSULATED][0] and got[DELIVERED][0]       # right by luck for ZIGI-VPC1


def test_03_a_copied_vni_fails_for_another_student(tmp_path):
    seeds = SOLUTION.replace(HEADER, HEADER.replace('destination["vni"]', "1001"))
    got = check(tmp_path, seeds, student="s1")
    passed, why = got[ENCAPSULATED]
    assert not passed and "carried the wrong VNI" in why and "vni 1001 (no VPC has it)" in why
    assert "a VNI no VPC of this lab has" in why
    passed, why = got[DELIVERED]
    assert not passed and "as no packet of ZIGI-VPC1" in why
    assert "fix encapsulate's VNI first" in why


def test_03_the_sender_s_own_host_as_outer_destination_never_leaves_it(tmp_path):
    own = SOLUTION.replace(HEADER, HEADER.replace('destination["host_ip"]', 'router["underlay_ip"]'))
    assert own != SOLUTION
    got = check(tmp_path, own)
    passed, why = got[ENCAPSULATED]
    assert not passed and "never left host1: your encapsulate sent it to 192.168.100.1" in why
    assert "host1's own underlay address" in why and "remote_ip 192.168.100.2 (host2" in why
    assert not got[OTHER][0] and "first the packet must cross" in got[DELIVERED][1]


def test_03_delivery_by_address_only_hands_the_packet_to_the_twin(tmp_path):
    by_ip = SOLUTION.replace(MATCH, '        if vm["ip"] == arrival["dst_ip"]:\n')
    got = check(tmp_path, by_ip)
    passed, why = got[OTHER]          # host2 lists ZIGI-VM2 before OTHER-VM2: ZIGI's works
    assert not passed and "was delivered to ZIGI-VM2" in why
    assert "same address 10.0.0.185" in why and "tells VPCs apart by the VNI alone" in why
    assert "ZIGI-VM2:\n  ICMP echo request 10.0.0.148 > 10.0.0.185" in why   # its capture
    passed, why = got[ISOLATED]
    assert not passed and "reached ZIGI-VM2, in another VPC" in why
    assert "arrived with OTHER-VPC's own VNI 1002, and deliver handed it to ZIGI-VM2" in why
    assert got[ENCAPSULATED][0]
    assert not got[VNI][0] and "tells VPCs apart by the VNI alone" in got[VNI][1]


def test_03_delivery_blind_to_the_vni_hands_another_vpc_s_packet_to_zigi_vm2(tmp_path):
    # both pass every ping: host2 has one VM per MAC; only the VNI tells this packet apart
    for name, match in (("mac", '        if vm["mac"] == arrival["dst_mac"]:\n'),
                        ("ip-mac", '        if vm["ip"] == arrival["dst_ip"] and '
                                   'vm["mac"] == arrival["dst_mac"]:\n')):
        got = check(tmp_path / name, SOLUTION.replace(MATCH, match))
        passed, why = got[VNI]
        assert not passed, name
        assert "in OTHER-VPC's VNI 1002 from OTHER-VM1" in why and "ZIGI-VM2 received it" in why
        assert "its VNI 1002 is OTHER-VPC's, not ZIGI-VPC1's 1001" in why
        assert "tells VPCs apart by the VNI alone" in why
        assert "VXLAN 192.168.100.1 > 192.168.100.2 (UDP port 4789) vni 1002: ICMP echo " \
               "request 10.0.0.148 > 10.0.0.185" in why                       # host2's NIC
        assert "ZIGI-VM2:\n  ICMP echo request 10.0.0.148 > 10.0.0.185" in why  # its capture
        assert "'vni': 1002, 'dst_ip': '10.0.0.185', 'dst_mac': '02:93:0e:03:bb:88'}: port" in why
        assert all(got[title][0] for title in (ENCAPSULATED, DELIVERED, OTHER, ISOLATED)), name


def test_03_a_correct_but_slow_tunnel_passes(tmp_path):
    slow = "import time\n" + SOLUTION
    for function in ("encapsulate", "deliver"):         # after each one's docstring
        docstring = next(line for line in SOLUTION.split(f"def {function}(")[1].splitlines()
                         if line.strip().startswith('"""'))
        slow = slow.replace(f"{docstring}\n", f"{docstring}\n    time.sleep(1.2)\n")
    assert slow.count("time.sleep(1.2)") == 2
    report = exercise(3).check(submit(tmp_path, slow))
    assert report.all_passed, str(report)


def test_03_delivery_by_vni_only_hands_the_packet_to_another_vm_of_the_vpc(tmp_path):
    by_vni = SOLUTION.replace(MATCH, '        if vm["vni"] == arrival["vni"]:\n')
    got = check(tmp_path, by_vni)
    passed, why = got[DELIVERED]      # host2 lists ZIGI-VM3 first
    assert not passed and "was delivered to ZIGI-VM3" in why
    assert "another address (10.0.0.200)" in why and "the inner destination says which VM" in why
    assert got[ENCAPSULATED][0] and got[ISOLATED][0]


def test_03_a_crash_and_a_hang_are_reported_with_the_learner_s_line(tmp_path):
    crash = SOLUTION.replace('    for vm in router["ports"]:\n',
                             '    print("looking for", arrival)\n'
                             '    port = router["ports"][arrival["vni"]]\n'
                             '    for vm in router["ports"]:\n')
    assert crash != SOLUTION
    got = check(tmp_path / "crash", crash)
    passed, why = got[DELIVERED]
    assert not passed and "your deliver failed" in why and "IndexError" in why
    assert 'File "tunnel.py", line 14, in deliver' in why and "looking for" in why
    assert got[ENCAPSULATED][0]
    hang = SOLUTION.replace(f"    {HEADER}\n", f"    while True:\n        pass\n    {HEADER}\n")
    assert hang != SOLUTION
    before = set(list_labs())
    report = exercise(3).check(submit(tmp_path / "hang", hang))
    got = results(report)
    passed, why = got[ENCAPSULATED]
    assert not passed and "your encapsulate failed" in why and "did not return within 2 s" in why
    assert "line 8 of tunnel.py" in why
    assert no_lab_left(before)
    assert no_learner_process_left()
