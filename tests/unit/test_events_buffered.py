"""The event log's queued writes (the service's misses): in the file soon without anyone
flushing, never after an event written later, seen by read(), rotated as before."""
import json

from vpclab.router.events import EventLog
from vpclab.running.wait import wait_until


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_queued_events_reach_the_file_by_themselves(tmp_path):
    log = EventLog(tmp_path / "events.jsonl")
    log.write_soon("miss", at=12.5, target="10.0.0.7")
    wait_until(lambda: lines(log.path), "the writer thread", timeout=5)
    assert lines(log.path) == [{"t": 12.5, "event": "miss", "target": "10.0.0.7"}]


def test_a_direct_write_comes_after_everything_queued_before_it(tmp_path):
    log = EventLog(tmp_path / "events.jsonl")
    for i in range(2000):
        log.write_soon("miss", n=i)
        if i % 500 == 499:
            log.write("change", n=i)         # what a tool waits for, right after
            written = [e["n"] for e in lines(log.path)]
            assert written == sorted(written) and written[-1] == i   # all before it, in order
    log.flush()
    assert [e["event"] for e in lines(log.path)].count("miss") == 2000


def test_read_sees_what_is_queued(tmp_path):
    log = EventLog(tmp_path / "events.jsonl")
    log.write("service_started")
    for i in range(50):
        log.write_soon("miss", n=i)
    assert [e.get("n") for e in log.read()] == [None, *range(50)]


def test_queued_events_rotate_like_the_others(tmp_path):
    log = EventLog(tmp_path / "events.jsonl", max_bytes=2000)
    for i in range(300):
        log.write_soon("miss", n=i)
    log.flush()
    kept = [e["n"] for e in log.read()]
    assert log.older.exists() and kept == list(range(300 - len(kept), 300))
    assert 2000 <= log.older.stat().st_size < 2000 + 40      # rotated one event past its bound
    assert len(kept) < 300


def test_the_writer_survives_a_failed_write(tmp_path):
    folder = tmp_path / "lab"
    log = EventLog(folder / "events.jsonl")          # its folder does not exist yet
    log.write_soon("miss", n=1)
    wait_until(lambda: not log._queued, "the writer to give up on the first", timeout=5)
    folder.mkdir()
    log.write_soon("miss", n=2)
    wait_until(lambda: lines(log.path), "the writer thread", timeout=5)
    assert [e["n"] for e in lines(log.path)] == [2]
