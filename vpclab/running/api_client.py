"""Talking to a lab's mapping service: JSON over HTTP on its unix socket."""
from __future__ import annotations

import http.client
import json
import socket
from typing import Any

from vpclab.errors import VpclabError
from vpclab.running.state import LabState


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("lab", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def call(state: LabState, method: str, path: str, body: dict | None = None,
         timeout: float = 30.0) -> Any:
    """One API request; a refusal or an absent service becomes a VpclabError that says why."""
    sock = state.dir / "mapping.sock"
    conn = _UnixConnection(str(sock), timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        payload = json.loads(response.read() or b"null")
    except (FileNotFoundError, ConnectionRefusedError, ConnectionResetError):
        raise VpclabError(f"the mapping service of lab {state.name!r} is not answering: it is "
                          f"down (the lab runner restarts it within a second; try again), see "
                          f"{state.log('mapping-service')}")
    except BlockingIOError:
        raise VpclabError(f"the mapping service of lab {state.name!r} has too many requests "
                          "waiting; try again")
    except TimeoutError:
        raise VpclabError(f"the mapping service of lab {state.name!r} did not answer in "
                          f"{timeout:.0f} s; see {state.log('mapping-service')}")
    finally:
        conn.close()
    if response.status >= 400:
        raise VpclabError(f"the mapping service refused: {payload.get('error', payload)}")
    return payload
