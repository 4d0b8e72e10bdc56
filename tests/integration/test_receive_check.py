"""AWS's receive-side check, and the ENI identity the Geneve option carries: a host that
claims a VM it does not hold, or an ENI that is not the sender, is not believed; the
receiving router delivers to the ENI the option names."""
import pytest

from tests.integration.labtools import MULTI_VPC, inject

def eni_keys(lab) -> dict[tuple[str, str], int]:
    return {(m["vpc"], m["ip"]): m["eni_key"] for m in lab.mappings()}


def received_at_vm2(lab, tmp_path, send) -> str:
    """What ZIGI-VM2 captured while `send` ran (a failed injection fails the test)."""
    with lab.capture(["ZIGI-VM2"], tmp_path, filter="icmp", quiet=0.5) as cap:
        send()
    return "\n".join(cap.lines()["ZIGI-VM2"])


def multi_vpc_lab(vpclab_lab, mode: str):
    """The lab, ZIGI-VM1's and ZIGI-VM2's MACs, and every ENI's key by (VPC, IP)."""
    lab = vpclab_lab(MULTI_VPC, mode=mode)
    vms = lab.topology.vms
    return lab, [vms["ZIGI-VM1"].mac, vms["ZIGI-VM2"].mac], eni_keys(lab)


@pytest.mark.parametrize("mode", ["on-demand", "preload"])
def test_a_rogue_host_claiming_a_vm_is_dropped_and_counted(vpclab_lab, tmp_path, mode):
    lab, macs, keys = multi_vpc_lab(vpclab_lab, mode)
    vm1_to_vm2 = (keys["ZIGI-VPC1", "10.0.0.148"], keys["ZIGI-VPC1", "10.0.0.185"])

    def send():
        # host3 holds no ZIGI-VM1, yet sends a tunnelled packet "from" it (ICMP id 0x1111)
        inject(lab, "host3", "192.168.100.3", 0x1111, macs, "10.0.0.185", vm1_to_vm2)
        # control: the same packet from the host that really holds ZIGI-VM1 (id 0x2222)
        inject(lab, "host1", "192.168.100.1", 0x2222, macs, "10.0.0.185", vm1_to_vm2)

    seen = received_at_vm2(lab, tmp_path, send)
    assert "id 8738" in seen                   # the honest host's packets arrive
    assert "id 4369" not in seen               # the rogue's never do
    host2 = lab.stats()["routers"]["host2"]
    assert host2["receive_check_failed"] >= 3
    alarms = [e for e in lab.state.events.read() if e["event"] == "receive_check_failed"]
    if mode == "on-demand":
        assert alarms and alarms[0]["outer_source"] == "192.168.100.3" \
            and alarms[0]["claimed_source"] == "10.0.0.148"


@pytest.mark.parametrize("mode", ["on-demand", "preload"])
def test_the_geneve_option_decides_who_sent_and_who_receives(vpclab_lab, tmp_path, mode):
    """All from host1, which really holds ZIGI-VM1, so only the option differs."""
    lab, macs, keys = multi_vpc_lab(vpclab_lab, mode)
    vm1, vm2 = keys["ZIGI-VPC1", "10.0.0.148"], keys["ZIGI-VPC1", "10.0.0.185"]
    vm3 = keys["ZIGI-VPC1", "10.0.0.20"]            # another ENI on host1, other IP
    other_vm2 = keys["ZIGI-VPC2", "10.0.0.185"]     # same IP on host2, other VPC

    def send():
        inject(lab, "host1", "192.168.100.1", 0x2222, macs, "10.0.0.185", (vm1, vm2))   # control
        inject(lab, "host1", "192.168.100.1", 0x3333, macs, "10.0.0.185", None)          # no option
        inject(lab, "host1", "192.168.100.1", 0x4444, macs, "10.0.0.185", (vm3, vm2))    # wrong sender
        inject(lab, "host1", "192.168.100.1", 0x5555, macs, "10.0.0.99", (vm1, vm2))     # by ENI
        inject(lab, "host1", "192.168.100.1", 0x6666, macs, "10.0.0.185", (vm1, other_vm2))

    seen = received_at_vm2(lab, tmp_path, send)
    assert "id 8738" in seen                 # the honest packet arrives
    assert "id 13107" not in seen            # a Geneve packet without the option: dropped
    assert "id 17476" not in seen            # the option names ZIGI-VM3 as sender: not 10.0.0.148
    assert "10.0.0.148 > 10.0.0.99: ICMP echo request, id 21845" in seen   # delivered to the ENI named
    assert "id 26214" not in seen            # the option names an ENI of another VPC
    host2 = lab.stats()["routers"]["host2"]
    assert host2["receive_check_failed"] >= 6
