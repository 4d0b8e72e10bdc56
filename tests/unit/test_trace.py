"""Trace normalisation and comparison against the seed's documented captures."""
from pathlib import Path

from vpclab.trace import compare, normalise, normalise_line

SEED_TRACES = Path(__file__).resolve().parents[2] / "traces" / "seed"
VM2_EXPECTED = [
    "ICMP echo request 10.0.0.148 > 10.0.0.185",
    "ARP request who-has 10.0.0.148 tell 10.0.0.185",
    "ARP reply 10.0.0.148 is-at 02:00:5e:ad:58:40",
    "ICMP echo reply 10.0.0.185 > 10.0.0.148",
]


def lines(name):
    return (SEED_TRACES / name).read_text().splitlines()


def test_expected_seed_trace_normalises_to_the_seed_order():
    assert normalise(lines("ZIGI-VM2.txt")) == VM2_EXPECTED
    assert normalise(lines("ZIGI-VM1.txt"))[:2] == [
        "ARP request who-has 10.0.0.185 tell 10.0.0.148",
        "ARP reply 10.0.0.185 is-at 02:93:0e:03:bb:88"]


def test_documented_typo_is_visible_and_corrected_file_fixes_it():
    documented = normalise(lines("ZIGI-VM2.documented.txt"))
    assert documented[0].startswith("other: IP 10.0.0.148.148 > 10.0.0.185")
    assert documented[1:] == VM2_EXPECTED[1:]


def test_timestamps_ids_and_chatter_are_dropped():
    run = ["tcpdump: verbose output suppressed, use -v[v]... for full protocol decode",
           "listening on eth0, link-type EN10MB (Ethernet), snapshot length 262144 bytes",
           "12:29:03.441211 IP 10.0.0.148 > 10.0.0.185: ICMP echo request, id 4468, seq 1, length 64",
           "2 packets captured"]
    assert normalise(run) == [VM2_EXPECTED[0]]
    assert normalise_line("12:00:00.1 IP6 fe80::1 > ff02::2: ICMP6, router solicitation") \
        .startswith("other:")


def test_comparison_finds_a_swapped_order():
    swapped = lines("ZIGI-VM2.txt")
    swapped[3], swapped[4] = swapped[4], swapped[3]   # ARP request before the ICMP request
    result = compare(lines("ZIGI-VM2.txt"), swapped)
    assert not result.matches and result.first_difference == 0
    assert "=>" in result.side_by_side()


def test_comparison_finds_a_missing_packet_and_a_wrong_mac():
    missing = compare(lines("ZIGI-VM2.txt"), lines("ZIGI-VM2.txt")[:-1])
    assert not missing.matches and missing.first_difference == 3
    wrong = [l.replace("02:00:5e:ad:58:40", "02:00:5e:ad:58:41") for l in lines("ZIGI-VM2.txt")]
    result = compare(lines("ZIGI-VM2.txt"), wrong)
    assert not result.matches and result.first_difference == 2
    assert compare(lines("ZIGI-VM2.txt"), lines("ZIGI-VM2.txt")).matches
