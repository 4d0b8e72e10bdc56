"""Real labs for integration tests: unique names, cleanup, diagnostics on failure.

Each test gets a `labs` factory. Labs it starts are removed when it ends;
when a test fails, the OVS configuration and flows of every host, the mapping
service's events and log are printed so the failure can be read from CI.
"""
from __future__ import annotations

import os
import uuid

import pytest

from tests.integration.labtools import dump_flows, host_ovs
from vpclab import lifecycle
from vpclab.state import LabState


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
def needs_root():
    if os.geteuid() != 0:
        pytest.fail("integration tests need root (namespaces, Open vSwitch): run pytest as "
                    "root, or as a user with sudo so tests/conftest.py re-runs it")


class Labs:
    def __init__(self):
        self.states: list[LabState] = []

    def up(self, topology, tag: str, mode: str | None = None):
        name = f"t{uuid.uuid4().hex[:4]}-{tag}"[:20].rstrip("-")
        lifecycle.down(name)
        state, plan = lifecycle.up(topology, name, mode)
        self.states.append(state)
        return state, plan

    def diagnostics(self) -> str:
        parts = []
        for state in self.states:
            if not state.dir.exists():
                continue
            for name, node in state.nodes().items():
                if node["kind"] == "host":
                    parts.append(f"--- {state.name} {name}: ovs-vsctl show\n"
                                 + host_ovs(state, name, ["ovs-vsctl", "show"]))
                    parts.append(f"--- {state.name} {name}: flows\n" + dump_flows(state, name))
            parts.append(f"--- {state.name}: mapping service events\n"
                         + (state.events.path.read_text() if state.events.path.exists() else ""))
            log = state.log("mapping-service")
            parts.append(f"--- {log}\n" + (log.read_text()[-3000:] if log.exists() else ""))
        return "\n".join(parts)

    def down_all(self) -> None:
        for state in self.states:
            lifecycle.down(state.name)


@pytest.fixture
def labs(request):
    factory = Labs()
    yield factory
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        print(factory.diagnostics())
    factory.down_all()


@pytest.fixture(scope="module")
def module_labs():
    factory = Labs()
    yield factory
    factory.down_all()
