"""The shipped expected traces hold for the scenarios they document."""
from tests.integration.labtools import MULTI_VPC, REPO, SEED
from vpclab.capture import capture_during
from vpclab.compare import compare_traces

TRACES = REPO / "traces"


def test_underlay_trace(labs, tmp_path):
    state, plan = labs.up(SEED, "ul")
    capture_during(state, ["host1:eth0", "host2:eth0"], tmp_path, "ZIGI-VM1",
                   ["ping", "-c", "1", "10.0.0.185"])
    results = compare_traces(tmp_path, TRACES / "underlay", plan.topology)
    assert [(r.point, r.matches) for r in results] == [("host1:eth0", True), ("host2:eth0", True)], \
        "\n".join(r.side_by_side() for r in results)


def test_overlapping_ip_trace(labs, tmp_path):
    state, plan = labs.up(MULTI_VPC, "olap")
    watch = ["ZIGI-VM1", "ZIGI-VM2", "OTHER-VM1", "OTHER-VM2"]
    capture_during(state, watch, tmp_path, "ZIGI-VM1", ["ping", "-c", "1", "10.0.0.185"])
    results = compare_traces(tmp_path, TRACES / "overlapping-ip", plan.topology)
    assert {r.point: r.matches for r in results} == {f"{vm}:eth0": True for vm in watch}, \
        "\n".join(r.side_by_side() for r in results)
    assert {r.point: len(r.actual) for r in results}["ZIGI-VM2:eth0"] == 4
