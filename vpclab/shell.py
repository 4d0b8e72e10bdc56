"""Running commands, in the lab's namespaces or here, with errors that say what failed."""
from __future__ import annotations

import subprocess
from typing import Mapping

from vpclab.errors import VpclabError


def in_netns_of(pid: int, argv: list[str]) -> list[str]:
    """argv to run a command in the network namespace of a node's process."""
    return ["nsenter", f"--net=/proc/{pid}/ns/net", "--", *argv]


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
