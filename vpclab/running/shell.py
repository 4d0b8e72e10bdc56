"""Running commands, in the lab's namespaces or here, with errors that say what failed."""
from __future__ import annotations

import subprocess
from typing import Mapping

from vpclab.errors import VpclabError


def in_netns_of(pid: int, argv: list[str]) -> list[str]:
    """argv to run a command inside a node: its network namespace and its mount namespace.

    Mininet's `mnexec -n` gives every node (VM or host) a private mount namespace with
    sysfs mounted for the node's network namespace, so /sys/class/net there is the node's,
    as on an EC2 instance; entering the network namespace alone would show the machine's.
    Entering a mount namespace resets the working directory to its root: `--wd=.` keeps
    ours (opened before entering), so relative paths still mean what the caller meant.
    The UTS namespace is the node's own too (vpclab.running.identity): its hostname.
    """
    return ["nsenter", f"--net=/proc/{pid}/ns/net", f"--mount=/proc/{pid}/ns/mnt",
            f"--uts=/proc/{pid}/ns/uts", "--wd=.", "--", *argv]


def links_up(pid: int) -> set[str]:
    """Names of the interfaces that are operationally up in a node's namespace."""
    out = run(in_netns_of(pid, ["ip", "-o", "link", "show"]), "interface state")
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()
            if "state UP" in line}


def run(argv: list[str], what: str, env: Mapping[str, str] | None = None,
        timeout: float = 30.0, stdin: str | None = None) -> str:
    """Run argv, return its stdout; raise VpclabError with its stderr if it fails."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout,
                              input=stdin)
    except FileNotFoundError:
        raise VpclabError(f"{what}: {argv[0]} is not installed; run ./setup.sh")
    except subprocess.TimeoutExpired:
        raise VpclabError(f"{what}: `{' '.join(argv)}` did not finish in {timeout:.0f} s")
    if done.returncode != 0:
        raise VpclabError(f"{what}: `{' '.join(argv)}` failed (exit {done.returncode}): "
                          f"{(done.stderr or done.stdout).strip()}")
    return done.stdout
