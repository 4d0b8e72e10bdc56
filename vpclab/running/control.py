"""The runner's control socket: how every other process asks for a change to the fabric.

The runner is the one owner of a running lab's nodes, links, router ports and
records (nodes.json). The CLI never touches them: `vpclab vm add`, `vm del`,
`move` and `mapping add/del` send one request here and print the answer.
Requests are served one at a time (one lock), so twenty CLIs at once cannot
interleave half-made changes or lose each other's records.

Protocol: a unix stream socket `control.sock` in the lab's state directory
(root only, like the mapping service's API); one JSON object per line each way.
Request `{"op": "add"|"move"|"delete", ...arguments}`; answer
`{"result": {...}}` or `{"error": "what went wrong and what to do"}`.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import socketserver
import threading
import time
from pathlib import Path
from typing import Any, Callable

from vpclab.errors import VpclabError
from vpclab.running.state import LabState, remove_stale_socket

SOCKET_NAME = "control.sock"
MAX_REQUEST = 64 * 1024

Handler = Callable[[dict[str, Any]], dict[str, Any]]


def socket_path(state: LabState) -> Path:
    return state.dir / SOCKET_NAME


# -- the runner's side ------------------------------------------------------------------
class ControlServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    request_queue_size = 128      # many CLIs at once wait in the lock's queue, not refused

    def __init__(self, path: Path, handle: Handler):
        self.handle_request_body = handle
        self.lock = threading.Lock()          # one change at a time
        remove_stale_socket(path)             # left by a dead runner of this lab
        super().__init__(str(path), _Connection)
        os.chmod(path, 0o600)

    def close(self) -> None:
        """Stop taking requests and wait for the change in flight, if any: the lab may be
        taken down only once nothing is being plugged (a VM made now would be missed)."""
        self.shutdown()
        self.server_close()
        with self.lock:
            pass


class _Connection(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        line = self.rfile.readline(MAX_REQUEST)
        try:
            request = json.loads(line)
            if not isinstance(request, dict) or not isinstance(request.get("op"), str):
                raise ValueError("not a request")
        except ValueError:
            self._reply({"error": "a control request is one JSON object with an \"op\" per line"})
            return
        with self.server.lock:
            try:
                answer = {"result": self.server.handle_request_body(request)}
            except VpclabError as exc:
                answer = {"error": str(exc)}
            except Exception as exc:          # a bug: keep serving, leave a trace in runner.log
                logging.getLogger("vpclab.running.control").exception("control request %s failed", request)
                answer = {"error": f"internal error in the lab runner: {type(exc).__name__}: {exc} "
                                   "(see runner.log)"}
        self._reply(answer)

    def _reply(self, answer: dict) -> None:
        try:
            self.wfile.write(json.dumps(answer).encode() + b"\n")
        except BrokenPipeError:               # the asking CLI went away; the change stands
            pass


def serve(state: LabState, handle: Handler) -> ControlServer:
    server = ControlServer(socket_path(state), handle)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                     name="vpclab-control", daemon=True).start()
    return server


# -- everyone else's side -------------------------------------------------------------------
def request(state: LabState, op: str, timeout: float = 300.0, **arguments: Any) -> dict:
    """Ask the lab's runner for one change; wait for it (changes queue behind each other)."""
    path = socket_path(state)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            _connect(sock, path, timeout)
            sock.sendall(json.dumps({"op": op, **arguments}).encode() + b"\n")
            with sock.makefile("rb") as reply:
                data = reply.readline()
        except (FileNotFoundError, ConnectionRefusedError):
            raise VpclabError(f"the runner of lab {state.name!r} is not answering on {path}; "
                              f"`vpclab status {state.name}` says why, see {state.log('runner')}")
        except TimeoutError:
            raise VpclabError(f"the runner of lab {state.name!r} did not finish the {op} in "
                              f"{timeout:.0f} s; see {state.log('runner')}")
    if not data:
        raise VpclabError(f"the runner of lab {state.name!r} closed the connection without an "
                          f"answer (is it stopping?); see {state.log('runner')}")
    answer = json.loads(data)
    if "error" in answer:
        raise VpclabError(answer["error"])
    return answer["result"]


def _connect(sock: socket.socket, path: Path, timeout: float) -> None:
    """A full listen queue answers EAGAIN at once on a unix socket: wait for room."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            sock.connect(str(path))
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise TimeoutError from None
            time.sleep(0.01)
