"""What every part of the mapping service a learner may replace has in common.

A classroom exercise runs one learner file (vpclab.learner: learner.json in the lab's
state folder) in place of one part of the service: the ARP answer (02), the tunnel (03),
the invalidation after a move (05), the receive check (06). The file is loaded once, when
the service starts, in vpclab.sandbox as an unprivileged user; each question is one call.

Every call is told in events, which the exercise's checks read and show the learner:
`learner_called` before it (so a check knows a call is under way), then `learner_answer`
(what the service did with it) or `learner_error` (why it did nothing): each with the
function's name and what the learner printed. No failure of the learner's code, and no
malformed answer, ever escapes into the service.
"""
from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

from vpclab.learner import read_learner
from vpclab.router.mapping import Mapping
from vpclab.router.pipeline import Router
from vpclab.sandbox import LearnerCode, LearnerError, LearnerTimeout

MAX_EVENT_OUTPUT = 4096      # characters of the learner's prints kept in an event


class BadAnswer(ValueError):
    """The learner's function returned something the service cannot carry out."""


class NoAnswer(Exception):
    """The learner's call failed or its answer was refused (already told in an event)."""


def printed(text: str) -> str:
    """What the learner printed, as kept in an event (the first MAX_EVENT_OUTPUT characters)."""
    text = text or ""
    return text if len(text) <= MAX_EVENT_OUTPUT else text[:MAX_EVENT_OUTPUT] + "\n[output cut]\n"


def short(value: object) -> str:
    text = repr(value)
    return text if len(text) < 80 else text[:77] + "..."


def ipv4(value: object) -> IPv4Address:
    """A learner's address, or BadAnswer saying it is not one."""
    try:
        return IPv4Address(value)
    except ValueError:
        raise BadAnswer(f"{short(value)} is not an IPv4 address") from None


def mapping_argument(mapping: Mapping) -> dict:
    """One mapping as the learner's functions see it: plain strings and numbers."""
    return {"vpc": mapping.vpc, "vni": mapping.vni, "ip": str(mapping.ip), "mac": mapping.mac,
            "eni": mapping.eni, "host": mapping.host, "host_ip": str(mapping.host_ip)}


def router_argument(router: Router, underlay_ip: str) -> dict:
    """A virtual router as the learner's functions see it: its host and its VMs' ports."""
    return {"host": router.host, "underlay_ip": underlay_ip,
            "ports": [{"port": p.ofport, **mapping_argument(p.mapping)} for p in router.ports]}


class LearnerPart:
    """One learner file wired into the mapping service, for the hook HOOK of learner.json."""

    HOOK = ""

    def __init__(self, service, code: LearnerCode):
        self.service, self.code = service, code

    @classmethod
    def for_lab(cls, service) -> "LearnerPart | None":
        """The lab's learner code for this part, loaded; None if the lab runs the service's own."""
        record = read_learner(service.state_dir)
        if not record or cls.HOOK not in record["hooks"]:
            return None
        hook = record["hooks"][cls.HOOK]
        code = LearnerCode(hook["source"], hook["filename"],
                           user=tuple(record["user"]) if record["user"] else None)
        self = cls(service, code)
        try:
            code.start()            # here, in the thread that lives as long as the service
        except LearnerError as exc:
            self.failed(exc)        # said now; every call will say it again
        return self

    def failed(self, exc: Exception, output: str | None = None, **where) -> None:
        """A learner_error event: how the learner's code failed, and what it printed."""
        if output is None:
            output = getattr(exc, "output", "")
        self.service.event_log.write(
            "learner_error", **where, kind=getattr(exc, "kind", "") or type(exc).__name__,
            timeout=isinstance(exc, LearnerTimeout), message=str(exc),
            traceback=getattr(exc, "traceback", ""), output=printed(output))

    def ask(self, function: str, args: tuple, parse, **where) -> tuple[Any, str]:
        """`parse(function(*args))` and what the call printed; NoAnswer (after a
        learner_error event) if the call failed or `parse` raised BadAnswer."""
        where = {"function": function, **where}
        self.service.event_log.write("learner_called", **where)
        output = ""
        try:
            result = self.code.call(function, *args)
            output = self.code.output
            return parse(result), output
        except LearnerError as exc:
            # its own prints; a BadResult's are those of the call that returned it
            self.failed(exc, self.code.output if exc.kind == "BadResult" else exc.output, **where)
        except BadAnswer as exc:
            self.failed(exc, output, **where)
        except Exception as exc:  # noqa: BLE001 - the learner's answer never crashes the service
            self.failed(BadAnswer(f"the mapping service could not read your answer: "
                                  f"{type(exc).__name__}: {exc}"), output, **where)
        raise NoAnswer(function)

    def answered(self, function: str, output: str, **what) -> None:
        """A learner_answer event: what the service did with the answer."""
        self.service.event_log.write("learner_answer", function=function, **what,
                                     output=printed(output))

    def underlay_ip(self, host: str) -> str:
        hosts = self.service.inventory.topology.hosts
        return str(hosts[host].underlay_ip) if host in hosts else ""

    def close(self) -> None:
        self.code.close()
