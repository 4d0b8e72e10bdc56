"""The runner's control socket: one change at a time, answers and errors carried whole."""
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from vpclab.running import control
from vpclab.errors import VpclabError
from vpclab.running.state import LabState


@pytest.fixture
def state(tmp_path):
    lab = LabState("ctl", tmp_path)
    lab.dir.mkdir()
    return lab


def test_requests_from_many_clients_are_served_one_at_a_time(state):
    inside, most, order = [0], [0], []
    guard = threading.Lock()

    def handle(request):
        with guard:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.01)          # a change takes a while; others must wait their turn
        order.append(request["n"])
        with guard:
            inside[0] -= 1
        return {"n": request["n"]}

    server = control.serve(state, handle)
    try:
        with ThreadPoolExecutor(max_workers=20) as pool:
            answers = list(pool.map(lambda n: control.request(state, "add", n=n), range(20)))
    finally:
        server.close()
    assert answers == [{"n": n} for n in range(20)]
    assert most[0] == 1 and sorted(order) == list(range(20))


def test_a_refusal_reaches_the_caller_as_the_runner_worded_it(state):
    def handle(request):
        raise VpclabError(f"lab 'ctl' has no VM {request['vm']!r}; VMs: A, B")

    server = control.serve(state, handle)
    try:
        with pytest.raises(VpclabError, match="has no VM 'GHOST'; VMs: A, B"):
            control.request(state, "delete", vm="GHOST")
    finally:
        server.close()


def test_a_bug_in_the_runner_is_an_error_not_a_hang_and_the_socket_keeps_serving(state):
    def handle(request):
        if request["op"] == "boom":
            raise KeyError("oops")
        return {"ok": True}

    server = control.serve(state, handle)
    try:
        with pytest.raises(VpclabError, match="internal error in the lab runner: KeyError"):
            control.request(state, "boom")
        assert control.request(state, "fine") == {"ok": True}
    finally:
        server.close()


def test_no_runner_says_so(state):
    with pytest.raises(VpclabError, match="runner of lab 'ctl' is not answering"):
        control.request(state, "move", vm="A", host="host1")


def test_the_socket_is_for_root_only(state):
    server = control.serve(state, lambda request: {})
    try:
        assert control.socket_path(state).stat().st_mode & 0o777 == 0o600
    finally:
        server.close()
