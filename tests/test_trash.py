"""Deferred removal (davserver/provider/trash.py): a deleted file's name goes at once, its data
once deletions pause; nothing waits for ever, and nothing a client can reach is kept."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import make_tree, shared_names, wait_for
from lxml import etree

from davserver.provider import trash as trash_module
from davserver.provider.fs import TRASH_NAME, FilesystemProvider
from davserver.provider.trash import Trash

ALLPROP = b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'
LONG = 3600.0  # a pause no test waits for: whatever is unlinked went without the thread


def files(tmp_path: Path, count: int) -> list[Path]:
    made = []
    for i in range(count):
        path = tmp_path / f"f{i}"
        path.write_bytes(b"data %d" % i)
        made.append(path)
    return made


def test_discard_takes_the_name_at_once_and_the_data_once_deletions_pause(tmp_path):
    bin_ = Trash(str(tmp_path / "trash"), quiet=0.05)
    first, second, later = files(tmp_path, 3)
    bin_.discard(str(first))
    bin_.discard(str(second))
    assert not first.exists() and not second.exists()
    assert wait_for(lambda: bin_.waiting == 0 and os.listdir(tmp_path / "trash") == [])
    bin_.discard(str(later))  # the idle thread wakes for the next deletion
    assert not later.exists()
    assert wait_for(lambda: bin_.waiting == 0 and os.listdir(tmp_path / "trash") == [])
    bin_.close()


def test_nothing_is_unlinked_while_deletions_go_on(tmp_path):
    bin_ = Trash(str(tmp_path / "trash"), quiet=LONG, max_delay=LONG)
    for path in files(tmp_path, 3):
        bin_.discard(str(path))
    time.sleep(0.1)
    assert bin_.waiting == 3
    assert sorted((tmp_path / "trash").iterdir()) != []
    assert sorted(p.read_bytes() for p in (tmp_path / "trash").iterdir()) == [
        b"data 0",
        b"data 1",
        b"data 2",
    ]
    bin_.close()
    assert os.listdir(tmp_path / "trash") == []


def test_deletions_that_never_pause_are_unlinked_after_max_delay(tmp_path):
    bin_ = Trash(str(tmp_path / "trash"), quiet=0.2, max_delay=0.3)
    started = time.monotonic()
    emptied = False
    for path in files(tmp_path, 60):
        bin_.discard(str(path))  # every 20 ms: never the 200 ms pause
        time.sleep(0.02)
        if bin_.waiting < 5:
            emptied = True
            break
    assert emptied, f"still {bin_.waiting} waiting after {time.monotonic() - started:.1f} s"
    bin_.close()


def test_too_many_waiting_files_are_unlinked_at_once(tmp_path):
    bin_ = Trash(str(tmp_path / "trash"), quiet=LONG, max_delay=LONG, max_pending=2)
    made = files(tmp_path, 4)
    for path in made:
        bin_.discard(str(path))
    assert bin_.waiting == 2
    assert len(os.listdir(tmp_path / "trash")) == 2
    assert not any(p.exists() for p in made)
    bin_.close()


def test_low_free_space_unlinks_at_once(tmp_path):
    bin_ = Trash(str(tmp_path / "trash"), quiet=LONG, max_delay=LONG, min_free=1 << 62)
    (path,) = files(tmp_path, 1)
    bin_.discard(str(path))
    assert not path.exists()
    assert bin_.waiting == 0
    assert not (tmp_path / "trash").exists() or os.listdir(tmp_path / "trash") == []


class _NoRename:
    """`os` for the trash module with every rename failing as across filesystems."""

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def rename(self, src: Any, dst: Any) -> None:
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), src)


def test_a_file_on_another_filesystem_is_unlinked_at_once(tmp_path, monkeypatch):
    monkeypatch.setattr(trash_module, "os", _NoRename())
    bin_ = Trash(str(tmp_path / "trash"), quiet=LONG, max_delay=LONG)
    (path,) = files(tmp_path, 1)
    bin_.discard(str(path))
    assert not path.exists()
    assert bin_.waiting == 0


def test_discarding_a_missing_file_raises_what_unlink_would(tmp_path):
    bin_ = Trash(str(tmp_path / "trash"))
    with pytest.raises(FileNotFoundError):
        bin_.discard(str(tmp_path / "nothing"))
    assert bin_.waiting == 0


def test_a_vanished_trash_folder_is_made_again(tmp_path):
    bin_ = Trash(str(tmp_path / "trash"), quiet=LONG, max_delay=LONG)
    first, second, third = files(tmp_path, 3)
    bin_.discard(str(first))
    for leftover in (tmp_path / "trash").iterdir():
        leftover.unlink()
    (tmp_path / "trash").rmdir()
    bin_.discard(str(second))  # falls back to unlinking, and looks for the folder next time
    bin_.discard(str(third))
    assert not second.exists() and not third.exists()
    assert len(os.listdir(tmp_path / "trash")) == 1
    bin_.close()


def test_after_close_deletions_unlink_at_once(tmp_path):
    bin_ = Trash(str(tmp_path / "trash"), quiet=LONG, max_delay=LONG)
    first, second = files(tmp_path, 2)
    bin_.discard(str(first))
    bin_.close()
    assert os.listdir(tmp_path / "trash") == []
    bin_.discard(str(second))
    assert not second.exists()
    assert os.listdir(tmp_path / "trash") == []


def test_empty_removes_what_a_crash_left(tmp_path):
    (tmp_path / "trash").mkdir()
    for name in ("123-0", "123-1"):
        (tmp_path / "trash" / name).write_bytes(b"deleted before the crash")
    assert Trash(str(tmp_path / "trash")).empty() == 2
    assert os.listdir(tmp_path / "trash") == []
    assert Trash(str(tmp_path / "missing")).empty() == 0


def test_the_thread_also_removes_what_other_processes_left(tmp_path):
    (tmp_path / "trash").mkdir()
    (tmp_path / "trash" / "99999-7").write_bytes(b"a gunicorn worker's, killed meanwhile")
    bin_ = Trash(str(tmp_path / "trash"), quiet=0.01)
    (path,) = files(tmp_path, 1)
    bin_.discard(str(path))
    assert wait_for(lambda: os.listdir(tmp_path / "trash") == [])
    bin_.close()


# -- through the provider and the server ---------------------------------------------------------


def test_provider_delete_goes_through_the_trash(tmp_path):
    make_tree(tmp_path / "root", {"a.txt": b"a", "d/b.txt": b"b"})
    provider = FilesystemProvider(str(tmp_path / "root"))
    provider.trash.quiet = LONG
    provider.trash.max_delay = LONG
    provider.delete("/a.txt")
    provider.delete("/d/b.txt")
    provider.delete("/d")
    assert shared_names(tmp_path / "root") == []
    assert provider.trash.waiting == 2
    assert [r.path for r in provider.children("/")] == []
    assert provider.count("/", 100) == 1
    provider.close()
    assert os.listdir(tmp_path / "root" / TRASH_NAME) == []


def test_the_startup_sweep_empties_the_trash(tmp_path):
    make_tree(tmp_path / "root", {f"{TRASH_NAME}/99-1": b"x", "kept.txt": b"k"})
    provider = FilesystemProvider(str(tmp_path / "root"))
    assert provider.sweep_temp_files() == 1
    assert os.listdir(tmp_path / "root" / TRASH_NAME) == []
    assert (tmp_path / "root" / "kept.txt").read_bytes() == b"k"


def test_clients_never_see_or_reach_the_trash(server):
    make_tree(server.root, {"a.txt": b"secret", "b.txt": b"b"})
    server.services.provider.trash.quiet = LONG  # type: ignore[attr-defined]
    server.services.provider.trash.max_delay = LONG  # type: ignore[attr-defined]
    assert server.request("DELETE", "/a.txt").status_code == 204
    assert server.request("GET", "/a.txt").status_code == 404
    (waiting,) = os.listdir(server.root / TRASH_NAME)
    listing = server.request("PROPFIND", "/", headers={"Depth": "1"}, data=ALLPROP)
    assert listing.status_code == 207
    hrefs = [e.text for e in etree.fromstring(listing.content).iter("{DAV:}href")]
    assert sorted(hrefs) == ["/", "/b.txt"]
    for target in (f"/{TRASH_NAME}/", f"/{TRASH_NAME}/{waiting}"):
        for method in ("GET", "PROPFIND", "DELETE"):
            assert server.request(method, target).status_code == 403, (method, target)
    server.stop()  # a clean stop unlinks what waits
    assert os.listdir(server.root / TRASH_NAME) == []
