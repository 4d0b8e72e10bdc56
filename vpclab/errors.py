"""Errors meant for the user: a message that names the fix, and an exit code.

The CLI prints these without a traceback. Anything else that escapes is a bug.
"""
from __future__ import annotations

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2


class VpclabError(Exception):
    """A problem the user can fix; `str()` says what and how."""

    exit_code = EXIT_BAD_INPUT


class CheckFailed(VpclabError):
    """The lab ran, but what it showed is not what was expected."""

    exit_code = EXIT_CHECK_FAILED
