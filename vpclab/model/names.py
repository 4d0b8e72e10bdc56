"""The naming rules every name from a file, the command line or the API must pass.

A lab name becomes a directory under the state root, a network namespace
(`vpclab-<lab>`) and part of interface names, and vpclab runs as root: a
name that is not checked is a path that is not checked (`down ..` must never
reach `rm -r /run`). So there is one rule, tested with `fullmatch` (a `$`
would let a trailing newline through), and every entry point applies it.
"""
from __future__ import annotations

import re
import uuid

from vpclab.errors import VpclabError

LAB_NAME = re.compile(r"[a-z][a-z0-9-]{0,19}")
LAB_NAME_RULE = "lowercase letter first, then lowercase letters, digits or '-', at most 20"
DISPLAY_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")
DISPLAY_NAME_RULE = "names start with a letter and use letters, digits, '-' or '_' (max 32)"
STUDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
STUDENT_ID_RULE = "letters, digits, '_', '.', '-', a letter or digit first, at most 64"
INTERFACE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,14}")


def is_lab_name(value: object) -> bool:
    return isinstance(value, str) and LAB_NAME.fullmatch(value) is not None


def is_display_name(value: object) -> bool:
    return isinstance(value, str) and DISPLAY_NAME.fullmatch(value) is not None


def check_lab_name(value: object, what: str = "lab name") -> str:
    """`value` if it is a valid lab name; else a VpclabError (exit 2) that says the rule."""
    if not is_lab_name(value):
        raise VpclabError(f"{value!r} is not a valid {what}: {LAB_NAME_RULE} "
                          "(`vpclab status` lists the labs)")
    return value  # type: ignore[return-value]


def check_display_name(value: object, what: str = "name") -> str:
    """A VM or host name as a topology file allows it; else a VpclabError that says the rule."""
    if not is_display_name(value):
        raise VpclabError(f"{value!r} is not a valid {what}: {DISPLAY_NAME_RULE}")
    return value  # type: ignore[return-value]


def check_interface_name(value: str, node: str) -> str:
    """An interface name as the kernel allows it (it also names capture files)."""
    if not INTERFACE_NAME.fullmatch(value) or value in (".", ".."):
        raise VpclabError(f"{node}:{value}: {value!r} is not an interface name (letters, digits, "
                          "'_', '.', '-', at most 15; e.g. host1:eth0)")
    return value


def unique_name(tag: str) -> str:
    """A lab name no other test uses: t, 4 hex digits, then the tag made name-safe."""
    safe = re.sub(r"[^a-z0-9-]+", "-", tag.lower()).strip("-")
    return f"t{uuid.uuid4().hex[:4]}-{safe}"[:20].rstrip("-")


def check_student_id(value: object) -> str:
    """A student ID: it seeds a variant and names a folder of the grading report."""
    if not isinstance(value, str) or not STUDENT_ID.fullmatch(value):
        raise VpclabError(f"{value!r} is not a valid student ID: {STUDENT_ID_RULE}")
    return value
