"""However a script ends, the labs it started are removed.

A `with vpclab.Lab(...)` block removes its lab when the block ends normally, on an
exception, or on Ctrl-C (KeyboardInterrupt unwinds through it). Two endings need
help. SIGTERM and SIGHUP (`kill`, a closed terminal, a CI timeout) kill Python
by default without unwinding anything: while a script owns a lab they become
SystemExit, so `with` blocks and `finally` clauses run. A script that calls
`lab.start()` and never `lab.down()` (Mininet's `net.start()` without
`net.stop()`) gets its labs removed at exit. And the removal itself is not cut in
half by an impatient second Ctrl-C: signals wait until it is done.
"""
from __future__ import annotations

import atexit
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

_owned: dict[int, Callable[[], object]] = {}
_installed = False
TERMINATING = (signal.SIGTERM, signal.SIGHUP)


def own(key: int, down: Callable[[], object]) -> None:
    """Remember a started lab's `down` until `release(key)`."""
    _owned[key] = down
    _install()


def release(key: int) -> None:
    _owned.pop(key, None)


def _install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    atexit.register(_down_all)
    if threading.current_thread() is threading.main_thread():
        for sig in TERMINATING:
            if signal.getsignal(sig) is signal.SIG_DFL:     # a script's own handler stays
                signal.signal(sig, _exit_on_signal)


def _exit_on_signal(signum: int, frame) -> None:
    raise SystemExit(128 + signum)


def _down_all() -> None:
    for down in list(_owned.values()):
        try:
            down()
        except Exception as exc:  # noqa: BLE001 - at exit, say it and go on with the others
            print(f"vpclab: a lab could not be removed at exit: {exc}", file=sys.stderr)


@contextmanager
def uninterrupted() -> Iterator[None]:
    """Run the block to its end even if SIGINT, SIGTERM or SIGHUP arrive; deliver the
    first of them afterwards. Only the main thread receives signals: elsewhere a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, *TERMINATING)}
    saved = {sig: handler for sig, handler in saved.items() if handler is not None}
    for sig in saved:
        signal.signal(sig, lambda signum, frame: pending.append(signum))
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        if pending:
            signal.raise_signal(pending[0])
