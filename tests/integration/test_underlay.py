"""The underlay carries the VM packet encapsulated: host IPs outside, the VPC's VNI."""
import re

import pytest

from tests.integration.labtools import SEED
from vpclab.capture import capture_during

OUTER = {
    "geneve": r"IP 192\.168\.100\.1\.\d+ > 192\.168\.100\.2\.6081: Geneve, .*vni 0x3e9",
    "vxlan": r"IP 192\.168\.100\.1\.\d+ > 192\.168\.100\.2\.4789: VXLAN, .*vni 1001",
}


@pytest.mark.parametrize("encap", ["geneve", "vxlan"])
def test_underlay_capture_shows_the_encapsulation(labs, tmp_path, encap):
    topology = tmp_path / "lab.yaml"
    topology.write_text(SEED.read_text().replace("encap: geneve", f"encap: {encap}"))
    state, _ = labs.up(topology, encap)
    ping, captured = capture_during(state, ["host1:eth0", "host2:eth0"], tmp_path, "ZIGI-VM1",
                                    ["ping", "-c", "1", "10.0.0.185"], filter_expr="udp")
    assert ping.returncode == 0
    for spec in ("host1:eth0", "host2:eth0"):     # leaving host1, arriving at host2
        text = "\n".join(captured[spec])
        assert re.search(OUTER[encap], text), text
        assert "IP 10.0.0.148 > 10.0.0.185: ICMP echo request" in text   # the inner packet
