"""Two labs of the same topology run side by side without seeing each other."""
from tests.integration.labtools import SEED


def test_two_labs_run_at_once_without_interfering(vpclab_lab, tmp_path):
    a = vpclab_lab(SEED, tag="twin-a")
    b = vpclab_lab(SEED, tag="twin-b")
    assert a.state.namespace != b.state.namespace
    with a.capture(["ZIGI-VM2"], tmp_path / "a") as watch_a, \
            b.capture(["ZIGI-VM2"], tmp_path / "b") as watch_b:
        assert a.exec("ZIGI-VM1", "ping", "-c", "3", "-i", "0.2", "10.0.0.185").ok
    seen_a, seen_b = watch_a.lines()["ZIGI-VM2"], watch_b.lines()["ZIGI-VM2"]
    assert len(seen_a) >= 6        # control: lab a's VM2 saw the pings (and its ARP)
    assert seen_b == []            # the identical VM in lab b saw none of it
    assert b.ping("ZIGI-VM1", "10.0.0.185")
    a.down()
    assert b.ping("ZIGI-VM2", "10.0.0.148")   # removing a leaves b intact
