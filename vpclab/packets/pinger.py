"""A ping that runs while something happens (a migration, a restart), with its losses counted.

`ping -i 0.1` from a VM, with every request's and reply's time read from a capture
in that VM: a script can then say which requests went unanswered and when they were
sent, instead of counting replies and hoping the event fell inside the pings.
"""
from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from vpclab.packets.capture import LabCapture

if TYPE_CHECKING:
    from vpclab.lab import Lab

REPLY_GRACE = 1.0       # seconds: a reply later than this counts as lost (ping -W's default is 10)


class RunningPing:
    """Started by `lab.running_ping(vm, target)`; use it in a `with` block."""

    def __init__(self, lab: "Lab", vm: str, target: str, interval: float = 0.1):
        ip = lab.address(target)
        folder = lab.state.dir / "pings" / f"{vm}-{len(lab.captures)}"   # removed with the lab
        self.capture = LabCapture(lab.state, [vm], folder, f"icmp and host {ip}", for_user=False)
        lab._captures.append(self.capture)          # so down() stops it, and a failure keeps it
        self.capture.start()
        self.proc = lab.popen(vm, "ping", "-n", "-i", f"{interval:g}", ip,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.requests: dict[int, float] = {}
        self.replies: dict[int, float] = {}
        self.stopped_at: float | None = None

    @property
    def pcap(self) -> Path:
        """The capture of the ping's ICMP in the VM (removed with the lab)."""
        return next(iter(self.capture.captures.values())).pcap

    def read(self) -> "RunningPing":
        """Requests and replies captured so far (the capture is flushed per packet)."""
        from scapy.layers.inet import ICMP
        from scapy.utils import PcapReader
        requests, replies = {}, {}
        try:
            for frame in PcapReader(str(self.pcap)):
                if ICMP in frame and frame[ICMP].type in (0, 8):
                    table = requests if frame[ICMP].type == 8 else replies
                    table.setdefault(frame[ICMP].seq, float(frame.time))
        except (EOFError, OSError, ValueError):    # a record still being written
            pass
        self.requests, self.replies = requests, replies
        return self

    def answered_after(self, moment: float) -> int:
        """Replies to requests sent after `moment` (a time.time() value)."""
        self.read()
        return sum(1 for seq, sent in self.requests.items() if sent > moment and seq in self.replies)

    def stop(self) -> "RunningPing":
        """Stop pinging, wait for the last replies, and read everything captured."""
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()
        if self.stopped_at is None:
            self.stopped_at = time.time()
        self.capture.stop()
        return self.read()

    def lost(self, sent_after: float = 0.0, sent_before: float = float("inf")) -> list[int]:
        """Requests sent in the window and never answered, leaving out those sent in the
        last REPLY_GRACE seconds before the ping stopped (their replies may have been on
        their way). A network that never answered again loses everything after it broke."""
        end = (self.stopped_at or time.time()) - REPLY_GRACE
        return sorted(seq for seq, sent in self.requests.items()
                      if sent_after < sent < min(sent_before, end) and seq not in self.replies)

    def __enter__(self) -> "RunningPing":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
