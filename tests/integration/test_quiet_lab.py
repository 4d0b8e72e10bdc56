"""An idle lab is silent: no IGMP, MLD or other chatter on any VM's or host's interface.

A capture of the seed's ping must show the seed's packets and nothing else; a lab
interface that announces itself (an IGMP report from a snooping bridge, IPv6's MLD,
neighbour or router solicitations) puts packets into captures nobody sent, at random.
"""
import time

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import ARP
from scapy.utils import rdpcap

from tests.integration.labtools import MULTI_VPC
from vpclab.model.plan import CONTROLLER_IP, CONTROLLER_PORT
from vpclab.running.shell import run

IDLE_WINDOW = 30.0          # what the promise says: an idle lab captured for 30 s shows nothing
ALL_HOSTS_GROUP = "010000E0"    # 224.0.0.1 in /proc/net/igmp: joined by every interface, never reported


SHOW_MULTICAST = ["sh", "-c", "cat /proc/net/igmp; echo ---; ip -6 -o addr show"]


def multicast_state(text: str) -> tuple[set[str], str]:
    """(IPv4 groups joined, IPv6 addresses) of one namespace: what Linux would announce."""
    igmp, _, ipv6 = text.partition("---\n")
    groups = {line.split()[0] for line in igmp.splitlines() if line.startswith(("\t\t", "    "))}
    return groups, ipv6.strip()


def is_control_channel(frame, mgmt_ip: str) -> bool:
    """OpenFlow between a host's router and the mapping service (echoes every 5 s), or the
    ARP of those two ends: the lab's own management traffic, only ever on mgmt0."""
    ends = {mgmt_ip, str(CONTROLLER_IP)}
    if TCP in frame:
        return {frame[IP].src, frame[IP].dst} == ends and CONTROLLER_PORT in (
            frame[TCP].sport, frame[TCP].dport)
    return ARP in frame and {frame[ARP].psrc, frame[ARP].pdst} == ends


def test_no_lab_interface_joins_a_group_it_would_announce(vpclab_lab):
    lab = vpclab_lab(MULTI_VPC)
    # the lab's own namespace (the management network) is no node: entered by its name
    shown = {"lab": run(["ip", "netns", "exec", lab.state.namespace, *SHOW_MULTICAST],
                        "multicast state")}
    shown |= {name: lab.exec(name, *SHOW_MULTICAST, check=True).stdout for name in lab.nodes()}
    announced = {}
    for name, text in shown.items():
        groups, ipv6 = multicast_state(text)
        assert groups, f"{name}: /proc/net/igmp listed no group at all: the check reads nothing"
        if groups - {ALL_HOSTS_GROUP} or ipv6:
            announced[name] = (sorted(groups - {ALL_HOSTS_GROUP}), ipv6)
    assert announced == {}, f"would send IGMP/MLD reports: {announced}"


def test_an_idle_lab_captured_for_30_s_shows_nothing(vpclab_lab, tmp_path):
    lab = vpclab_lab(MULTI_VPC)
    points = [(name, "eth0") for name in lab.nodes()] + [(name, "mgmt0") for name in lab.hosts]
    # at once, straight after up: when chatter comes
    with lab.capture([f"{node}:{iface}" for node, iface in points], tmp_path) as cap:
        time.sleep(IDLE_WINDOW)             # the observation window itself, not a wait
    unexplained, control = {}, 0
    for node, iface in points:
        frames = rdpcap(str(cap.pcap(f"{node}:{iface}")))
        if iface == "mgmt0":
            mgmt_ip = str(lab.plan.hosts[node].mgmt_ip)
            control += sum(is_control_channel(f, mgmt_ip) for f in frames)
            frames = [f for f in frames if not is_control_channel(f, mgmt_ip)]
        if frames:
            unexplained[f"{node}:{iface}"] = [f.summary() for f in frames[:5]]
    assert control, "no OpenFlow echo on any mgmt0 in 30 s: the captures saw nothing at all"
    assert unexplained == {}, f"an idle lab said something: {unexplained}"
