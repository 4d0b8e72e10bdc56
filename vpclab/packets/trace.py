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
    DHCP DISCOVER                                   DHCP OFFER 10.50.2.20
    DHCP REQUEST 10.50.2.20                         DHCP ACK 10.50.2.20        DHCP NAK
    DNS A? web-1.shop.internal                      DNS answer web-1.shop.internal A 10.50.1.10
    DNS PTR? 10.1.50.10.in-addr.arpa                DNS answer 10.1.50.10.in-addr.arpa PTR web-1.shop.internal
    DNS NXDOMAIN nosuch.example                     DNS NODATA web-1.shop.internal AAAA

`eni 1>2` is vpclab's Geneve option (source and destination ENI keys). A pcap
always shows it; tcpdump's one-line text does not (only `-vv` prints options),
so an expected line without `eni` accepts any option (see compare.line_matches).

DHCP and DNS lines say what the message means, not its ports. tcpdump's one-line text
hides that: for DHCP it prints no message type (`-v` does, on the lines below the
packet's), for a DNS answer no name (`-v` does), and for NXDOMAIN and NODATA not even
the question (only `-vv`'s `q:`). Such text becomes an `other: ...` line that says which
flag shows the rest, never a canonical line that could be wrong. (DHCP: OFFER and ACK
carry the offered address, yiaddr; REQUEST the requested one, or ciaddr when renewing.
DNS names are lower-cased, without the final dot: DNS is case-insensitive.)
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from vpclab.router.pipeline import ENI_OPTION_CLASS, ENI_OPTION_LEN, ENI_OPTION_TYPE

IP = r"(\d+\.\d+\.\d+\.\d+|\*)"            # '*': a wildcard in an expected trace
MAC = r"([0-9a-f]{2}(?::[0-9a-f]{2}){5}|\*)"
CANONICAL = re.compile(r"^(ARP request|ARP reply|ICMP \w|TCP \S+ >|UDP \S+ >|Geneve \S+ >|VXLAN \S+ >|other: "
                       r"|DHCP [A-Z]+\b|DNS (?:\S+\? |answer |[A-Z]+ ))")
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

# -- DHCP and DNS: one canonical form, written by both readers -----------------------
DHCP_KINDS = {1: "DISCOVER", 2: "OFFER", 3: "REQUEST", 4: "DECLINE", 5: "ACK", 6: "NAK",
              7: "RELEASE", 8: "INFORM"}
DHCP_TEXT_KINDS = {"Discover": 1, "Offer": 2, "Request": 3, "Decline": 4, "ACK": 5, "NACK": 6,
                   "Release": 7, "Inform": 8}
# tcpdump's names of the rcodes (print-domain.c); the canonical name is its upper case
TCPDUMP_RCODES = ("", "FormErr", "ServFail", "NXDomain", "NotImp", "Refused", "YXDomain",
                  "YXRRSet", "NXRRSet", "NotAuth", "NotZone")
DNS_WITH_DATA = ("A", "AAAA", "PTR", "CNAME", "NS")     # whose data a line shows
UNSET = "0.0.0.0"


def dhcp_line(kind: int, yiaddr: str, requested: str | None, ciaddr: str) -> str:
    """`DHCP OFFER 10.50.2.20`: OFFER and ACK with the address given, REQUEST with the
    address asked for (the requested-ip option, or ciaddr when renewing), others bare."""
    name = DHCP_KINDS.get(kind, f"TYPE{kind}")
    if kind in (2, 5):
        return f"DHCP {name} {yiaddr}"
    asked = requested or (ciaddr if ciaddr != UNSET else None)
    return f"DHCP {name} {asked}" if kind == 3 and asked else f"DHCP {name}"


def dns_name(name: str) -> str:
    return name.rstrip(".").lower() or "."


def dns_record(name: str, rtype: str, data: str) -> str:
    """One answer record as `NAME TYPE DATA` (DATA only for the types vpclab answers)."""
    if rtype not in DNS_WITH_DATA:
        return f"{dns_name(name)} {rtype}"
    value = dns_name(data) if rtype in ("PTR", "CNAME", "NS") else data
    return f"{dns_name(name)} {rtype} {value}"


def rcode_name(rcode: int) -> str:
    return TCPDUMP_RCODES[rcode].upper() if 0 < rcode < len(TCPDUMP_RCODES) else f"RESP{rcode}"


def dns_response_line(rcode: int, qtype: str, qname: str, records: list[str]) -> str:
    """`DNS answer R, R..`; `DNS NODATA NAME TYPE` (no error, no record); `DNS NXDOMAIN
    NAME` and the like for an error."""
    if rcode:
        return f"DNS {rcode_name(rcode)} {dns_name(qname)}"
    if not records:
        return f"DNS NODATA {dns_name(qname)} {qtype}"
    return "DNS answer " + ", ".join(records)


DHCP_TEXT = re.compile(rf"^IP {IP}\.(?:67|68) > {IP}\.(?:67|68): (?:\[[^]]*\] )?BOOTP/DHCP, "
                       r"(Request from [0-9a-f:]+|Reply)(.*)$")
DHCP_TEXT_FIELDS = {"kind": re.compile(r"DHCP-Message \(53\), length 1: (\w+)"),
                    "yiaddr": re.compile(rf"Your-IP {IP}"), "ciaddr": re.compile(rf"Client-IP {IP}"),
                    "requested": re.compile(rf"Requested-IP \(50\), length 4: {IP}")}


def _dhcp_text(body: str) -> str | None:
    """tcpdump -v's DHCP (its detail lines joined by fold_details) -> a DHCP line."""
    found = DHCP_TEXT.match(body)
    if not found:
        return None
    what, rest = found.group(3), found.group(4)
    fields = {k: (m.group(1) if (m := p.search(rest)) else None) for k, p in DHCP_TEXT_FIELDS.items()}
    if fields["kind"] in DHCP_TEXT_KINDS:
        return dhcp_line(DHCP_TEXT_KINDS[fields["kind"]], fields["yiaddr"] or UNSET,
                         fields["requested"], fields["ciaddr"] or UNSET)
    if "Vendor-rfc1048" in rest:
        return f"other: BOOTP {what} without a DHCP message type"
    return f"other: DHCP {what}, message type not shown (tcpdump -v shows it)"


DNS_QUERY_TEXT = re.compile(rf"^IP {IP}\.\d+ > {IP}\.53: (?:\[[^]]*\] )?\d+[+%$]*(?: \[[^]]*\])* "
                            r"(\S+)\? (\S+)")
DNS_RESPONSE_TEXT = re.compile(
    rf"^IP {IP}\.53 > {IP}\.\d+: (?:\[[^]]*\] )?\d+(?: ([A-Z][A-Za-z]+\d*))?[*|$-]*(?: \[[^]]*\])*"
    r"(?: q: (\S+)\? (\S+))? (\d+)/\d+/\d+(.*?)(?: \(\d+\))?$")


def _rcode_text(word: str | None) -> int:
    """tcpdump's rcode word (` NXDomain`, ` Resp12`) -> the number; none printed: 0."""
    if not word:
        return 0
    if word.startswith("Resp") and word[4:].isdigit():
        return int(word[4:])
    return TCPDUMP_RCODES.index(word) if word in TCPDUMP_RCODES else -1


def _dns_text(body: str) -> str | None:
    """tcpdump's DNS over UDP -> a DNS line; a response whose names tcpdump left out (no
    -v for answers, no -vv for a negative one) -> an `other:` line that says so."""
    query = DNS_QUERY_TEXT.match(body)
    if query:
        return f"DNS {query.group(3)}? {dns_name(query.group(4))}"
    found = DNS_RESPONSE_TEXT.match(body)
    if not found:
        return None
    rcode_word, qtype, qname, count, rest = found.groups()[2:]
    rcode = _rcode_text(rcode_word)
    if rcode < 0:
        return None
    records = _dns_text_records(rest, int(count))
    if records is None:
        return f"other: DNS answer {rest.strip()}, names not shown (tcpdump -v shows them)"
    if (rcode or not records) and qname is None:
        shown = rcode_name(rcode) if rcode else "NODATA"
        return f"other: DNS {shown}, question not shown (tcpdump -vv shows it)"
    return dns_response_line(rcode, qtype, qname or "", records)


def _dns_text_records(rest: str, count: int) -> list[str] | None:
    """The answer section as records; None if tcpdump printed them without names."""
    answers = re.split(r" (?:ns|ar): ", rest, maxsplit=1)[0].strip()
    if not count:
        return []
    records = []
    for text in answers.split(",")[:count]:
        parts = text.split()
        if len(parts) < 2 or not parts[0].endswith("."):
            return None
        records.append(dns_record(parts[0], parts[1], parts[2] if len(parts) > 2 else ""))
    return records



def is_noise(body: str) -> bool:
    """IPv6 ND/MLD, LLDP, STP and IGMP: what interfaces say when they come up."""
    return body.startswith(NOISE_PREFIXES) or ": igmp " in body


def _inner_text(body: str) -> str:
    if CANONICAL.match(body):       # an expected trace may be written in canonical lines
        return body
    app = _dhcp_text(body) or _dns_text(body)
    if app:
        return app
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


def fold_details(lines: list[str]) -> list[str]:
    """tcpdump -v prints a DHCP packet's fields (its message type among them) on lines of
    their own, each starting with a tab: join them to the packet's line."""
    out: list[str] = []
    for line in lines:
        if line.startswith("\t") and out and "BOOTP/DHCP" in out[-1]:
            out[-1] = f"{out[-1].rstrip()} {line.strip()}"
        else:
            out.append(line)
    return out


def parse_text(lines: list[str], keep_noise: bool = False) -> list["Packet"]:
    """tcpdump -nn text (as tcpdump prints it, -v/-vv too, or pasted by hand) -> packets."""
    lines = fold_details(fold_verbose(lines))
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
    """A packet as the traces see it: its canonical line, and when (if known). From a
    pcap also its Ethernet and IPv4 sources, which a DHCP or DNS line does not carry
    but the diagram needs (who sent it: the VM, or its virtual router); not compared."""

    line: str
    time: float | None = None
    src_mac: str | None = field(default=None, compare=False)
    src_ip: str | None = field(default=None, compare=False)


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
        return _dhcp_packet(pkt, udp) or _dns_packet(pkt, udp) or f"UDP {ip.src}:{udp.sport} > {ip.dst}:{udp.dport}"
    if ip.proto == 2:       # IGMP: noise, like IPv6's MLD
        return None
    return f"other: IP {ip.src} > {ip.dst} proto {ip.proto}"


def _dhcp_packet(pkt, udp) -> str | None:
    """The DHCP line of a scapy packet with a DHCP message type, else None."""
    from scapy.layers.dhcp import BOOTP, DHCP

    if not pkt.haslayer(DHCP) or {udp.sport, udp.dport} != {67, 68}:
        return None
    options = {o[0]: o[1] for o in pkt[DHCP].options if isinstance(o, tuple) and len(o) == 2}
    kind = options.get("message-type")
    if not isinstance(kind, int):
        return None
    bootp = pkt[BOOTP]
    return dhcp_line(kind, bootp.yiaddr, options.get("requested_addr"), bootp.ciaddr)


def _dns_packet(pkt, udp) -> str | None:
    """The DNS line of a scapy DNS message over UDP port 53, else None."""
    from scapy.layers.dns import DNS

    if 53 not in (udp.sport, udp.dport) or not pkt.haslayer(DNS) or not pkt[DNS].qd:
        return None
    dns = pkt[DNS]
    question = dns.qd[0]
    qtype, qname = _dns_type(question.qtype), question.qname.decode("ascii", "replace")
    if not dns.qr:
        return f"DNS {qtype}? {dns_name(qname)}"
    records = [dns_record(rr.rrname.decode("ascii", "replace"), _dns_type(rr.type), _rdata(rr.rdata))
               for rr in (dns.an or [])]
    return dns_response_line(dns.rcode, qtype, qname, records)


def _dns_type(value: int) -> str:
    """A type as tcpdump spells it (scapy says ALL for 255, tcpdump ANY)."""
    from scapy.layers.dns import dnstypes
    return "ANY" if value == 255 else dnstypes.get(value, f"Type{value}")


def _rdata(value) -> str:
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)


def _eni_option(geneve) -> str:
    """` eni S>D` for vpclab's Geneve option (source, destination ENI keys), else ''."""
    for option in geneve.options or []:
        data = bytes(option.data)
        if option.classid == ENI_OPTION_CLASS and option.type == ENI_OPTION_TYPE and len(data) == ENI_OPTION_LEN:
            return f" eni {int.from_bytes(data[:4], 'big')}>{int.from_bytes(data[4:], 'big')}"
    return ""


def read_pcap(path: Path, keep_noise: bool = False) -> list[Packet]:
    from scapy.contrib import geneve  # noqa: F401  binds UDP 6081
    from scapy.layers import dhcp, dns, vxlan  # noqa: F401  bind UDP 67/68, 53, 4789
    from scapy.utils import rdpcap

    packets = []
    for pkt in rdpcap(str(path)):
        line = _packet_line(pkt)
        if line is None:
            if not keep_noise:
                continue
            line = "other: " + pkt.summary()
        packets.append(Packet(line, float(pkt.time), *_sources(pkt)))
    return packets


def _sources(pkt) -> tuple[str | None, str | None]:
    """(Ethernet source, IPv4 source) of a scapy packet, where it has them."""
    from scapy.layers.inet import IP
    from scapy.layers.l2 import Ether

    mac = pkt[Ether].src.lower() if pkt.haslayer(Ether) else None
    return mac, (pkt[IP].src if pkt.haslayer(IP) else None)


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
