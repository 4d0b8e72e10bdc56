"""One canonical line per packet, from tcpdump text or from a pcap.

A capture line carries a timestamp, ids and lengths that differ on every run;
what a trace documents is the kind of packet, its addresses and the order.
Both readers below produce the same canonical lines for the same traffic, so
a teacher can paste tcpdump output as the expected trace and a student's pcap
compares against it:

    ARP request who-has 10.0.0.185 tell 10.0.0.148
    ARP reply 10.0.0.185 is-at 02:93:0e:03:bb:88
    ICMP echo request 10.0.0.148 > 10.0.0.185
    TCP 10.0.0.148:41000 > 10.0.0.185:80 [S]
    Geneve 192.168.100.1 > 192.168.100.2 vni 1001 eni 1>2: ICMP echo request 10.0.0.148 > 10.0.0.185

`eni 1>2` is vpclab's Geneve option (source and destination ENI keys). A pcap
always shows it; tcpdump's one-line text does not (only `-vv` prints options),
so an expected line without `eni` accepts any option (see compare.line_matches).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from vpclab.pipeline import ENI_OPTION_CLASS, ENI_OPTION_LEN, ENI_OPTION_TYPE

IP = r"(\d+\.\d+\.\d+\.\d+|\*)"            # '*': a wildcard in an expected trace
MAC = r"([0-9a-f]{2}(?::[0-9a-f]{2}){5}|\*)"
CANONICAL = re.compile(r"^(ARP request|ARP reply|ICMP \w|TCP \S+ >|UDP \S+ >|Geneve \S+ >|VXLAN \S+ >|other: )")
TIMESTAMP = re.compile(r"^\s*(\d{2}):(\d{2}):(\d{2}\.\d+)\s+")
NOISE_PREFIXES = ("IP6 ", "LLDP", "STP ", "802.1d", "CDP")
TCPDUMP_CHATTER = ("tcpdump:", "listening on", "packets captured", "packets received by",
                   "packets dropped by", "reading from file")
ARP_VERBOSE = r"(?:Ethernet \(len 6\), IPv4 \(len 4\), )?"     # what -v adds
ICMP_TYPES = {0: "echo reply", 8: "echo request", 3: "unreachable", 11: "time exceeded"}

# (pattern on the line after its timestamp, canonical form)
TEXT_FORMS = [
    (re.compile(rf"^ARP, {ARP_VERBOSE}Request who-has {IP} (?:\([^)]*\) )?tell {IP}"), "ARP request who-has {0} tell {1}"),
    (re.compile(rf"^ARP, {ARP_VERBOSE}Reply {IP} is-at {MAC}"), "ARP reply {0} is-at {1}"),
    (re.compile(rf"^IP {IP} > {IP}: ICMP echo (request|reply)"), "ICMP echo {2} {0} > {1}"),
    (re.compile(rf"^IP {IP} > {IP}: ICMP {IP} (?:udp|tcp|protocol) .*unreachable"), "ICMP unreachable {0} > {1}"),
    (re.compile(rf"^IP {IP}\.(\d+) > {IP}\.(\d+): Flags \[([^\]]*)\]"), "TCP {0}:{1} > {2}:{3} [{4}]"),
    (re.compile(rf"^IP {IP}\.(\d+) > {IP}\.(\d+): UDP"), "UDP {0}:{1} > {2}:{3}"),
]
TUNNEL_TEXT = re.compile(
    rf"^IP {IP}\.\d+ > {IP}\.\d+: (?:\[[^]]*\] )?(Geneve|VXLAN), .*?vni (0x[0-9a-f]+|\d+)([^:]*)(?:: (.*))?$")
# how tcpdump -vv prints the option: ... options [class Experimental (0xffff) type 0x80(C) len 12 data 00000001 00000002]
ENI_OPTION_TEXT = re.compile(r"class Experimental \(0xffff\) type 0x80\(C\) len 12 data ([0-9a-f]{8}) ([0-9a-f]{8})")
VERBOSE_IP_HEADER = re.compile(r"^(\s*(?:\d{2}:\d{2}:\d{2}\.\d+\s+)?)IP \(tos .*\)$")


def is_noise(body: str) -> bool:
    """IPv6 ND/MLD, LLDP, STP and IGMP: what interfaces say when they come up."""
    return body.startswith(NOISE_PREFIXES) or ": igmp " in body


def _inner_text(body: str) -> str:
    if CANONICAL.match(body):       # an expected trace may be written in canonical lines
        return body
    for pattern, form in TEXT_FORMS:
        found = pattern.match(body)
        if found:
            return form.format(*found.groups())
    return "other: " + body


def fold_verbose(lines: list[str]) -> list[str]:
    """tcpdump -v/-vv prints an IP packet's header on a line of its own
    (`IP (tos 0x0, ttl 64, ...)`) and its addresses on the next: join them into the
    one-line form, keeping the timestamp, so both read alike."""
    out: list[str] = []
    waiting: str | None = None
    for line in lines:
        if waiting is not None:
            out.append(f"{waiting}IP {line.strip()}")
            waiting = None
            continue
        header = VERBOSE_IP_HEADER.match(line.rstrip())
        if header:
            waiting = header.group(1).lstrip()      # the timestamp, if any
            continue
        out.append(line)
    return out


def parse_text(lines: list[str], keep_noise: bool = False) -> list["Packet"]:
    """tcpdump -nn text (as tcpdump prints it, -v/-vv too, or pasted by hand) -> packets."""
    lines = fold_verbose(lines)
    packets: list[Packet] = []
    pending_tunnel: tuple[str, float | None] | None = None   # VXLAN puts its inner packet on the next line
    for raw in lines:
        text = raw.rstrip()
        if not text.strip() or text.lstrip().startswith(("#", "$")) or \
                any(c in text for c in TCPDUMP_CHATTER):
            continue
        stamp = TIMESTAMP.match(text)
        body = TIMESTAMP.sub("", text).strip()
        if pending_tunnel and not stamp:
            head, t = pending_tunnel
            packets.append(Packet(f"{head}: {_inner_text(body)}", t))
            pending_tunnel = None
            continue
        pending_tunnel = None
        t = _seconds(stamp) if stamp else None
        tunnel = TUNNEL_TEXT.match(body)
        if tunnel:
            outer_src, outer_dst, kind, vni, rest, inner = tunnel.groups()
            option = ENI_OPTION_TEXT.search(rest)
            eni = f" eni {int(option.group(1), 16)}>{int(option.group(2), 16)}" if option else ""
            head = f"{kind} {outer_src} > {outer_dst} vni {int(vni, 0)}{eni}"
            if inner:
                packets.append(Packet(f"{head}: {_inner_text(inner)}", t))
            else:
                pending_tunnel = (head, t)
            continue
        if is_noise(body) and not keep_noise:
            continue
        packets.append(Packet(_inner_text(body), t))
    return packets


def _seconds(stamp: re.Match) -> float:
    h, m, s = stamp.groups()
    return int(h) * 3600 + int(m) * 60 + float(s)


@dataclass(frozen=True)
class Packet:
    """A packet as the traces see it: its canonical line, and when (if known)."""

    line: str
    time: float | None = None


# -- pcap (scapy) -----------------------------------------------------------------
def _tcp_flags(flags) -> str:
    """scapy's flags in tcpdump's spelling: S, S., ., P., F., R."""
    text = str(flags)
    out = "".join(c for c in "FSRP" if c in text)
    out += "." if "A" in text else ""
    out += "".join(c for c in "UEC" if c in text).replace("C", "W")
    return out or "none"


def _packet_line(pkt) -> str | None:
    """The canonical line of one scapy packet; None for noise."""
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.l2 import ARP
    from scapy.layers.vxlan import VXLAN
    from scapy.contrib.geneve import GENEVE

    if pkt.haslayer(IP):          # tunnels first: their payload has ARP/ICMP layers too
        ip = pkt[IP]
        for layer, kind in ((GENEVE, "Geneve"), (VXLAN, "VXLAN")):
            if ip.payload.haslayer(layer):
                inner = _packet_line(pkt[layer].payload)
                eni = _eni_option(pkt[layer]) if layer is GENEVE else ""
                return f"{kind} {ip.src} > {ip.dst} vni {pkt[layer].vni}{eni}: {inner or 'other'}"
    if pkt.haslayer(ARP):
        arp = pkt[ARP]
        if arp.op == 1:
            return f"ARP request who-has {arp.pdst} tell {arp.psrc}"
        if arp.op == 2:
            return f"ARP reply {arp.psrc} is-at {arp.hwsrc.lower()}"
    if not pkt.haslayer(IP):
        return None
    ip = pkt[IP]
    if pkt.haslayer(ICMP):
        icmp = pkt[ICMP]
        kind = ICMP_TYPES.get(icmp.type, f"type {icmp.type}")
        return f"ICMP {kind} {ip.src} > {ip.dst}" if icmp.type in (0, 8, 3) else \
            f"other: ICMP {kind} {ip.src} > {ip.dst}"
    if pkt.haslayer(TCP):
        tcp = pkt[TCP]
        return f"TCP {ip.src}:{tcp.sport} > {ip.dst}:{tcp.dport} [{_tcp_flags(tcp.flags)}]"
    if pkt.haslayer(UDP):
        udp = pkt[UDP]
        return f"UDP {ip.src}:{udp.sport} > {ip.dst}:{udp.dport}"
    if ip.proto == 2:       # IGMP: noise, like IPv6's MLD
        return None
    return f"other: IP {ip.src} > {ip.dst} proto {ip.proto}"


def _eni_option(geneve) -> str:
    """` eni S>D` for vpclab's Geneve option (source, destination ENI keys), else ''."""
    for option in geneve.options or []:
        data = bytes(option.data)
        if option.classid == ENI_OPTION_CLASS and option.type == ENI_OPTION_TYPE and len(data) == ENI_OPTION_LEN:
            return f" eni {int.from_bytes(data[:4], 'big')}>{int.from_bytes(data[4:], 'big')}"
    return ""


def read_pcap(path: Path, keep_noise: bool = False) -> list[Packet]:
    from scapy.contrib import geneve  # noqa: F401  binds UDP 6081
    from scapy.layers import vxlan  # noqa: F401  binds UDP 4789
    from scapy.utils import rdpcap

    packets = []
    for pkt in rdpcap(str(path)):
        line = _packet_line(pkt)
        if line is None:
            if not keep_noise:
                continue
            line = "other: " + pkt.summary()
        packets.append(Packet(line, float(pkt.time)))
    return packets


def is_pcap(path: Path) -> bool:
    with path.open("rb") as stream:
        magic = stream.read(4)
    return magic in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1",
                     b"\xa1\xb2\x3c\x4d", b"\x0a\x0d\x0d\x0a")


def read_trace(path: Path, keep_noise: bool = False) -> list[Packet]:
    """A pcap or a tcpdump text file, by its content, not its name."""
    if is_pcap(path):
        return read_pcap(path, keep_noise)
    return parse_text(path.read_text(errors="replace").splitlines(), keep_noise)


def normalise(lines: list[str]) -> list[str]:
    """Canonical lines of tcpdump text (the common case in tests and the demo)."""
    return [p.line for p in parse_text(lines)]
