"""pytest plugin: real vpclab labs for a test, always removed, kept evidence when it fails.

Load it with `pytest -p vpclab.pytest_plugin` (or `addopts = -p vpclab.pytest_plugin` in
pytest.ini), run pytest as root, then:

    def test_first_ping(vpclab_lab):
        lab = vpclab_lab("topologies/seed.yaml", mode="on-demand")
        assert lab.ping("ZIGI-VM1", "ZIGI-VM2")

Each call of the factory brings up one lab (a new name each time, unless you give one)
and returns its `vpclab.Lab` once it is ready. Whatever the test's outcome, every lab
it started is removed. When the test fails, its labs' evidence is kept, as FAUCET's
test harness keeps a failed test's folder: the captures the test made, the runner's
and mapping service's logs and events, and every host's Open vSwitch configuration
and flows, in `vpclab-failures/TEST/LAB/` (`--vpclab-keep DIR` puts it elsewhere; each
capture's files in `captures/N-FOLDER/`); the report names the folder. Root reads the
evidence, but under sudo the folder is written by the user behind sudo, so all of it is
theirs (vpclab/running/evidence.py). Only labs that started are kept; a test whose labs all
failed to start keeps nothing. `vpclab_module_lab` is the same factory for a whole module.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Iterator

import pytest

from vpclab.running import evidence
from vpclab.errors import VpclabError
from vpclab.lab import Lab, TopologySource
from vpclab.model.names import unique_name  # noqa: F401 - part of the plugin's API

KEPT = pytest.StashKey[list]()


def pytest_addoption(parser) -> None:
    parser.addoption("--vpclab-keep", default="vpclab-failures", metavar="DIR",
                     help="where vpclab_lab keeps a failed test's captures, logs and flows "
                          "(default: vpclab-failures, under the rootdir)")


def pytest_configure(config) -> None:
    config.stash[KEPT] = []


def pytest_terminal_summary(terminalreporter, config) -> None:
    kept = config.stash.get(KEPT, [])
    if kept:
        terminalreporter.section("vpclab: failed tests' labs kept")
        for test, folder in kept:
            terminalreporter.write_line(f"{test}: {folder}")


class LabFactory:
    """What `vpclab_lab` is: call it to bring up a lab; it removes them all at the end."""

    def __init__(self, tag: str):
        self.tag = tag
        self.labs: list[Lab] = []         # the labs whose start() returned: only those are ours

    def __call__(self, topology: TopologySource, *, name: str | None = None,
                 mode: str | None = None, tag: str | None = None) -> Lab:
        """Bring up `topology` (a file or dict) and return the ready `Lab`. The default name is
        unique (t + 4 hex digits + the tag or test name), so tests can run side by side."""
        lab = Lab(topology, name=name or unique_name(tag or self.tag), mode=mode)
        lab.start()             # a lab that fails to start has removed what it made
        self.labs.append(lab)
        return lab

    def keep(self, folder: Path) -> Path | None:
        """Keep every running lab's evidence in a new folder `folder` (-2, -3... if taken),
        one `LAB/` in it per lab; None if no lab is running. Root reads the evidence into
        memory; under sudo, the folder is written by the user behind sudo (vpclab/running/evidence.py),
        so nothing in it is root's. What was left out is listed in LAB/not-kept.txt."""
        files = evidence.gather(self.labs)
        if not files:
            return None
        return evidence.keep(folder.parent, folder.name, files)

    def remove_all(self) -> None:
        """Remove every lab, each on its own: one that fails does not keep the others; raise
        one VpclabError naming all that failed."""
        errors = []
        for lab in self.labs:
            try:
                lab.down()
            except Exception as exc:  # noqa: BLE001 - the others are removed first
                errors.append(f"{lab.name}: {type(exc).__name__}: {exc}")
        if errors:
            raise VpclabError("labs not removed:\n" + "\n".join(errors))


def _factory(request, tag: str) -> Iterator[LabFactory]:
    factory = LabFactory(tag)
    failures_before = request.session.testsfailed
    yield factory
    # a test's own report is logged before its fixtures are torn down: this counts it
    failed = request.session.testsfailed > failures_before
    try:
        if failed and factory.labs:
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:100]
            root = Path(request.config.getoption("--vpclab-keep"))
            if not root.is_absolute():
                root = Path(request.config.rootpath) / root
            folder = factory.keep(root / name)
            if folder is not None:
                request.config.stash[KEPT].append((request.node.nodeid, folder))
                print(f"vpclab: this test's labs are kept in {folder}")
    finally:
        factory.remove_all()


@pytest.fixture
def vpclab_lab(request) -> Iterator[Callable[..., Lab]]:
    """A factory: `vpclab_lab(topology, name=None, mode=None)` -> a ready Lab, removed after
    the test; on failure its captures, logs and flows are kept (see --vpclab-keep)."""
    yield from _factory(request, request.node.name)


@pytest.fixture(scope="module")
def vpclab_module_lab(request) -> Iterator[Callable[..., Lab]]:
    """`vpclab_lab` for a whole module: labs live until its last test ends."""
    yield from _factory(request, Path(str(request.node.fspath)).stem.removeprefix("test_"))
