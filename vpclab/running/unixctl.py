"""Talking to an OVS daemon's control socket directly: what `ovs-appctl` does, without a
process per command.

`ovs-appctl CMD ARGS` is a JSON-RPC request on the daemon's unix socket (OVS_RUNDIR/
DAEMON.PID.ctl). A host pre-loads one tunnel neighbour per peer host: one process per
peer per host grows with the square of the hosts (992 processes for 32 hosts); one
connection carrying every request does not.
"""
from __future__ import annotations

import json
import socket
from pathlib import Path

from vpclab.errors import VpclabError


def call_all(path: Path, requests: list[tuple[str, list[str]]], timeout: float = 20.0) -> list[str]:
    """Send every (method, params) on one connection to the control socket at `path`;
    return each result text in order, or raise VpclabError with the daemon's error."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        try:
            conn.connect(str(path))
            for number, (method, params) in enumerate(requests):
                conn.sendall(json.dumps({"id": number, "method": method,
                                         "params": params}).encode())
            replies = _read(conn, len(requests))
        except OSError as exc:
            raise VpclabError(f"{path}: {exc}") from None
    results = []
    for number, (method, params) in enumerate(requests):
        reply = replies.get(number)
        if reply is None or reply.get("error") is not None:
            error = "no reply" if reply is None else reply["error"]
            raise VpclabError(f"{path}: {method} {' '.join(params)}: {str(error).strip()}")
        results.append(reply.get("result") or "")
    return results


def _read(conn: socket.socket, count: int) -> dict[int, dict]:
    """`count` JSON replies, by id (the daemon sends them back to back, no separator)."""
    decoder, buffer, replies = json.JSONDecoder(), "", {}
    while len(replies) < count:
        data = conn.recv(65536)
        if not data:
            break
        buffer += data.decode()
        while buffer.strip():
            try:
                reply, end = decoder.raw_decode(buffer.lstrip())
            except json.JSONDecodeError:
                break               # a reply cut in two: read on
            buffer = buffer.lstrip()[end:]
            replies[reply.get("id")] = reply
    return replies
