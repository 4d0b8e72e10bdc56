"""The mapping service's API: JSON over HTTP on a unix socket in the lab's state directory.

A unix socket needs no address on any network and is reachable from the
machine's own namespace by path (its permissions are root's), so the CLI and
a student's `curl --unix-socket /run/vpclab/LAB/mapping.sock http://lab/mappings`
both work. Routes:

  GET    /mappings                 every mapping (VPC, VNI, IP, MAC, ENI, host)
  GET    /mappings/VPC/IP          one
  POST   /vms                      add an ENI: {name, vpc, host, ip, mac?, eni?, port?,
                                   source_dest_check?}
  PUT    /vms/NAME                 move it: {host}
  DELETE /vms/NAME                 remove it
  GET    /routers                  what each virtual router caches
  GET    /routes                   every route table's routes (state, subnets, who caches it)
  POST   /routes                   add a route: {table, destination, target}
  DELETE /routes                   delete one: {table, destination}
  GET    /stats                    counters of the service and of each router

Changes answer once every affected router has confirmed them (barrier), with
the time it took. Bad input is refused with 400 and a message; nothing changes.
"""
from __future__ import annotations

import json
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import AddressValueError, IPv4Address
from pathlib import Path

from vpclab.router.inventory import InventoryError
from vpclab.router.vpc_router import route_rows
from vpclab.running.state import remove_stale_socket

VM_FIELDS = ("vpc", "host", "ip", "mac", "eni", "source_dest_check")


class UnixHTTPServer(ThreadingHTTPServer):
    address_family = socket.AF_UNIX
    daemon_threads = True
    request_queue_size = 128      # many CLI processes at once (a unix socket refuses, not waits)

    def server_bind(self):
        remove_stale_socket(self.server_address)    # left by a previous, dead service
        self.socket.bind(self.server_address)
        os.chmod(self.server_address, 0o600)

    def get_request(self):
        request, _ = self.socket.accept()
        return request, ("local", 0)


def serve(service, path: Path) -> UnixHTTPServer:
    server = UnixHTTPServer(str(path), _handler_for(service))
    threading.Thread(target=server.serve_forever, name="vpclab-api", daemon=True).start()
    return server


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _handler_for(service):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):       # the service log is for the network, not HTTP
            pass

        def do_GET(self):
            self._dispatch("GET")

        def do_POST(self):
            self._dispatch("POST")

        def do_PUT(self):
            self._dispatch("PUT")

        def do_DELETE(self):
            self._dispatch("DELETE")

        def do_PATCH(self):
            self._dispatch("PATCH")

        def send_error(self, code, message=None, explain=None):
            """http.server's own errors (malformed request, unknown method) in JSON too."""
            self._reply(code, {"error": message or self.responses.get(code, ("error",))[0]})

        def _dispatch(self, method: str) -> None:
            try:
                status, body = 200, route(service, method, self.path.rstrip("/"), self._body())
            except ApiError as exc:
                status, body = exc.status, {"error": str(exc)}
            except InventoryError as exc:
                status, body = 400, {"error": str(exc)}
            except Exception as exc:          # a bug: say so, keep serving, leave a trace
                import logging
                logging.getLogger("vpclab.api").exception("%s %s failed", method, self.path)
                status, body = 500, {"error": f"internal error: {type(exc).__name__}: {exc} "
                                              "(see mapping-service.log)"}
            self._reply(status, body)

        def _reply(self, status: int, body) -> None:
            data = json.dumps(body, indent=1).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> dict:
            length = int(self.headers.get("Content-Length") or 0)
            if not length:
                return {}
            try:
                body = json.loads(self.rfile.read(length))
            except ValueError:
                raise ApiError(400, "the request body is not JSON")
            if not isinstance(body, dict):
                raise ApiError(400, "the request body must be a JSON object")
            return body
    return Handler


def route(service, method: str, path: str, body: dict):
    parts = [p for p in path.split("/") if p]
    match (method, parts):
        case ("GET", ["mappings"]):
            return [m.to_json() for m in service.inventory.table()]
        case ("GET", ["mappings", vpc, ip]):
            return _find(service, vpc, ip).to_json()
        case ("POST", ["vms"]):
            return _add(service, body)
        case ("PUT", ["vms", name]):
            host = body.get("host")
            if not isinstance(host, str):
                raise ApiError(400, "say where to: {\"host\": \"host2\"}")
            result = service.apply(f"move {name} to {host}", lambda inv: inv.move(name, host))
            return {**result, **_port(service, name)}
        case ("DELETE", ["vms", name]):
            port = _port(service, name)
            return {**service.apply(f"delete {name}", lambda inv: inv.remove(name)), **port}
        case ("GET", ["routers"]):
            return service.cached_entries()
        case ("GET", ["stats"]):
            return service.stats()
        case ("GET", ["routes"]):
            return _routes(service)
        case ("POST", ["routes"]):
            vpc, table, destination = _route_key(service, body)
            target = _text(body, "target", "the VM (its ENI) the route sends to, e.g. \"fw\"")
            return service.apply(f"route add {vpc}/{table} {destination} -> {target}",
                                 lambda inv: inv.add_route(vpc, table, destination, target))
        case ("DELETE", ["routes"]):
            vpc, table, destination = _route_key(service, body)
            return service.apply(f"route del {vpc}/{table} {destination}",
                                 lambda inv: inv.delete_route(vpc, table, destination))
        case (_, ["mappings" | "vms" | "routers" | "stats" | "routes", *_]):
            raise ApiError(405, f"{method} is not allowed on {path}")
    raise ApiError(404, f"no such resource: {path} (see GET /mappings, /routers, /stats)")


def _add(service, body: dict) -> dict:
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise ApiError(400, "a new VM needs a name: {\"name\": \"ZIGI-VM3\", \"vpc\": ..., "
                            "\"host\": ..., \"ip\": ...}")
    unknown = set(body) - {"name", "port", *VM_FIELDS}
    if unknown:
        raise ApiError(400, f"unknown field(s): {', '.join(sorted(unknown))}; "
                            f"known: name, port, {', '.join(VM_FIELDS)}")
    port = body.get("port")         # checked by the inventory, with every other field
    fields = {k: body.get(k) for k in VM_FIELDS}
    result = service.apply(f"add {name}", lambda inv: inv.add(name, fields, port))
    vm = service.inventory.topology.vms[name]
    return {**result, **_port(service, name), "mac": vm.mac, "eni": vm.eni, "subnet": vm.subnet,
            "source_dest_check": vm.source_dest_check}


def _routes(service) -> list[dict]:
    """Every route, with the routers that cache its table now (on-demand mode)."""
    inventory = service.inventory
    with service.lock:
        cached = None if inventory.topology.mapping_mode == "preload" else {
            router.host: set(service.cached.get(dpid, ()))
            for dpid, router in inventory.routers().items()}
    return route_rows(inventory.topology, cached)


def _route_key(service, body: dict) -> tuple[str, str, str]:
    """(VPC, table, destination) of a route change; the table by name or VPC/NAME."""
    name = _text(body, "table", "the route table's name, e.g. \"via-fw\" (or VPC/NAME)")
    destination = _text(body, "destination", "a CIDR, e.g. \"10.50.1.0/24\"")
    unknown = set(body) - {"table", "destination", "target"}
    if unknown:
        raise ApiError(400, f"unknown field(s): {', '.join(sorted(unknown))}; known: table, "
                            "destination, target")
    try:
        vpc, table = service.inventory.find_table(name)
    except InventoryError as exc:
        raise ApiError(404, str(exc)) from None
    return vpc, table, destination


def _text(body: dict, key: str, what: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise ApiError(400, f"say {key}: {what}")
    return value


def _port(service, name: str) -> dict:
    inventory = service.inventory
    if name not in inventory.ports:
        raise ApiError(404, f"no VM named {name!r}")
    return {"vm": name, "port": inventory.ports[name], "port_name": inventory.port_name(name)}


def _find(service, vpc: str, ip: str):
    topology = service.inventory.topology
    if vpc not in topology.vpcs:
        raise ApiError(404, f"no VPC named {vpc!r}; VPCs: {', '.join(topology.vpcs)}")
    try:
        address = IPv4Address(ip)
    except AddressValueError:
        raise ApiError(400, f"{ip!r} is not an IPv4 address")
    mapping = service.inventory.table().lookup(topology.vpcs[vpc].vni, address)
    if mapping is None:
        raise ApiError(404, f"no mapping for {ip} in {vpc}")
    return mapping



