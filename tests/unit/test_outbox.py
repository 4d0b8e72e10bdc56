"""A router's outbox: an overflow disconnects the router from the sender thread, never from
the caller (os-ken's event thread, holding the service's lock, would wait on itself)."""
import threading

from ryu_apps.outbox import Outbox
from vpclab.running.wait import wait_until


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


class RecordingRouter:
    """Records each send; the first one waits until released (a router slow to read)."""
    id = 8

    def __init__(self):
        self.sent: list[bytes] = []
        self.release = threading.Event()
        self.first = threading.Event()

    def send(self, data) -> bool:
        self.first.set()
        self.release.wait(5)
        self.sent.append(data)
        return True


def test_one_put_is_one_write_in_order():
    router = RecordingRouter()
    router.release.set()
    box = Outbox(router, lambda: None)
    box.put([b"flow1", b"flow2", b"packet-out"])
    wait_until(lambda: router.sent, "the send", timeout=5)
    assert router.sent == [b"flow1flow2packet-out"]
    box.put([])                                     # nothing to say: no write
    box.close()
    assert router.sent == [b"flow1flow2packet-out"]


def test_what_waits_is_joined_in_order_and_counted_in_messages():
    router = RecordingRouter()
    box = Outbox(router, lambda: None)
    box.put([b"a"])
    router.first.wait(5)                            # the sender holds "a", stalled
    box.put([b"b", b"c"])
    box.put([b"d"])
    assert len(box) == 3                            # messages waiting, not writes
    router.release.set()
    wait_until(lambda: len(router.sent) == 2, "the second write", timeout=5)
    assert router.sent == [b"a", b"bcd"] and len(box) == 0


def test_the_limit_counts_messages_not_puts():
    router = StalledRouter()
    broken = []
    box = Outbox(router, lambda: broken.append(True), limit=3)
    box.put([b"first"])
    wait_until(lambda: len(box) == 0, "the sender to take the first", timeout=5)
    box.put([b"a", b"b", b"c"])                     # 3 waiting: at the limit, kept
    assert len(box) == 3 and not box._closed
    box.put([b"d"])                                 # 4: given up on
    assert len(box) == 0 and box._closed
    router.release.set()
    wait_until(lambda: broken, "the disconnect", timeout=5)
