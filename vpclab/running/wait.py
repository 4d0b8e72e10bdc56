"""The one wait primitive (OVS testsuite style): try now, then again soon, then less often.

Readiness is waited on, never slept for: a fixed sleep is either too long
(slow labs) or too short (flaky labs).
"""
from __future__ import annotations

import time
from typing import Callable, TypeVar

from vpclab.errors import VpclabError

T = TypeVar("T")


def wait_until(check: Callable[[], T], what: str, timeout: float = 10.0,
               on_failure: Callable[[], str] | None = None) -> T:
    """Return check()'s first truthy result; raise VpclabError naming `what` on timeout."""
    start = time.monotonic()
    delay = 0.005
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() - start > timeout:
            detail = on_failure() if on_failure else ""
            raise VpclabError(f"timed out after {timeout:.0f} s waiting for {what}"
                              + (f"\n{detail}" if detail else ""))
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
