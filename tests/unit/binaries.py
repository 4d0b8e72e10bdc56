"""Unit tests that read their answer from a real tool (tcpdump, ovs-ofctl) without root.

Such a test skips, saying which tool and why, where the tool is not installed (a laptop
running `pytest tests/unit`); under CI (CI set) it runs anyway, so a missing tool fails
there instead of passing CI by skipping.
"""
from __future__ import annotations

import os
import shutil

import pytest


def needs_binary(name: str, purpose: str) -> pytest.MarkDecorator:
    missing = shutil.which(name) is None and not os.environ.get("CI")
    return pytest.mark.skipif(missing, reason=f"{name} is not installed; it {purpose} "
                                              f"(./setup.sh installs it)")
