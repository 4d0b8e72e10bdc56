"""The two-switch peer's cleanup (bench/peer.py, run as root) removes only its own folder:
the one mkdtemp made for it, not what lies beside it, nor what a link inside points to."""
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from peer import Owned  # noqa: E402


def test_close_removes_its_own_folder_and_nothing_beside_or_behind_it(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    beside = tmp_path / "sentinel-beside"
    beside.write_text("keep")
    behind = tmp_path / "elsewhere"
    behind.mkdir()
    (behind / "sentinel").write_text("keep")
    owned = Owned("t")
    assert owned.dir.parent == tmp_path and owned.namespaces == [] and owned.daemons == []
    (owned.dir / "link").symlink_to(behind)
    (owned.dir / "file").write_text("ours")
    owned.close()
    owned.close()                                  # idempotent
    assert not owned.dir.exists()
    assert beside.read_text() == "keep" and (behind / "sentinel").read_text() == "keep"
