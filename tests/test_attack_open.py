"""Attacks on GET's way to a file (FilesystemProvider.open_read): links, reserved names, special
files, races and descriptor leaks, on both engines."""

from __future__ import annotations

import io
import os
import socket
import stat
import subprocess
import sys
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import helpers
import pytest
from helpers import make_tree, share_beside_outside
from test_security import propfind_hrefs

from davserver.errors import DavError
from davserver.provider.fs import FilesystemProvider

# The live-server tests run on each engine (the `engine` fixture).
engine = helpers.engine
make_server = helpers.make_server


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    """A share root and, beside it, an outside folder holding a secret."""
    root, outside = share_beside_outside(tmp_path, b"SECRET")
    (root / "file").write_bytes(b"inside")
    (root / "dir").mkdir()
    (root / "dir" / "file").write_bytes(b"deeper")
    return root, outside


def status(provider: FilesystemProvider, path: str) -> int | bytes:
    """What a GET of `path` gives: its content, or the status of the error."""
    try:
        _resource, stream = provider.open_read(path)
    except DavError as exc:
        return exc.status
    except OSError:
        return 500  # what the app makes of an unexpected error
    with stream:
        return stream.read()


def test_links_in_every_position(tree: tuple[Path, Path]) -> None:
    root, outside = tree
    provider = FilesystemProvider(str(root))
    os.mkfifo(root / "fifo")
    (root / ".davserver-tmp-trash").mkdir(exist_ok=True)
    (root / ".davserver-tmp-trash" / "gone").write_bytes(b"trashed")
    links = {
        "out": outside / "secret",
        "outdir": outside,
        "in": "file",
        "indir": "dir",
        "toreserved": ".davserver-tmp-trash/gone",
        "toreserveddir": ".davserver-tmp-trash",
        "tofifo": "fifo",
        "dangling": "nothing",
        "loop": "loop",
        "abs_in": root / "file",
        "updown": "dir/../file",
        "upout": "../outside/secret",
    }
    for name, target in links.items():
        (root / name).symlink_to(target)
    (root / "dir" / "up").symlink_to("..")
    (root / "dir" / "upup").symlink_to("../..")
    expected: dict[str, int | bytes] = {
        "/out": 404,
        "/outdir/secret": 404,
        "/in": b"inside",
        "/indir/file": b"deeper",
        "/toreserved": 404,
        "/toreserveddir/gone": 404,
        "/tofifo": 403,
        "/dangling": 404,
        "/loop": 404,
        "/loop/x": 404,
        "/abs_in": b"inside",
        "/updown": b"inside",
        "/upout": 404,
        "/dir/up/file": b"inside",
        "/dir/up/dir/up/dir/file": b"deeper",
        "/dir/upup/outside/secret": 404,
        # The link itself leads out, even if the rest of the path comes back in.
        "/dir/upup/share/file": 404,
        "/fifo": 403,
        "/dir": 405,
        "/indir": 405,
        "/": 405,
        "/.davserver-tmp-trash/gone": 403,
        "/.DAVSERVER-TMP-trash/gone": 403,
        "/dir/.Davserver-Tmp-x": 403,
        "/.davserver-tmp-": 403,
        "/file/x": 404,
        "/" + "a" * 300: 414,
        "/dir/" + "a" * 300 + "/x": 414,
        "/" + "/".join(["dir", "up"] * 20) + "/file": b"inside",
        # Past the kernel's 40 links in one path (ELOOP): resolved as a link is, each checked.
        "/" + "/".join(["dir", "up"] * 50) + "/file": b"inside",
    }
    before = fds()
    found = {path: status(provider, path) for path in expected}
    assert found == expected
    assert fds() == before


def test_a_socket_is_refused_like_a_fifo(tree: tuple[Path, Path]) -> None:
    root, _outside = tree
    provider = FilesystemProvider(str(root))
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(root / "sock"))
    with listener:
        assert status(provider, "/sock") == 403


# Each racer turns what a GET reads into a link to the outside secret and back, by renames.
FILE_RACER = """
import os, sys
root, outside, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(rounds):
    with open(root + "/f.new", "wb") as out:
        out.write(b"inside")
    os.rename(root + "/f.new", root + "/f")
    os.symlink(outside + "/secret", root + "/f.link")
    os.rename(root + "/f.link", root + "/f")
"""
FOLDER_RACER = """
import os, sys
root, outside, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.mkdir(root + "/d.real")
with open(root + "/d.real/secret", "wb") as out:
    out.write(b"inside")
os.symlink(outside, root + "/d.link")
for i in range(rounds):
    os.rename(root + "/d.real", root + "/d")
    os.rename(root + "/d", root + "/d.real")
    os.rename(root + "/d.link", root + "/d")
    os.rename(root + "/d", root + "/d.link")
"""


def reads_while(racer: str, tree: tuple[Path, Path], path: str) -> set[int | bytes]:
    """What GETs of `path` give while `racer` runs in another process."""
    root, outside = tree
    provider = FilesystemProvider(str(root))
    seen: set[int | bytes] = set()
    process = subprocess.Popen([sys.executable, "-c", racer, str(root), str(outside), "10000"])
    try:
        while process.poll() is None:
            seen.add(status(provider, path))
    finally:
        process.wait()
    return seen


def test_a_file_swapped_for_a_link_never_serves_outside_content(
    tree: tuple[Path, Path],
) -> None:
    # The link, once seen, was resolved and checked, then opened again by name, following
    # whatever was there by then: the swapped-in link to the secret (some 1 in 4000 reads).
    # And realpath() raised EINVAL or ENOENT (a 500) when the link went while it read it.
    assert reads_while(FILE_RACER, tree, "/f") == {b"inside", 404}


def test_a_folder_swapped_for_a_link_never_serves_outside_content(
    tree: tuple[Path, Path],
) -> None:
    # The folders on the way were lstat()ed, then the file opened by a name that followed
    # the folder swapped for a link meanwhile (some 1 in 300 reads).
    assert reads_while(FOLDER_RACER, tree, "/d/secret") == {b"inside", 404}


def test_a_fifo_is_refused_alike_by_every_method_and_left_out_of_listings(
    make_server: Callable[..., Any],
) -> None:
    # HEAD and PROPFIND took it for an empty file (200, getcontentlength 0) that GET refused;
    # COPY and a PUT of a range opened it and waited for its other end: a thread held forever.
    server = make_server()
    make_tree(server.root, {"d/file": b"kept"})
    os.mkfifo(server.root / "pipe")
    os.mkfifo(server.root / "d" / "pipe")
    refused = "/pipe is not a regular file\n"
    for method, headers, body in (
        ("GET", {}, b""),
        ("PROPFIND", {"Depth": "0"}, b""),
        ("COPY", {"Destination": server.url("/copied")}, b""),
        ("PUT", {"Content-Range": "bytes 0-2/*"}, b"abc"),
    ):
        r = server.request(method, "/pipe", headers=headers, data=body, timeout=10)
        assert (r.status_code, r.text) == (403, refused), method
    assert server.request("HEAD", "/pipe", timeout=10).status_code == 403
    assert propfind_hrefs(server, "/d") == ["/d/", "/d/file"]
    r = server.request("COPY", "/d", headers={"Destination": server.url("/d2")}, timeout=10)
    assert r.status_code == 201
    assert sorted(os.listdir(server.root / "d2")) == ["file"]
    archive = zipfile.ZipFile(io.BytesIO(server.request("GET", "/d?zip", timeout=10).content))
    assert archive.namelist() == ["file"]
    assert stat.S_ISFIFO(os.lstat(server.root / "pipe").st_mode)  # nothing replaced it


def test_no_descriptor_outlives_its_request(make_server: Callable[..., Any]) -> None:
    server = make_server()
    big = bytes(range(256)) * (32 * 1024)  # 8 MiB: more than a socket buffer holds
    make_tree(server.root, {"big": big, "small": b"0123456789", "d/a": b"a"})
    os.mkfifo(server.root / "pipe")
    etag = server.request("HEAD", "/small").headers["ETag"]
    asks: list[tuple[str, str, dict[str, str]]] = [
        ("GET", "/missing", {}),
        ("GET", "/pipe", {}),
        ("GET", "/d", {}),
        ("GET", "/d/", {}),
        ("GET", "/small", {}),
        ("HEAD", "/small", {}),
        ("GET", "/small", {"Range": "bytes=1-2"}),
        ("GET", "/small", {"Range": "bytes=1-2,5-6"}),
        ("GET", "/small", {"Range": "bytes=50-60"}),
        ("GET", "/small", {"If-None-Match": etag}),
        ("GET", "/small", {"If-Match": '"other"'}),
        ("GET", "/?zip", {}),
        ("GET", "/.davserver-tmp-trash", {}),
    ]

    def run_all() -> None:
        for method, path, headers in asks:
            server.request(method, path, headers=headers)
        for _ in range(3):
            # A client gone after the head, with most of the file unsent.
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
                sock.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
                sock.recv(1024)
        # The file deleted while it is being sent: it is read to the end all the same.
        with server.session.get(server.url("/big"), stream=True, timeout=30) as answer:
            first = answer.raw.read(65536)
            os.unlink(server.root / "big")
            assert first + answer.raw.read() == big
        (server.root / "big").write_bytes(big)
        server.session.close()

    run_all()  # whatever is opened once and kept (the stores, a pool's sockets) is now open
    before = fds()
    for _ in range(5):
        run_all()
    # At most as many: the last connection of the first round may still be closing then.
    assert helpers.wait_for(lambda: fds() <= before), (before, fds())


def test_a_fifo_put_in_place_after_the_stat_holds_no_thread(tree: tuple[Path, Path]) -> None:
    # COPY and a PUT of a range stat first (which refuses a FIFO), then open by name: a FIFO
    # there by then made open() wait for its other end, forever.
    root, _outside = tree
    provider = FilesystemProvider(str(root))
    os.mkfifo(root / "pipe")
    staged = provider.stage("/piece", [b"abc"])
    calls: list[Callable[[], object]] = [
        lambda: provider.copy("/pipe", "/copied"),
        lambda: provider.write_range("/pipe", 0, staged),
    ]
    outcomes: list[object] = []
    for call in calls:

        def run(call: Callable[[], object] = call) -> None:
            try:
                outcomes.append(call())
            except DavError as exc:
                outcomes.append(exc.status)

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        worker.join(10)  # a bound: it answers at once, or never
        held = worker.is_alive()
        if held:  # let it go: open and close the other end
            os.close(os.open(root / "pipe", os.O_RDWR))
            worker.join()
        assert not held
    # The copy of a FIFO is what reading it gives at once (nothing); the write finds no
    # reader (ENXIO), as any special file is refused.
    assert outcomes == [None, 403]
    staged.discard()
    assert (root / "copied").read_bytes() == b""
