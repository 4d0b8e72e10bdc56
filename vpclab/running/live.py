"""Changing a running lab: move a VM to another host, add one, delete one.

The CLI asks (the three functions at the bottom send one control request);
the runner performs (`LiveChanges`, behind the control socket's lock), so
every change to nodes, links, router ports and nodes.json is made by the one
process that owns them, one at a time.

The mapping service is told first (it validates, reprograms every affected
router and waits for their barriers); then the fabric follows. A move
re-attaches the VM's interface by moving the router end of its veth into the
new host's namespace and onto that host's br-int with the same port number:
the VM keeps its eth0, IP, MAC and neighbour cache, as a migrated instance
keeps its ENI. If re-plugging fails, the move is rolled back: the port goes
back onto the old host's router and the mapping back to the old host.

Fault injection (tests only): the runner honours `VPCLAB_FAULT=replug` in its
environment (set it for `vpclab up`): every move then fails right after the
new host's router has taken the port, so the rollback has a real half-made
move to undo.
"""
from __future__ import annotations

import logging
import os
import time
from ipaddress import IPv4Address
from typing import Any

from vpclab.running import api_client, control
from vpclab.errors import VpclabError
from vpclab.model.plan import eni_key, vm_plan
from vpclab.running.state import LabState
from vpclab.model.topology import Vm

FAULT_ENV = "VPCLAB_FAULT"
log = logging.getLogger("vpclab.running.live")

REQUESTS = {"add": (("name", "vpc", "host", "ip"), ("mac", "eni", "source_dest_check")),
            "move": (("vm", "host"), ()),
            "delete": (("vm",), ())}
FLAGS = ("source_dest_check",)      # a request's yes/no arguments; every other one is text


def _inject(fault: str) -> None:
    if fault in os.environ.get(FAULT_ENV, "").split(","):
        raise VpclabError(f"fault injected ({FAULT_ENV}={fault})")


class LiveChanges:
    """The runner's side: each method is one change, made whole or undone."""

    def __init__(self, fabric):
        self.fabric = fabric
        self.state: LabState = fabric.state

    def __call__(self, request: dict[str, Any]) -> dict:
        if self.fabric.stopping:
            raise VpclabError(f"lab {self.state.name!r} is being taken down; no change now")
        op = request.get("op")
        if op not in REQUESTS:
            raise VpclabError(f"unknown request {op!r}; known: {', '.join(REQUESTS)}")
        required, optional = REQUESTS[op]
        args = {key: request.get(key) for key in required + optional}
        for key, value in args.items():
            kind = bool if key in FLAGS else str
            if (key in required or value is not None) and not isinstance(value, kind):
                raise VpclabError(f"{op}: {key!r} must be {kind.__name__}, got {value!r}")
        return {"add": self.add_vm, "move": self.move_vm, "delete": self.delete_vm}[op](**args)

    # -- checks that name what exists ------------------------------------------------------
    def _host(self, name: str) -> None:
        if name not in self.fabric.host_nodes:
            raise VpclabError(f"lab {self.state.name!r} has no host {name!r}; hosts: "
                              f"{', '.join(self.fabric.host_nodes)}")

    def _vm(self, name: str) -> None:
        if name not in self.fabric.vm_nodes:
            raise VpclabError(f"lab {self.state.name!r} has no VM {name!r}; VMs: "
                              f"{', '.join(self.fabric.vm_nodes) or 'none'}")

    # -- changes ----------------------------------------------------------------------------
    def move_vm(self, vm: str, host: str) -> dict:
        self._vm(vm)
        self._host(host)
        old = self.fabric.vm_plans[vm].vm.host
        result = api_client.call(self.state, "PUT", f"/vms/{vm}", {"host": host})
        started = time.monotonic()
        try:
            self.fabric.move_router_end(vm, host)
            self.fabric.plug_port(vm, host)
            _inject("replug")
            self.fabric.unplug_port(vm, old)
        except Exception as exc:
            undone = self._roll_back_move(vm, old, host)
            raise VpclabError(f"move {vm} to {host} failed: {exc}\n  {undone}")
        finally:
            self.fabric.write_nodes()
        return {**result, "reattached_ms": round((time.monotonic() - started) * 1000, 1)}

    def _roll_back_move(self, vm: str, old: str, new: str) -> str:
        """Put everything back where it was; say what could not be."""
        failed = []
        steps = [("unplug from " + new, lambda: self.fabric.unplug_port(vm, new)),
                 ("move the interface back", lambda: self.fabric.move_router_end(vm, old)),
                 ("plug into " + old, lambda: self.fabric.plug_port(vm, old, again=True)),
                 ("mapping back to " + old,
                  lambda: api_client.call(self.state, "PUT", f"/vms/{vm}", {"host": old}))]
        for what, step in steps:
            try:
                step()
            except Exception as exc:
                failed.append(f"{what}: {exc}")
        if failed:
            return (f"rolling back left {vm} half-moved ({'; '.join(failed)}); "
                    f"`vpclab down {self.state.name}` and up again")
        return f"rolled back: {vm} is on {old} again, and so is its mapping"

    def add_vm(self, name: str, vpc: str, host: str, ip: str, mac: str | None = None,
               eni: str | None = None, source_dest_check: bool | None = None) -> dict:
        if name in self.fabric.vm_nodes or name in self.fabric.host_nodes:
            raise VpclabError(f"lab {self.state.name!r} already has a node named {name!r}")
        self._host(host)
        result = api_client.call(self.state, "POST", "/vms", {
            "name": name, "vpc": vpc, "host": host, "ip": ip, "mac": mac, "eni": eni,
            "source_dest_check": source_dest_check})
        # as the mapping service validated it (its subnet inferred from its address)
        vm = Vm(name, eni_key(result["port"]), vpc, host, IPv4Address(ip), result["mac"],
                result["eni"], result.get("source_dest_check", True),
                ttl=self.fabric.plan.topology.default_ttl, subnet=result.get("subnet"))
        plan = vm_plan(vm, result["port"])
        try:
            if plan.port_name != result["port_name"]:   # one naming rule, or ports go astray
                raise VpclabError(f"the mapping service named {name}'s port "
                                  f"{result['port_name']}, the fabric {plan.port_name}")
            self.fabric.plug_vm(plan)
            self.fabric.plug_port(name, host)
        except Exception:
            self._undo_add(name, host)
            raise
        finally:
            self.fabric.write_nodes()
        return result

    def _undo_add(self, name: str, host: str) -> None:
        """Each step on its own: one that fails must not keep the mapping of a VM the
        fabric no longer has (or the other way round)."""
        steps = [lambda: api_client.call(self.state, "DELETE", f"/vms/{name}")]
        if name in self.fabric.vm_nodes:
            steps = [lambda: self.fabric.unplug_port(name, host),
                     lambda: self.fabric.remove_vm(name)] + steps
        for step in steps:
            try:
                step()
            except Exception:   # noqa: BLE001 - the original error is what the user sees
                log.exception("undoing the add of %s", name)

    def delete_vm(self, vm: str) -> dict:
        self._vm(vm)
        result = api_client.call(self.state, "DELETE", f"/vms/{vm}")
        try:
            self.fabric.unplug_port(vm, self.fabric.router_end_host(vm))
            self.fabric.remove_vm(vm)
        finally:
            self.fabric.write_nodes()
        return result


# -- the CLI's side: ask the runner -------------------------------------------------------------
def move_vm(state: LabState, name: str, host: str) -> dict:
    return control.request(state, "move", vm=name, host=host)


def add_vm(state: LabState, name: str, vpc: str, host: str, ip: str,
           mac: str | None = None, eni: str | None = None,
           source_dest_check: bool | None = None) -> dict:
    return control.request(state, "add", name=name, vpc=vpc, host=host, ip=ip, mac=mac, eni=eni,
                           source_dest_check=source_dest_check)


def delete_vm(state: LabState, name: str) -> dict:
    return control.request(state, "delete", vm=name)
