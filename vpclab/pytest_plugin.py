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
and flows, in `vpclab-failures/TEST/` (`--vpclab-keep DIR` puts it elsewhere); the
report names the folder. `vpclab_module_lab` is the same factory for a whole module.
"""
from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest

from vpclab.errors import VpclabError
from vpclab.lab import Lab, TopologySource
from vpclab.ownership import OutputDir

KEPT = pytest.StashKey[list]()
EVIDENCE = ("*.log", "*.jsonl", "*.json", "*.yaml")


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
        self.labs: list[Lab] = []

    def __call__(self, topology: TopologySource, *, name: str | None = None,
                 mode: str | None = None, tag: str | None = None) -> Lab:
        """Bring up `topology` (a file or dict) and return the ready `Lab`. The default name is
        unique (t + 4 hex digits + the tag or test name), so tests can run side by side."""
        lab = Lab(topology, name=name or unique_name(tag or self.tag), mode=mode)
        self.labs.append(lab)
        return lab.start()

    def keep(self, folder: Path) -> Path:
        """Copy every lab's evidence into `folder/LAB/` (a new folder: -2, -3... if taken);
        what cannot be read is noted in its place."""
        folder = new_folder(folder)
        output = OutputDir(folder)
        output.make()
        for lab in self.labs:
            if lab._state is not None:
                _keep_lab(lab, folder / lab.name)
        output.give_back_tree()
        return folder

    def remove_all(self) -> None:
        errors = []
        for lab in self.labs:
            try:
                lab.down()
            except VpclabError as exc:
                errors.append(f"{lab.name}: {exc}")
        if errors:
            raise VpclabError("labs not removed:\n" + "\n".join(errors))


def new_folder(path: Path) -> Path:
    candidate, n = path, 1
    while os.path.lexists(candidate):
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate


def unique_name(tag: str) -> str:
    """A lab name no other test uses: t, 4 hex digits, then the tag made name-safe."""
    safe = re.sub(r"[^a-z0-9-]+", "-", tag.lower()).strip("-")
    return f"t{uuid.uuid4().hex[:4]}-{safe}"[:20].rstrip("-")


def _keep_lab(lab: Lab, folder: Path) -> None:
    """The lab's logs and events, each host's OVS configuration and flows, its captures.
    Flows and the mapping service's log are also printed: CI shows only the output."""
    folder.mkdir(parents=True, exist_ok=True)
    state_dir = lab.state.dir
    for pattern in EVIDENCE:
        for path in state_dir.rglob(pattern):
            if path.is_file() and not path.is_symlink():
                target = folder / path.relative_to(state_dir)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
    for host in lab.hosts:
        for what, argv in (("ovs", ["ovs-vsctl", "show"]),
                           ("flows", ["ovs-ofctl", "-O", "OpenFlow13", "dump-flows",
                                      f"unix:{lab.state.host_dir(lab.nodes()[host]['node'])}/br-int.mgmt"])):
            try:
                done = lab.exec(host, *argv, timeout=20)
                text = done.stdout + done.stderr
            except VpclabError as exc:
                text = f"(could not run {' '.join(argv)}: {exc})\n"
            (folder / f"{host}.{what}.txt").write_text(text)
            print(f"--- {lab.name} {host}: {' '.join(argv[:2])}\n{text}")
    log = lab.log("mapping-service")
    if log.exists():
        print(f"--- {log} (end)\n{log.read_text()[-3000:]}")
    for capture in lab.captures:
        if capture.dir.is_dir():
            shutil.copytree(capture.dir, folder / "captures" / capture.dir.name, dirs_exist_ok=True)


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
