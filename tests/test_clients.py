"""Real WebDAV clients against a live davserver: cadaver sessions and a davfs2 mount.

Each test drives the installed client program through a realistic session and checks the result
on the server's disk (server.root) and over HTTP. A missing client, /dev/fuse or root privilege
fails the test with what to install; nothing here is skipped.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import pytest
from clients_util import (
    CadaverSession,
    access_entries,
    assert_no_server_errors,
    capture_server_log,
    davfs_mount,
    sha256_file,
    snapshot,
)
from helpers import shared_names
from lxml import etree
from procs import ServerProcess

DAV = "{DAV:}"
CADAVER_NS = "http://webdav.org/cadaver/custom-properties/"


@pytest.fixture(autouse=True)
def _access_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Capture the server's access log, shown on failure and checked for 5xx answers."""
    capture_server_log(caplog)
    return caplog


@pytest.fixture(params=["in-process", "default-start"])
def server(
    request: pytest.FixtureRequest, make_server: Callable[..., Any], tmp_path: Path
) -> Iterator[Any]:
    """The server cadaver talks to: in this process, or the default start (`davserver serve`,
    a worker process per CPU), whose log is checked for errors and 5xx answers at the end."""
    if request.param == "in-process":
        yield make_server()
        return
    (tmp_path / "served").mkdir()
    proc = ServerProcess(tmp_path / "served", tmp_path / "state", "--access-log")
    yield proc
    proc.stop()
    assert proc.errors() == ""
    assert not re.findall(r'" 5\d\d \d+ ', proc.logged), proc.logged


def url_path(*segments: str, collection: bool = False) -> str:
    path = "/" + "/".join(quote(s, safe="") for s in segments)
    return path + "/" if collection and segments else path


def propfind(server, path: str, depth: str, body: bytes | None = None) -> etree._Element:
    response = server.request(
        "PROPFIND",
        path,
        headers={"Depth": depth, "Content-Type": "application/xml"},
        data=body,
    )
    assert response.status_code == 207, (response.status_code, response.text)
    return etree.fromstring(response.content)


def dead_property(server, path: str, name: str) -> str | None:
    body = (
        f'<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:" xmlns:C="{CADAVER_NS}">'
        f"<D:prop><C:{name}/></D:prop></D:propfind>"
    ).encode()
    tree = propfind(server, path, "0", body)
    for propstat in tree.iter(DAV + "propstat"):
        status = propstat.findtext(DAV + "status") or ""
        element = propstat.find(f"{DAV}prop/{{{CADAVER_NS}}}{name}")
        if element is not None and " 200 " in status:
            return element.text or ""
    return None


def lock_tokens(server, path: str) -> list[str]:
    body = (
        b'<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:">'
        b"<D:prop><D:lockdiscovery/></D:prop></D:propfind>"
    )
    tree = propfind(server, path, "0", body)
    return [
        (href.text or "").strip()
        for href in tree.iterfind(f".//{DAV}activelock/{DAV}locktoken/{DAV}href")
    ]


def listed_names(server, path: str) -> set[str]:
    """Decoded last segments of the members a Depth 1 PROPFIND reports (without `path`)."""
    tree = propfind(server, path, "1")
    names = set()
    for href in tree.iter(DAV + "href"):
        href_path = unquote(urlsplit((href.text or "").strip()).path)
        name = href_path.rstrip("/").rsplit("/", 1)[-1]
        if href_path.rstrip("/") != unquote(path).rstrip("/"):
            names.add(name)
    return names


# --- cadaver ----------------------------------------------------------------------------------


@pytest.fixture
def local(tmp_path: Path) -> Path:
    """cadaver's local working folder, with the files it uploads."""
    folder = tmp_path / "local"
    folder.mkdir()
    rng = random.Random(4918)
    (folder / "report 2024 ü.bin").write_bytes(bytes(range(256)) * 64 + rng.randbytes(150_000))
    (folder / "notes.txt").write_text("first line\nsecond line: ünïcödé\n", encoding="utf-8")
    return folder


def test_cadaver_session_files_and_collections(server, local, tmp_path, caplog):
    """ls, mkcol, put, get, cat, copy, move, delete and rmcol, checked on disk and over HTTP."""
    report = (local / "report 2024 ü.bin").read_bytes()
    notes = (local / "notes.txt").read_bytes()
    dav = CadaverSession(server.url("/"), tmp_path / "home", local)
    try:
        assert "collection is empty" in dav.ok("ls", expect="collection is empty")

        dav.ok('mkcol "projects ü"')
        assert (server.root / "projects ü").is_dir()

        dav.ok('cd "projects ü"', expect="")
        assert "/projects%20%c3%bc/" in dav.run("pwd").lower()
        dav.ok('put "report 2024 ü.bin"')
        dav.ok('put notes.txt "notes & ideas #1 +50%.txt"')
        assert (server.root / "projects ü" / "report 2024 ü.bin").read_bytes() == report
        assert (server.root / "projects ü" / "notes & ideas #1 +50%.txt").read_bytes() == notes

        listing = dav.ok("ls")
        assert re.search(rf"report 2024 ü\.bin\s+{len(report)}\s", listing), listing
        assert re.search(rf"notes & ideas #1 \+50%\.txt\s+{len(notes)}\s", listing), listing

        dav.ok('get "report 2024 ü.bin" "downloaded.bin"')
        assert (local / "downloaded.bin").read_bytes() == report
        dav.ok('get "notes & ideas #1 +50%.txt" "notes back.txt"')
        assert (local / "notes back.txt").read_bytes() == notes
        shown = dav.run('cat "notes & ideas #1 +50%.txt"')
        assert "second line: ünïcödé" in shown, shown

        # copy a file within the collection and the whole collection to a new name
        dav.ok('copy "notes & ideas #1 +50%.txt" "copy of notes.txt"')
        assert (server.root / "projects ü" / "copy of notes.txt").read_bytes() == notes
        dav.ok("cd ..", expect="")
        dav.ok('copy "projects ü" "projects backup"')
        backup = server.root / "projects backup"
        assert sorted(p.name for p in backup.iterdir()) == sorted(
            ["report 2024 ü.bin", "notes & ideas #1 +50%.txt", "copy of notes.txt"]
        )
        assert (backup / "report 2024 ü.bin").read_bytes() == report

        # move a file out of its collection, then rename a collection
        dav.ok('move "projects ü/copy of notes.txt" "moved + renamed.txt"')
        assert not (server.root / "projects ü" / "copy of notes.txt").exists()
        assert (server.root / "moved + renamed.txt").read_bytes() == notes
        dav.ok('move "projects backup" "archive #2"')
        assert not backup.exists()
        assert (server.root / "archive #2" / "report 2024 ü.bin").read_bytes() == report

        assert listed_names(server, "/") == {"projects ü", "archive #2", "moved + renamed.txt"}
        response = server.request("GET", url_path("archive #2", "notes & ideas #1 +50%.txt"))
        assert response.status_code == 200 and response.content == notes

        dav.ok('delete "moved + renamed.txt"')
        assert not (server.root / "moved + renamed.txt").exists()
        dav.ok('rmcol "archive #2"')
        dav.ok('rmcol "projects ü"')
        assert shared_names(server.root) == []
        assert "collection is empty" in dav.ok("ls", expect="collection is empty")
        dav.quit()
    finally:
        dav.kill()
    assert_no_server_errors(caplog)


def test_cadaver_properties(server, local, tmp_path, caplog):
    """propset/propget/propnames of a dead property, seen over PROPFIND, kept by copy and move."""
    dav = CadaverSession(server.url("/"), tmp_path / "home", local)
    try:
        dav.ok('put notes.txt "doc ü.txt"')
        dav.ok('propset "doc ü.txt" color "deep blue ü"')
        assert "Value of color is: deep blue ü" in dav.run('propget "doc ü.txt" color')
        names = dav.ok('propnames "doc ü.txt"')
        assert f"{CADAVER_NS} color" in names, names
        assert "DAV: getetag" in names, names
        assert dead_property(server, url_path("doc ü.txt"), "color") == "deep blue ü"

        dav.ok('propset "doc ü.txt" color green')
        assert "Value of color is: green" in dav.run('propget "doc ü.txt" color')
        assert dead_property(server, url_path("doc ü.txt"), "color") == "green"

        dav.ok('mkcol "folder & co"')
        dav.ok('propset "folder & co" owner-team "Team #5"')
        assert dead_property(server, url_path("folder & co", collection=True), "owner-team") == (
            "Team #5"
        )

        # dead properties travel with COPY (kept on the source) and MOVE
        dav.ok('copy "doc ü.txt" "folder & co/copy.txt"')
        assert "Value of color is: green" in dav.run('propget "folder & co/copy.txt" color')
        assert dead_property(server, url_path("doc ü.txt"), "color") == "green"
        dav.ok('move "folder & co" "renamed folder"')
        assert dead_property(server, url_path("renamed folder", collection=True), "owner-team") == (
            "Team #5"
        )
        assert dead_property(server, url_path("renamed folder", "copy.txt"), "color") == "green"

        # a new resource at an old name does not inherit the old properties
        dav.ok('mkcol "folder & co"')
        out = dav.run('propget "folder & co" owner-team')
        assert "Value of owner-team" not in out, out
        assert dead_property(server, url_path("folder & co", collection=True), "owner-team") is None
        dav.quit()
    finally:
        dav.kill()
    assert_no_server_errors(caplog)


def test_cadaver_lock_blocks_other_clients(server, local, tmp_path, caplog):
    """While cadaver holds a lock, another client gets 423; cadaver itself can still write."""
    notes = (local / "notes.txt").read_bytes()
    dav = CadaverSession(server.url("/"), tmp_path / "home", local)
    try:
        dav.ok('mkcol "shared docs"')
        dav.ok('put notes.txt "shared docs/plan #1.txt"')
        target = url_path("shared docs", "plan #1.txt")

        dav.ok('lock "shared docs/plan #1.txt"')
        shown = dav.run("showlocks")
        tokens = re.findall(r"<(urn:uuid:[^>]+|opaquelocktoken:[^>]+)>", shown)
        assert len(tokens) == 1, shown
        assert lock_tokens(server, target) == tokens

        # another client, without the token, is refused
        put = server.request("PUT", target, data=b"overwritten by someone else\n")
        assert put.status_code == 423, (put.status_code, put.text)
        delete = server.request("DELETE", target)
        assert delete.status_code == 423, (delete.status_code, delete.text)
        move = server.request(
            "MOVE", target, headers={"Destination": server.url(url_path("stolen.txt"))}
        )
        assert move.status_code == 423, (move.status_code, move.text)
        assert (server.root / "shared docs" / "plan #1.txt").read_bytes() == notes

        # the lock holder submits its token and may write
        dav.ok('put "report 2024 ü.bin" "shared docs/plan #1.txt"')
        report = (local / "report 2024 ü.bin").read_bytes()
        assert (server.root / "shared docs" / "plan #1.txt").read_bytes() == report
        assert lock_tokens(server, target) == tokens

        dav.ok('unlock "shared docs/plan #1.txt"')
        assert lock_tokens(server, target) == []
        put = server.request("PUT", target, data=b"now anyone may write\n")
        assert put.status_code == 204, (put.status_code, put.text)
        assert (server.root / "shared docs" / "plan #1.txt").read_bytes() == (
            b"now anyone may write\n"
        )

        # a lock on the collection protects its members too
        dav.ok('lock "shared docs"')
        put = server.request("PUT", url_path("shared docs", "new.txt"), data=b"x")
        assert put.status_code == 423, (put.status_code, put.text)
        assert not (server.root / "shared docs" / "new.txt").exists()
        dav.ok('unlock "shared docs"')
        put = server.request("PUT", url_path("shared docs", "new.txt"), data=b"x")
        assert put.status_code == 201, (put.status_code, put.text)
        dav.quit()
    finally:
        dav.kill()
    assert_no_server_errors(caplog)


# --- davfs2 -----------------------------------------------------------------------------------

# Names a user may give files and folders; each exercises URL encoding in client and server.
AWKWARD_NAMES = [
    "with space",
    "ünïcödé",
    "日本語 ファイル",
    "100% sure",
    "%20literal",
    "%2F not a slash",
    "#hash",
    "a&b",
    "c+d",
    "mixed #1 & 50% + more",
    "semi;colon=equals",
    "quote's",
    "q?mark",
    "émoji 😀",
]


def build_tree(root: Path) -> None:
    """A few hundred files of mixed sizes, in folders with awkward names."""
    rng = random.Random(20240605)
    sizes = [0, 1, 17, 511, 4096, 4097, 65_536, 100_003, 1_048_576 + 7]
    count = 0
    for i, name in enumerate(AWKWARD_NAMES):
        folder = root / f"{name} dir"
        folder.mkdir(parents=True)
        for j, other in enumerate(AWKWARD_NAMES):
            size = sizes[(i + j) % len(sizes)] if j % 5 else rng.randint(0, 3000)
            if size > 100_003 and (i + j) % 3:
                size = rng.randint(0, 20_000)
            (folder / f"{other} {j}.dat").write_bytes(rng.randbytes(size))
            count += 1
    deep = root / "deep" / "level 1" / "level #2" / "level & 3"
    deep.mkdir(parents=True)
    for k in range(60):
        (deep / f"note {k} ü.txt").write_text(f"note {k}\n" * rng.randint(1, 200))
        (deep.parent / f"sibling {k}%.txt").write_text("sibling\n" * k)
        count += 2
    (root / "empty folder").mkdir()
    assert count >= 200


def test_davfs2_mount_round_trip(make_server, tmp_path, caplog):
    server = make_server()
    """Mount, copy a tree in, rename, delete, big file, unmount, check the disk, remount."""
    source = tmp_path / "source"
    build_tree(source)
    source_dirs, source_files = snapshot(source)
    mountpoint = tmp_path / "mnt"
    url = server.url("/")

    with davfs_mount(url, mountpoint, tmp_path / "davfs1") as mnt:
        shutil.copytree(source, mnt / "tree")

        # list and read back through the mount
        dirs, files = snapshot(mnt / "tree")
        assert dirs == source_dirs
        assert files == source_files
        assert sorted(os.listdir(mnt / "tree")) == sorted(os.listdir(source))

        # rename a file and a folder, delete a subtree
        old_file = f"{AWKWARD_NAMES[3]} dir/{AWKWARD_NAMES[7]} 7.dat"
        new_file = f"{AWKWARD_NAMES[3]} dir/renamed #1 & ü+%.dat"
        os.rename(mnt / "tree" / old_file, mnt / "tree" / new_file)
        old_dir, new_dir = f"{AWKWARD_NAMES[9]} dir", "renamed folder #2 & 50% ü"
        os.rename(mnt / "tree" / old_dir, mnt / "tree" / new_dir)
        shutil.rmtree(mnt / "tree" / "deep" / "level 1")

        expected_files = {}
        for rel, digest in source_files.items():
            if rel == old_file:
                rel = new_file
            elif rel.startswith(old_dir + "/"):
                rel = new_dir + rel[len(old_dir) :]
            elif rel.startswith("deep/level 1/"):
                continue
            expected_files["tree/" + rel] = digest
        expected_dirs = {"tree"}
        for rel in source_dirs:
            if rel == old_dir or rel.startswith(old_dir + "/"):
                rel = new_dir + rel[len(old_dir) :]
            elif rel == "deep/level 1" or rel.startswith("deep/level 1/"):
                continue
            expected_dirs.add("tree/" + rel)

        # a 50 MiB file, written in pieces and read back
        big = random.Random(50).randbytes(50 * 1024 * 1024)
        with open(mnt / "big file ü.bin", "wb") as f:
            for offset in range(0, len(big), 1 << 20):
                f.write(big[offset : offset + (1 << 20)])
        big_digest = hashlib.sha256(big).hexdigest()
        assert sha256_file(mnt / "big file ü.bin") == big_digest
        expected_files["big file ü.bin"] = big_digest

        dirs, files = snapshot(mnt)
        dirs.discard("lost+found")  # davfs2's local backup folder, never on the server
        assert dirs == expected_dirs
        assert files == expected_files

    # after unmounting, davfs2 has uploaded everything and released its locks
    on_disk_dirs, on_disk_files = snapshot(server.root)
    assert on_disk_dirs == expected_dirs
    assert on_disk_files == expected_files
    now = time.time()
    assert server.services.locks.covering("/", now) == []
    assert server.services.locks.around("/", now) == []
    entries = access_entries(caplog.records)
    locked = {t for m, t, s in entries if m == "LOCK" and s in (200, 201)}
    assert len(locked) >= len(expected_files), "davfs2 (use_locks 1) did not lock what it wrote"
    refused = [
        f"{m} {t} -> {s}"
        for m, t, s in entries
        if m in ("LOCK", "UNLOCK", "PUT", "MKCOL", "MOVE", "DELETE") and s >= 400
    ]
    assert not refused, "the server refused davfs2's changes:\n" + "\n".join(refused)

    # and another client sees the same over HTTP
    assert listed_names(server, "/tree/") == {
        name.split("/", 1)[1] for name in expected_dirs if name.count("/") == 1
    }
    for rel, digest in expected_files.items():
        response = server.request("GET", url_path(*rel.split("/")))
        assert response.status_code == 200, (rel, response.status_code)
        assert hashlib.sha256(response.content).hexdigest() == digest, rel

    # a second mount with an empty cache reads everything back from the server
    with davfs_mount(url, mountpoint, tmp_path / "davfs2") as mnt:
        dirs, files = snapshot(mnt)
        dirs.discard("lost+found")
        assert dirs == expected_dirs
        assert files == expected_files

    assert_no_server_errors(caplog)
