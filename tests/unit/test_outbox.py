"""A router's outbox: an overflow disconnects the router from the sender thread, never from
the caller (os-ken's event thread, holding the service's lock, would wait on itself)."""
import threading

from ryu_apps.outbox import Outbox
from vpclab.wait import wait_until


class StalledRouter:
    id = 7

    def __init__(self):
        self.release = threading.Event()

    def send(self, message) -> bool:
        self.release.wait(5)
        return True


def test_an_overflow_disconnects_from_the_sender_thread_not_the_caller():
    router = StalledRouter()
    called_from: list[threading.Thread] = []
    box = Outbox(router, lambda: called_from.append(threading.current_thread()), limit=2)
    box.put([b"first"])                       # the sender takes it and stalls in send()
    box.put([b"a", b"b", b"c"])               # past the limit: given up on
    assert called_from == []                  # not from put(), whatever the timing
    router.release.set()
    wait_until(lambda: called_from, "the outbox to disconnect the router", timeout=5)
    assert called_from[0] is not threading.current_thread()
    box.put([b"late"])                        # a closed outbox takes nothing more
    assert len(box) == 0
