"""However a script ends, the labs it started are removed.

A `with vpclab.Lab(...)` block removes its lab when the block ends normally, on an
exception, or on Ctrl-C (KeyboardInterrupt unwinds through it). Three endings need
help:

- SIGTERM and SIGHUP (`kill`, a closed terminal, a CI timeout) kill Python by default
  without unwinding anything. While a lab is being started or is owned, they raise
  `Terminated`, a KeyboardInterrupt: `with` blocks and `finally` clauses run, and
  pytest stops the session (running its teardowns) instead of counting a failed test.
  A second one while the first unwinds kills as before. When no lab is owned any more,
  the script's own handlers are back.
- A script that calls `lab.start()` and never `lab.down()` (Mininet's `net.start()`
  without `net.stop()`) gets its labs removed at exit.
- The removal itself is not cut in half by an impatient second Ctrl-C: signals wait
  until it is done (`uninterrupted`).

Only the main thread receives signals, so handlers are installed only from it; a lab
started from another thread is still removed at exit.
"""
from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

TERMINATING = (signal.SIGTERM, signal.SIGHUP)

_owned: dict[int, Callable[[], object]] = {}
_saved: dict[int, object] = {}          # the handlers ours replaced, to put back
_starting = 0                           # labs being started right now
_pid = os.getpid()                      # a forked child must not remove its parent's labs
_atexit_registered = False


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived while a lab was owned: unwind as Ctrl-C would."""

    def __init__(self, signum: int):
        super().__init__(f"terminated by {signal.Signals(signum).name}")
        self.signum = signum


def own(key: int, down: Callable[[], object]) -> None:
    """Remember a started lab's `down` until `release(key)`."""
    _owned[key] = down
    _install()


def release(key: int) -> None:
    _owned.pop(key, None)
    _restore_if_idle()


@contextmanager
def starting() -> Iterator[None]:
    """While a lab is being built, SIGTERM/SIGHUP also unwind (the build removes what it made)."""
    global _starting
    _starting += 1
    _install()
    try:
        yield
    finally:
        _starting -= 1
        _restore_if_idle()


def _install() -> None:
    global _atexit_registered
    if not _atexit_registered:
        atexit.register(_down_all)
        _atexit_registered = True
    if _saved or threading.current_thread() is not threading.main_thread():
        return
    for sig in TERMINATING:
        handler = signal.getsignal(sig)
        if handler is signal.SIG_DFL:       # a script's own handler stays its own
            _saved[sig] = handler
            signal.signal(sig, _terminate)


def _idle() -> bool:
    return not _owned and not _starting


def _restore_if_idle() -> None:
    if not _idle() or threading.current_thread() is not threading.main_thread():
        return
    for sig, handler in _saved.items():
        if signal.getsignal(sig) is _terminate:
            signal.signal(sig, handler)
    _saved.clear()


def _terminate(signum: int, frame) -> None:
    signal.signal(signum, signal.SIG_DFL)     # a second one kills, as it always did
    raise Terminated(signum)


def _down_all() -> None:
    if os.getpid() != _pid:
        return
    with uninterrupted():
        for down in list(_owned.values()):
            try:
                down()
            except BaseException as exc:  # noqa: BLE001 - at exit, say it and go on with the others
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
            if handler is _terminate and _idle():      # the block released the last lab
                handler = _saved.pop(sig, signal.SIG_DFL)
            signal.signal(sig, handler)
        if pending:
            signal.raise_signal(pending[0])
