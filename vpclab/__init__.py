"""vpclab: the inside of an AWS VPC on one Linux machine, driven from Python.

    import vpclab

    with vpclab.Lab("topologies/seed.yaml", mode="on-demand") as lab:
        assert lab.ping("ZIGI-VM1", "ZIGI-VM2")

The reference is docs/api.md. The names below are the public API; every other
module is internal. They are imported on first use, so `import vpclab.running.venv` (what
the examples do first, under any Python) needs nothing beyond the standard library.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["Lab", "LabCapture", "Comparison", "ExecResult", "ChangeReport", "VpclabError",
           "CheckFailed", "ChangeUnconfirmed", "TopologyError", "compare_captures", "wait_until"]

_WHERE = {"Lab": "vpclab.lab", "LabCapture": "vpclab.packets.capture", "Comparison": "vpclab.packets.compare",
          "compare_captures": "vpclab.packets.compare", "ExecResult": "vpclab.results",
          "ChangeReport": "vpclab.results", "ChangeUnconfirmed": "vpclab.results",
          "VpclabError": "vpclab.errors", "CheckFailed": "vpclab.errors",
          "TopologyError": "vpclab.model.validation", "wait_until": "vpclab.running.wait"}

if TYPE_CHECKING:
    from vpclab.packets.capture import LabCapture
    from vpclab.packets.compare import Comparison, compare_captures
    from vpclab.errors import CheckFailed, VpclabError
    from vpclab.lab import Lab
    from vpclab.results import ChangeReport, ChangeUnconfirmed, ExecResult
    from vpclab.model.validation import TopologyError
    from vpclab.running.wait import wait_until


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'vpclab' has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
