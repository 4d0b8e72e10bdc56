"""Two labs of the same topology run side by side without seeing each other."""
from tests.integration.labtools import SEED, in_node, ping
from vpclab import lifecycle
from vpclab.capture import Capture, settle


def test_two_labs_run_at_once_without_interfering(labs, tmp_path):
    a, _ = labs.up(SEED, "twin-a")
    b, _ = labs.up(SEED, "twin-b")
    assert a.namespace != b.namespace
    watch_a = Capture(a, "ZIGI-VM2", tmp_path / "a.txt", filter_expr="").start()
    watch_b = Capture(b, "ZIGI-VM2", tmp_path / "b.txt", filter_expr="").start()
    try:
        assert in_node(a, "ZIGI-VM1", ["ping", "-c", "3", "-i", "0.2", "10.0.0.185"]).returncode == 0
        settle([watch_a, watch_b])
    finally:
        seen_a, seen_b = watch_a.stop(), watch_b.stop()
    assert len(seen_a) >= 6        # control: lab a's VM2 saw the pings (and its ARP)
    assert seen_b == []            # the identical VM in lab b saw none of it
    assert ping(b, "ZIGI-VM1", "10.0.0.185")
    lifecycle.down(a.name)
    assert ping(b, "ZIGI-VM2", "10.0.0.148")   # removing a leaves b intact
