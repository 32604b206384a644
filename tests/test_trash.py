"""Deferred removal (davserver/provider/trash.py): a deleted file's name goes at once, its data
once deletions pause; nothing waits for ever, and nothing a client can reach is kept."""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import make_tree, shared_names, wait_for
from lxml import etree

from davserver.errors import InsufficientStorage
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


class _NoLink:
    """`os` for the trash module with every link failing as across filesystems."""

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def link(self, src: Any, dst: Any, **kwargs: Any) -> None:
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), src)


def test_a_file_on_another_filesystem_is_unlinked_at_once(tmp_path, monkeypatch):
    monkeypatch.setattr(trash_module, "os", _NoLink())
    bin_ = Trash(str(tmp_path / "trash"), quiet=LONG, max_delay=LONG)
    (path,) = files(tmp_path, 1)
    bin_.discard(str(path))
    assert not path.exists()
    assert bin_.waiting == 0


class _KeepsName:
    """`os` for the trash module where the deleted file's own folder refuses to lose it."""

    def __init__(self, refused: str) -> None:
        self.refused = refused

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def unlink(self, path: Any, **kwargs: Any) -> None:
        if os.fspath(path) == self.refused:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
        os.unlink(path, **kwargs)


def test_a_name_that_cannot_be_removed_keeps_its_file_and_leaves_no_trash(tmp_path, monkeypatch):
    (path,) = files(tmp_path, 1)
    monkeypatch.setattr(trash_module, "os", _KeepsName(str(path)))
    bin_ = Trash(str(tmp_path / "trash"), quiet=LONG, max_delay=LONG)
    with pytest.raises(PermissionError):
        bin_.discard(str(path))
    assert path.read_bytes() == b"data 0"
    assert os.listdir(tmp_path / "trash") == []
    assert bin_.waiting == 0
    bin_.close()


def test_without_descriptor_calls_files_are_unlinked_at_once(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(trash_module, "SUPPORTED", False)
    bin_ = Trash(str(tmp_path / "trash"), quiet=LONG, max_delay=LONG)
    made = files(tmp_path, 2)
    for path in made:
        bin_.discard(str(path))
    assert not any(p.exists() for p in made)
    assert not (tmp_path / "trash").exists()
    assert bin_.waiting == 0
    assert [r.message for r in caplog.records].count(
        f"{tmp_path / 'trash'} cannot be the trash (a link, another user's, or not supported "
        "here): deleted files are unlinked at once"
    ) == 1
    bin_.close()


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


def test_a_full_disk_empties_the_trash_so_that_a_retry_may_fit(tmp_path):
    make_tree(tmp_path / "root", {"old.bin": b"x" * 4096})
    provider = FilesystemProvider(str(tmp_path / "root"))
    provider.trash.quiet = LONG
    provider.trash.max_delay = LONG
    provider.delete("/old.bin")
    assert len(os.listdir(tmp_path / "root" / TRASH_NAME)) == 1

    def full() -> Iterator[bytes]:
        yield b"part"
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(InsufficientStorage):
        provider.write("/new.bin", full())
    assert os.listdir(tmp_path / "root" / TRASH_NAME) == []
    assert shared_names(tmp_path / "root") == []
    provider.close()


def test_reserved_names_are_reserved_in_any_case(server):
    # A case-folding filesystem would let .DAVSERVER-TMP-TRASH name the trash itself; Linux's
    # casefold folders fold the long s (U+017F) to "s" too.
    make_tree(server.root, {".DavServer-Tmp-upload": b"an upload in progress", "a.txt": b"a"})
    for target in (
        "/.DavServer-Tmp-upload",
        "/.DAVSERVER-TMP-TRASH/",
        "/.dav%C5%BFerver-tmp-trash",
    ):
        for method in ("GET", "PROPFIND", "MKCOL", "DELETE"):
            assert server.request(method, target).status_code == 403, (method, target)
    assert server.request("PUT", "/.Davserver-Tmp-x", data=b"x").status_code == 403
    assert server.request("PUT", "/.dav%C5%BFerver-tmp-x", data=b"x").status_code == 403
    listing = server.request("PROPFIND", "/", headers={"Depth": "1"}, data=ALLPROP)
    hrefs = [e.text for e in etree.fromstring(listing.content).iter("{DAV:}href")]
    assert sorted(hrefs) == ["/", "/a.txt"]


def test_names_another_machine_left_in_a_shared_trash_do_not_collide(tmp_path):
    # Instances on several machines share one volume; their pids repeat. A name this process
    # would pick without an instance id, already taken in the trash, must not make the
    # deletion immediate.
    bin_ = Trash(str(tmp_path / "trash"), quiet=LONG, max_delay=LONG)
    [first, *rest] = files(tmp_path, 21)
    bin_.discard(str(first))
    [taken] = os.listdir(tmp_path / "trash")
    pid, *_ignored, counter = taken.split("-")
    for n in range(int(counter) + 1, int(counter) + 21):
        (tmp_path / "trash" / f"{pid}-{n}").write_bytes(b"another machine's")
    for path in rest:
        bin_.discard(str(path))
    assert bin_.waiting == 21
    bin_.close()
