"""What a learner's code did in a lab, as the mapping service told it in its events.

Every part a learner may replace (ryu_apps/learner_part.py) logs `learner_called` before a
call, then `learner_answer` (what the service did with the answer) or `learner_error` (why
it did nothing): each with the function's name and what the learner printed. A check counts
the events before its probe (`mark`), then reads those of its probe only, once every call
it caused has ended (`settled`): one probe's crash is never blamed on another's.
"""
from __future__ import annotations

import time

ENDED = ("learner_answer", "learner_error")
PRINTED_LIMIT = 3000          # characters of the learner's prints shown in a check's evidence


def mark(lab) -> int:
    """How many events the lab's mapping service has logged: a probe's own come after."""
    return sum(1 for _ in lab.state.events.read())


def since(lab, start: int) -> list[dict]:
    return list(lab.state.events.read())[start:]


def calls(events: list[dict], function: str | None = None) -> list[dict]:
    """The events of the learner's calls (of one function, or of any)."""
    return [e for e in events if e["event"] in ("learner_called", *ENDED)
            and (function is None or e.get("function") == function)]


def settled(lab, start: int, timeout: float, function: str | None = None) -> list[dict]:
    """The events since `start`, once every call of the learner's code (of `function`, or
    of any) since then ended, at most `timeout` s later."""
    deadline = time.monotonic() + timeout
    while True:
        events = since(lab, start)
        mine = calls(events, function)
        called = sum(e["event"] == "learner_called" for e in mine)
        if sum(e["event"] in ENDED for e in mine) >= called or time.monotonic() >= deadline:
            return events
        time.sleep(0.02)


def trouble(events: list[dict], function: str | None = None) -> dict | None:
    """The last learner_error among `events` (of `function`, or of any), or None."""
    errors = [e for e in calls(events, function) if e["event"] == "learner_error"]
    return errors[-1] if errors else None


def printed(events: list[dict], function: str | None = None, labelled: bool = False) -> str:
    """What the learner's code printed during these events ('' if nothing); `labelled`
    puts each call's function name before what it printed."""
    said = "".join((f"[{e.get('function') or 'loading'}] " if labelled else "") + e["output"]
                   for e in calls(events, function) if e["event"] in ENDED and e.get("output"))
    return said if len(said) <= PRINTED_LIMIT else said[:PRINTED_LIMIT] + "\n[more cut]\n"
