"""Integration tests run real labs as root, through the vpclab_lab fixture of the project's
own pytest plugin (vpclab/pytest_plugin.py, loaded in pytest.ini): labs a test starts are
removed when it ends, and a failed test's captures, logs and flows are kept and printed."""
from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
def needs_root():
    if os.geteuid() != 0:
        pytest.fail("integration tests need root (namespaces, Open vSwitch): run pytest as "
                    "root, or as a user with sudo so tests/conftest.py re-runs it")
