"""This process's own limit of open files, raised to fit a lab (never the machine's).

A lab holds descriptors per node: the runner keeps both ends of every node's pty (Mininet),
and `down` holds every node's namespace open while it stops what runs there, so a lab of
1,024 VMs needs more than the common soft limit of 1,024. Each process raises only its own
soft limit, up to its hard limit, and says plainly when that is too low.
"""
from __future__ import annotations

import resource

from vpclab.errors import VpclabError


def enough_descriptors(nodes: int) -> None:
    """Room for `nodes` nodes' descriptors (see the module's docstring)."""
    wanted = 1024 + 4 * nodes
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            raise VpclabError(f"a lab of {nodes} nodes needs about {wanted} open files in "
                              f"this process; the hard limit here is {hard} (`ulimit -Hn`): raise "
                              "it, or make the lab smaller")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))

