"""The shipped expected traces hold for the scenarios they document."""
from tests.integration.labtools import MULTI_VPC, REPO, SEED

TRACES = REPO / "traces"


def test_underlay_trace(vpclab_lab, tmp_path):
    lab = vpclab_lab(SEED)
    with lab.capture(["host1:eth0", "host2:eth0"], tmp_path) as cap:
        lab.exec("ZIGI-VM1", "ping", "-c", "1", "10.0.0.185")
    result = cap.compare(TRACES / "underlay")
    assert [(r.point, r.matches) for r in result.points] == [("host1:eth0", True), ("host2:eth0", True)], \
        str(result)


def test_overlapping_ip_trace(vpclab_lab, tmp_path):
    lab = vpclab_lab(MULTI_VPC)
    watch = ["ZIGI-VM1", "ZIGI-VM2", "OTHER-VM1", "OTHER-VM2"]
    with lab.capture(watch, tmp_path) as cap:
        lab.exec("ZIGI-VM1", "ping", "-c", "1", "10.0.0.185")
    result = cap.compare(TRACES / "overlapping-ip")
    assert {r.point: r.matches for r in result.points} == {f"{vm}:eth0": True for vm in watch}, \
        str(result)
    assert {r.point: len(r.actual) for r in result.points}["ZIGI-VM2:eth0"] == 4
