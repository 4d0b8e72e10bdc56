"""Per-student variants: the same exercise with different numbers for every student.

A student's ID seeds every choice an exercise makes (the VPC's CIDR, the VMs' addresses
and MACs, the VNI, which host holds which VM), so two students' correct answers differ
and a copied answer fails. The derivation is a hash of the exercise and the ID: the same
ID gives the same lab on every machine, on every run. Without an ID, an exercise uses
the seed's own values, the ones the seed document shows.
"""
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from ipaddress import IPv4Network

from vpclab.model.names import check_student_id

SEED_VMS = {"ZIGI-VM1": ("host1", "10.0.0.148", "02:00:5e:ad:58:40"),
            "ZIGI-VM2": ("host2", "10.0.0.185", "02:93:0e:03:bb:88")}
SEED_VPC = ("ZIGI-VPC1", "10.0.0.0/24", 1001)


@dataclass(frozen=True)
class Variant:
    """The numbers of one student's copy of one exercise (`student` None: the seed's)."""
    exercise: str
    student: str | None = None

    @classmethod
    def of(cls, exercise: str, student: str | None) -> "Variant":
        return cls(exercise, None if student is None else check_student_id(student))

    def rng(self, salt: str = "") -> random.Random:
        digest = hashlib.sha256(f"{self.exercise}/{self.student}/{salt}".encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))

    def seed_lab(self, name: str) -> dict:
        """The seed's two VMs on two hosts in one VPC: the seed's values, or this student's."""
        vpc, cidr, vni = SEED_VPC
        vms = dict(SEED_VMS)
        if self.student is not None:
            rng = self.rng("seed-lab")
            network = IPv4Network(f"10.{rng.randrange(1, 255)}.{rng.randrange(0, 256)}.0/24")
            cidr, vni = str(network), rng.randrange(100, 16_000_000)
            first, second = rng.sample(range(4, 255), 2)             # .0-.3 are AWS's
            hosts = ["host1", "host2"] if rng.random() < 0.5 else ["host2", "host1"]
            vms = {"ZIGI-VM1": (hosts[0], str(network[first]), random_mac(rng)),
                   "ZIGI-VM2": (hosts[1], str(network[second]), random_mac(rng))}
        return {"name": name, "description": f"the seed's first ping ({self.describe()})",
                "defaults": {"ttl": 255},
                "hosts": {"host1": {}, "host2": {}},
                "vpcs": {vpc: {"cidr": cidr, "vni": vni}},
                "vms": {vm: {"vpc": vpc, "host": host, "ip": ip, "mac": mac}
                        for vm, (host, ip, mac) in vms.items()}}

    def seed_first_ping(self) -> dict[str, str]:
        """What each VM of seed_lab captures (`icmp or arp`) for the first ping from ZIGI-VM1
        to ZIGI-VM2, in `vpclab compare`'s lines: the seed's two traces, in these numbers."""
        vms = self.seed_lab("first-ping")["vms"]
        one, two = vms["ZIGI-VM1"], vms["ZIGI-VM2"]
        return {"ZIGI-VM1": f"ARP request who-has {two['ip']} tell {one['ip']}\n"
                            f"ARP reply {two['ip']} is-at {two['mac']}\n"
                            f"ICMP echo request {one['ip']} > {two['ip']}\n"
                            f"ICMP echo reply {two['ip']} > {one['ip']}\n",
                "ZIGI-VM2": f"ICMP echo request {one['ip']} > {two['ip']}\n"
                            f"ARP request who-has {one['ip']} tell {two['ip']}\n"
                            f"ARP reply {one['ip']} is-at {one['mac']}\n"
                            f"ICMP echo reply {two['ip']} > {one['ip']}\n"}

    def describe(self) -> str:
        return f"student {self.student}" if self.student else "the seed's values"


def random_mac(rng: random.Random) -> str:
    """A locally administered unicast MAC, as AWS gives ENIs (02:...)."""
    return "02:" + ":".join(f"{rng.randrange(256):02x}" for _ in range(5))
