"""Adversarial review of deferred removal (davserver/provider/trash.py and its use by the
filesystem provider): where deleted data may go, who may see it, what a race leaves behind."""

from __future__ import annotations

import contextlib
import json
import os
import stat
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from helpers import lockinfo, make_tree, proppatch_body, with_provider
from lxml import etree

from davserver.errors import DavError
from davserver.provider import trash as trash_module
from davserver.provider.fs import TRASH_NAME, FilesystemProvider
from davserver.provider.trash import Trash

LONG = 3600.0  # a pause no test waits for: nothing is unlinked by the thread meanwhile


def keep_waiting(provider: Any) -> None:
    """Deleted files stay in the trash until close(), as when deletions never pause."""
    provider.trash.quiet = LONG
    provider.trash.max_delay = LONG


def hrefs(response: requests.Response) -> list[str]:
    assert response.status_code == 207, response.status_code
    return sorted(e.text or "" for e in etree.fromstring(response.content).iter("{DAV:}href"))


# -- a trash folder that is a link ---------------------------------------------------------------


def outside_folder(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    make_tree(outside, {"precious.txt": b"not part of the share"})
    return outside


def test_a_trash_folder_linked_outside_never_receives_deleted_files(tmp_path):
    # The share's own rule (fs.py): a symlink must never lead a request outside the root.
    # A trash folder replaced by such a link must not carry deleted data out of the share, nor
    # make the thread unlink what is there.
    outside = outside_folder(tmp_path)
    make_tree(tmp_path / "root", {"secret.txt": b"deleted, and meant to stay in the share"})
    (tmp_path / "root" / TRASH_NAME).symlink_to(outside, target_is_directory=True)
    provider = FilesystemProvider(str(tmp_path / "root"))
    keep_waiting(provider)
    provider.delete("/secret.txt")
    assert not (tmp_path / "root" / "secret.txt").exists()
    assert sorted(os.listdir(outside)) == ["precious.txt"]
    provider.close()
    assert (outside / "precious.txt").read_bytes() == b"not part of the share"


def test_the_startup_sweep_never_unlinks_files_outside_the_share(tmp_path):
    outside = outside_folder(tmp_path)
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / TRASH_NAME).symlink_to(outside, target_is_directory=True)
    provider = FilesystemProvider(str(tmp_path / "root"))
    provider.sweep_temp_files()  # what every server start runs
    assert (outside / "precious.txt").read_bytes() == b"not part of the share"


def test_a_trash_folder_linked_into_the_share_neither_shows_nor_takes_files(server):
    make_tree(server.root, {"docs/keep.txt": b"keep", "gone.txt": b"deleted"})
    (server.root / TRASH_NAME).symlink_to("docs", target_is_directory=True)
    keep_waiting(server.services.provider)
    assert server.request("DELETE", "/gone.txt").status_code == 204
    # The deleted file must not come back under another name...
    listing = server.request("PROPFIND", "/docs/", headers={"Depth": "1"})
    assert hrefs(listing) == ["/docs/", "/docs/keep.txt"]
    # ...and emptying the trash must not empty the folder the link names.
    server.stop()
    assert (server.root / "docs" / "keep.txt").read_bytes() == b"keep"


# -- a link inside the share pointing at the trash -------------------------------------------


def test_a_link_to_the_trash_does_not_give_deleted_files_back(server):
    make_tree(server.root, {"secret.txt": b"the user deleted this"})
    (server.root / "peek").symlink_to(TRASH_NAME, target_is_directory=True)
    keep_waiting(server.services.provider)
    assert server.request("DELETE", "/secret.txt").status_code == 204
    (waiting,) = os.listdir(server.root / TRASH_NAME)
    # The link leads into davserver's own files: as a link out of the share, it is not there.
    got = server.request("GET", f"/peek/{waiting}")
    assert got.status_code == 404, got.content
    listing = server.request("PROPFIND", "/peek/", headers={"Depth": "1"})
    assert listing.status_code == 404


def test_an_upload_through_a_link_to_the_trash_is_refused_not_lost(server):
    (server.root / TRASH_NAME).mkdir()
    (server.root / "peek").symlink_to(TRASH_NAME, target_is_directory=True)
    # Refused, as any write through a link out of the share (404), never accepted into the
    # trash and swept away at the next start.
    put = server.request("PUT", "/peek/report.txt", data=b"work of a day")
    assert put.status_code == 404, put.status_code
    assert os.listdir(server.root / TRASH_NAME) == []


# -- who may read deleted data ------------------------------------------------------------------


def test_the_trash_folder_is_private_to_the_server(tmp_path):
    # A file in a folder other users cannot enter must not become readable by them once
    # deleted: the trash holds files from every folder of the share, with their modes.
    make_tree(tmp_path / "root", {"private/salary.txt": b"secret"})
    (tmp_path / "root" / "private").chmod(0o700)
    (tmp_path / "root" / "private" / "salary.txt").chmod(0o644)
    provider = FilesystemProvider(str(tmp_path / "root"))
    keep_waiting(provider)
    provider.delete("/private/salary.txt")
    (waiting,) = os.listdir(tmp_path / "root" / TRASH_NAME)
    assert (tmp_path / "root" / TRASH_NAME / waiting).stat().st_mode & 0o004  # as it was
    mode = stat.S_IMODE((tmp_path / "root" / TRASH_NAME).stat().st_mode)
    assert mode & 0o077 == 0, oct(mode)
    provider.close()


# -- a name that is no longer a file -------------------------------------------------------------


def test_discard_of_a_folder_raises_what_unlink_would(tmp_path):
    # discard's contract: "Raises the OSError that unlinking it would". rename() moves a
    # folder as readily as a file, and empty() can never unlink it afterwards.
    make_tree(tmp_path, {"folder/member.txt": b"m"})
    bin_ = Trash(str(tmp_path / "trash"), quiet=LONG, max_delay=LONG)
    with pytest.raises(IsADirectoryError):
        bin_.discard(str(tmp_path / "folder"))
    assert (tmp_path / "folder" / "member.txt").read_bytes() == b"m"
    bin_.close()
    assert not (tmp_path / "trash").exists() or os.listdir(tmp_path / "trash") == []


class _RacingProvider(FilesystemProvider):
    """Between the lstat of the last component and the removal, another request deletes the
    file and makes a folder with a new file under the same name (DELETE, MKCOL, PUT)."""

    def _parent(
        self, path: str, parent_missing: bool
    ) -> tuple[int | None, str, os.stat_result | None]:
        folder, name, info = super()._parent(path, parent_missing)
        if path == "/x":
            local = self.local_path(path)
            os.unlink(local)
            os.mkdir(local)
            Path(local, "new.txt").write_bytes(b"uploaded just now")
        return folder, name, info


def test_a_file_replaced_by_a_folder_during_its_delete_keeps_the_folder(tmp_path):
    make_tree(tmp_path / "root", {"x": b"old file"})
    provider = _RacingProvider(str(tmp_path / "root"))
    keep_waiting(provider)
    with contextlib.suppress(DavError):  # the old unlink() failed here (EISDIR): also fine
        provider.delete("/x")
    provider.close()
    assert (tmp_path / "root" / "x" / "new.txt").read_bytes() == b"uploaded just now"
    assert os.listdir(tmp_path / "root" / TRASH_NAME) == []


# -- threads -------------------------------------------------------------------------------------


class _SlowLink:
    """`os` for the trash module: link() waits, mid-call, until the test lets it go on."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.go_on = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def link(self, src: Any, dst: Any, **kwargs: Any) -> None:
        self.entered.set()
        assert self.go_on.wait(10)
        os.link(src, dst, **kwargs)


def test_a_delete_still_running_when_the_server_stops_leaves_nothing_behind(tmp_path, monkeypatch):
    # DavServer.stop() stops cheroot, then closes the provider; a DELETE still on its way
    # (cheroot gives up waiting on slow workers) may be between the closed check and its link.
    slow = _SlowLink()
    monkeypatch.setattr(trash_module, "os", slow)
    path = tmp_path / "f"
    path.write_bytes(b"deleted while stopping")
    bin_ = Trash(str(tmp_path / "trash"), quiet=LONG, max_delay=LONG)
    deleting = threading.Thread(target=bin_.discard, args=(str(path),))
    deleting.start()
    assert slow.entered.wait(10)
    closing = threading.Thread(target=bin_.close)  # waits for the discard under way
    closing.start()
    closing.join(0.2)
    assert closing.is_alive(), "close() did not wait for the discard using the folder"
    slow.go_on.set()
    deleting.join(10)
    closing.join(10)
    assert not closing.is_alive() and not deleting.is_alive()
    assert not path.exists()
    assert os.listdir(tmp_path / "trash") == [], "deleted data left on disk after close()"


# -- locks after a delete (forget_locks) -----------------------------------------------------


class _LockingMidway:
    """Delegates to the provider; when DELETE removes its first member, another client sends
    a LOCK of the sibling that the same DELETE removes next (a LOCK arriving during a large
    DELETE). The LOCK runs on its own thread: it waits for the DELETE to finish."""

    def __init__(self, inner: Any, base: str, members: set[str]) -> None:
        self.inner = inner
        self.base = base
        self.members = members
        self.victim = ""
        self.locking: threading.Thread | None = None
        self.locked: requests.Response | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _lock(self) -> None:
        self.locked = requests.request(
            "LOCK",
            self.base + self.victim,
            headers={"Depth": "0", "Timeout": "Second-3600"},
            data=lockinfo(),
            timeout=30,
        )

    def delete(self, path: str) -> None:
        if self.locking is None and path in self.members:
            (self.victim,) = self.members - {path}
            self.locking = threading.Thread(target=self._lock)
            self.locking.start()
            time.sleep(0.2)  # the LOCK reaches the server while the DELETE is under way
        self.inner.delete(path)


def test_a_lock_taken_during_a_delete_does_not_outlive_the_deleted_file(server):
    """The LOCK meets the DELETE of the folder above it: it waits for the DELETE, which
    removes the whole folder (204); then the LOCK finds no parent (409) and stores nothing."""
    make_tree(server.root, {"dir/a.txt": b"a", "dir/b.txt": b"b"})
    members = {"/dir/a.txt", "/dir/b.txt"}
    wrapped = with_provider(server, lambda inner: _LockingMidway(inner, "", members))
    wrapped.base = server.base  # the port changed with the restart
    assert server.request("DELETE", "/dir").status_code == 204
    wrapped.locking.join(30)
    assert wrapped.locked is not None and wrapped.locked.status_code == 409
    assert server.services.locks.around("/dir", server.services.clock()) == []
    assert server.request("MKCOL", "/dir").status_code == 201
    assert server.request("PUT", wrapped.victim, data=b"new").status_code == 201
    assert server.request("PUT", wrapped.victim, data=b"newer").status_code == 204
    assert server.request("LOCK", wrapped.victim, data=lockinfo()).status_code == 200


# -- regressions: what already holds and must keep holding ------------------------------------


def test_no_spelling_method_or_batch_item_reaches_the_trash(server):
    make_tree(server.root, {"a.txt": b"a", "d/b.txt": b"b"})
    keep_waiting(server.services.provider)
    assert server.request("DELETE", "/d/b.txt").status_code == 204
    (waiting,) = os.listdir(server.root / TRASH_NAME)
    before = (server.root / TRASH_NAME / waiting).read_bytes()
    base = server.base
    for spelled in (TRASH_NAME, "%2Edavserver-tmp-trash", ".davserver%2Dtmp%2Dtrash"):
        target = f"/{spelled}/{waiting}"
        for method, kwargs in (
            ("GET", {}),
            ("PUT", {"data": b"x"}),
            ("MKCOL", {}),
            ("PROPPATCH", {"data": proppatch_body()}),
            ("LOCK", {"data": lockinfo()}),
            ("COPY", {"headers": {"Destination": base + "/copied.txt"}}),
            ("MOVE", {"headers": {"Destination": base + "/moved.txt"}}),
        ):
            r = server.request(method, target, **kwargs)
            assert r.status_code == 403, (method, target, r.status_code)
        for method in ("COPY", "MOVE"):
            r = server.request(method, "/a.txt", headers={"Destination": base + target})
            assert r.status_code == 403, (method, target, r.status_code)
    ops = [
        {"op": "delete", "path": f"{TRASH_NAME}/{waiting}"},
        {"op": "propfind", "path": f"{TRASH_NAME}/{waiting}"},
        {"op": "mkcol", "path": f"{TRASH_NAME}/new"},
        {"op": "copy", "path": "a.txt", "destination": f"{TRASH_NAME}/a.txt"},
        {"op": "move", "path": f"{TRASH_NAME}/{waiting}", "destination": "back.txt"},
        {"op": "copy", "path": f"d/../{TRASH_NAME}/{waiting}", "destination": "back2.txt"},
    ]
    r = server.request(
        "POST",
        "/",
        headers={"Content-Type": "application/json"},
        data=json.dumps({"operations": ops}),
    )
    assert r.status_code == 207
    assert [item["status"] for item in r.json()["results"]] == [403] * len(ops)
    everything = hrefs(server.request("PROPFIND", "/", headers={"Depth": "infinity"}))
    assert everything == ["/", "/a.txt", "/d/"]
    assert sorted(os.listdir(server.root)) == sorted(["a.txt", "d", TRASH_NAME])
    assert os.listdir(server.root / TRASH_NAME) == [waiting]
    assert (server.root / TRASH_NAME / waiting).read_bytes() == before
    assert server.services.locks.around("/", server.services.clock()) == []


def test_deleting_links_never_touches_their_targets_even_once_the_trash_is_empty(server):
    make_tree(server.root, {"data/keep.txt": b"kept", "file.txt": b"target"})
    (server.root / "file-link").symlink_to("file.txt")
    (server.root / "dir-link").symlink_to("data", target_is_directory=True)
    keep_waiting(server.services.provider)
    assert server.request("DELETE", "/file-link").status_code == 204
    assert server.request("DELETE", "/dir-link").status_code == 204
    assert len(os.listdir(server.root / TRASH_NAME)) == 2
    server.stop()  # empties the trash: unlinks the links, not what they name
    assert os.listdir(server.root / TRASH_NAME) == []
    assert (server.root / "file.txt").read_bytes() == b"target"
    assert (server.root / "data" / "keep.txt").read_bytes() == b"kept"
    assert sorted(os.listdir(server.root)) == sorted(["data", "file.txt", TRASH_NAME])


def test_an_overwritten_destination_goes_through_the_trash_and_stays_gone(server):
    make_tree(server.root, {"src.txt": b"new", "dst.txt": b"old", "c.txt": b"copy"})
    keep_waiting(server.services.provider)
    moved = server.request("MOVE", "/src.txt", headers={"Destination": server.url("/dst.txt")})
    assert moved.status_code == 204
    copied = server.request(
        "COPY", "/c.txt", headers={"Destination": server.url("/dst.txt"), "Overwrite": "T"}
    )
    assert copied.status_code == 204
    assert server.request("GET", "/dst.txt").content == b"copy"
    assert server.request("GET", "/src.txt").status_code == 404
    # Both replaced contents wait in the trash, nowhere a client can reach.
    assert sorted(p.read_bytes() for p in (server.root / TRASH_NAME).iterdir()) == [b"new", b"old"]
    server.stop()
    assert os.listdir(server.root / TRASH_NAME) == []
    assert (server.root / "dst.txt").read_bytes() == b"copy"


def test_a_trash_name_taken_by_a_file_makes_deletes_unlink_in_place(tmp_path):
    make_tree(tmp_path / "root", {TRASH_NAME: b"not a folder", "a.txt": b"a"})
    provider = FilesystemProvider(str(tmp_path / "root"))
    keep_waiting(provider)
    provider.delete("/a.txt")
    assert sorted(os.listdir(tmp_path / "root")) == [TRASH_NAME]
    assert (tmp_path / "root" / TRASH_NAME).read_bytes() == b"not a folder"
    assert provider.trash.waiting == 0
    provider.close()


def test_a_root_given_as_a_link_keeps_its_trash_in_the_real_folder(tmp_path):
    make_tree(tmp_path / "real", {"a.txt": b"a"})
    (tmp_path / "alias").symlink_to("real", target_is_directory=True)
    provider = FilesystemProvider(str(tmp_path / "alias"))
    keep_waiting(provider)
    provider.delete("/a.txt")
    assert (tmp_path / "alias").is_symlink()
    assert sorted(os.listdir(tmp_path)) == ["alias", "real"]
    assert os.listdir(tmp_path / "real") == [TRASH_NAME]
    provider.close()
    assert os.listdir(tmp_path / "real" / TRASH_NAME) == []
