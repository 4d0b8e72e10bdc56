"""What the Python API hands back: a command's result, a change's report.

Each is a plain value with the figures a script asserts on, and a `str()` that is
exactly what the CLI prints for the same thing, so a script and a terminal say
the same words.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vpclab.errors import CheckFailed, VpclabError


@dataclass(frozen=True)
class ExecResult:
    """A command that ran inside a node, and what it printed."""
    node: str
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def check(self) -> "ExecResult":
        """This result if the command succeeded; else a VpclabError with its output."""
        if not self.ok:
            raise VpclabError(f"{self.node}$ {' '.join(self.argv)} failed (exit "
                              f"{self.returncode}): {(self.stderr or self.stdout).strip()}")
        return self


@dataclass(frozen=True)
class ChangeReport:
    """A live change (move, add, delete) as the mapping service and the runner reported it.

    `invalidated` names the routers that dropped a cached entry because of the change;
    `routers` has each affected router's flows added and deleted and its invalidations.
    """
    change: str
    converged_ms: float
    routers: dict[str, dict[str, int]]
    unconfirmed: dict[str, str] = field(default_factory=dict)
    reattached_ms: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_result(cls, result: dict[str, Any]) -> "ChangeReport":
        """The report of the runner's answer to a change (its dict stays in `details`)."""
        why = result.get("unconfirmed_why") or {}
        return cls(result["change"], result["converged_ms"], result["routers"],
                   {host: why.get(host, "no confirmation") for host in result.get("unconfirmed") or []},
                   result.get("reattached_ms"), result)

    @property
    def invalidated(self) -> list[str]:
        return sorted(host for host, r in self.routers.items() if r.get("invalidated"))

    @property
    def confirmed(self) -> bool:
        return not self.unconfirmed

    def __str__(self) -> str:
        touched = ", ".join(f"{host} (+{r['added']} -{r['deleted']} flows, {r['invalidated']} "
                            f"invalidated)" for host, r in self.routers.items()) or "none"
        if self.unconfirmed:
            lines = [f"{self.change}: UNCONFIRMED by {len(self.unconfirmed)} affected router(s) "
                     f"after {self.converged_ms} ms"]
        else:
            lines = [f"{self.change}: confirmed by every affected router in {self.converged_ms} ms"]
        lines.append(f"  routers: {touched}")
        lines += [f"  NOT confirmed by {host}: {why}" for host, why in self.unconfirmed.items()]
        return "\n".join(lines)


class ChangeUnconfirmed(CheckFailed):
    """A change was made, but some affected router did not confirm it in time."""

    def __init__(self, report: ChangeReport):
        self.report = report
        super().__init__(str(report))
