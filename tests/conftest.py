"""Integration tests need root; a user with sudo gets pytest re-run through sudo, but only
when integration tests were selected: the unit tests run as whoever runs them. Under CI,
Hypothesis draws the same examples on every run."""
from __future__ import annotations

import os
import shutil
import sys

from hypothesis import settings

# CI explores the same examples every run: a fuzz test there fails on a change, not at random
# (a local run still draws new examples each time and finds what CI has not tried)
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


def needs_sudo(euid: int, has_sudo: bool, selected: list[str], no_sudo: bool) -> bool:
    """Re-run under sudo only for a user who selected an integration test and can sudo."""
    wants_root = any("tests/integration/" in path for path in selected)
    return euid != 0 and has_sudo and not no_sudo and wants_root


def pytest_collection_finish(session):
    selected = [str(item.fspath) for item in session.items]
    if needs_sudo(os.geteuid(), bool(shutil.which("sudo")), selected,
                  bool(os.environ.get("VPCLAB_NO_SUDO"))):
        print("vpclab tests: root needed for the integration tests; re-running with sudo",
              file=sys.stderr)
        # as root, write nothing into the user's checkout: no bytecode caches, and
        # Hypothesis keeps its examples outside it (both would be root's)
        os.execvp("sudo", ["sudo", "--", "env", "PYTHONDONTWRITEBYTECODE=1",
                           f"HYPOTHESIS_STORAGE_DIRECTORY=/var/tmp/vpclab-hypothesis-{os.getuid()}",
                           sys.executable, "-m", "pytest", *session.config.invocation_params.args])
