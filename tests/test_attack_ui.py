"""Attacks on the file manager's server side (issue 17): the JSON listing (`?list`), the zip
download (`?zip`), their access checks and bounds, as a hostile or unlucky client would try
them over HTTP."""

from __future__ import annotations

import io
import os
import socket
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import LiveServer
from helpers import make_tree, wait_for, with_provider, write_users
from hypothesis import given
from hypothesis import strategies as st
from procs import ServerProcess

from davserver import paths
from davserver.methods import archive
from davserver.model import Resource

BOB = ("bob", "bob-pw")
# bob reads the share but nothing under /pub/private; a sibling sharing its prefix is open.
RULES = (("/", "bob", "read"), ("/pub/private", "bob", "none"))
TREE = {
    "pub/open.txt": b"open",
    "pub/private/s.txt": b"classified",
    "pub/private/deeper/t.txt": b"classified",
    "pub/private-notes/n.txt": b"notes",
}


@pytest.fixture
def ruled(make_server: Any, tmp_path: Path) -> LiveServer:
    users = write_users(tmp_path / "htpasswd", dict([BOB]))
    live: LiveServer = make_server(htpasswd=users, access=RULES, max_propfind_resources=8)
    make_tree(live.root, TREE)
    return live


def as_bob(live: LiveServer, target: str) -> requests.Response:
    return requests.get(live.url(target), auth=BOB, timeout=30)


def zip_names(answer: requests.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return sorted(zipfile.ZipFile(io.BytesIO(answer.content)).namelist())


# -- names ---------------------------------------------------------------------------------------

# Names a hostile client (or a careless program on the server) may give: each must come out
# exact in the JSON and in the zip.
HOSTILE_NAMES = [
    'q"uote',
    "new\nline",
    "ret\rurn",
    "ctl\x01\x1f\x7f",
    "tab\t",
    " spaces ",
    "ü ñ 日本",
    "emoji 🎉",
    "%2F%00",
    "x" * 255,
    "<script>",
]


def test_hostile_names_come_out_exact_in_the_listing_and_the_zip(server: LiveServer) -> None:
    for name in HOSTILE_NAMES:
        (server.root / "f" / name).mkdir(parents=True)
        (server.root / "f" / name / name).write_bytes(name.encode())
    expected = sorted(HOSTILE_NAMES + [f"{n}/{n}" for n in HOSTILE_NAMES])
    answer = server.request("GET", "/f/?list=infinity")
    assert answer.status_code == 200
    assert sorted(m["path"] for m in answer.json()["members"]) == expected
    archive = zipfile.ZipFile(io.BytesIO(server.request("GET", "/f/?zip").content))
    assert archive.testzip() is None
    assert sorted(archive.namelist()) == sorted(
        [n + "/" for n in HOSTILE_NAMES] + [f"{n}/{n}" for n in HOSTILE_NAMES]
    )
    for name in HOSTILE_NAMES:
        assert archive.read(f"{name}/{name}") == name.encode()


def test_names_that_are_not_utf8_stay_out_of_the_listing_and_the_zip(server: LiveServer) -> None:
    # Such a name has no URL a client could use (paths are UTF-8): it is left out, as from
    # PROPFIND, rather than sent as a lone surrogate no browser can encode back.
    root = os.fsencode(server.root)
    os.makedirs(root + b"/f/bad\xff")
    (server.root / "f" / "bad\udcff" / "in.txt").write_bytes(b"in")
    (server.root / "f" / "ok.txt").write_bytes(b"ok")
    with open(root + b"/f/raw\xc3(", "wb") as file:
        file.write(b"raw")
    answer = server.request("GET", "/f/?list=infinity")
    assert [m["path"] for m in answer.json()["members"]] == ["ok.txt"]
    assert zip_names(server.request("GET", "/f/?zip")) == ["ok.txt"]


# -- access rules ----------------------------------------------------------------------------


def test_a_selection_in_a_forbidden_folder_is_refused_whether_it_exists_or_not(
    ruled: LiveServer,
) -> None:
    # A 200 for what exists and a 404 for what does not would tell bob what the folder holds.
    answers = [
        as_bob(ruled, "/pub/?zip&name=" + name)
        for name in (
            "private",
            "private/s.txt",
            "private/missing",
            "private%2Fdeeper",
            "open.txt&name=private/x",
        )
    ]
    assert [a.status_code for a in answers] == [403] * 5
    assert len({a.text for a in answers}) == 1
    # The sibling that merely shares the prefix is no part of the rule.
    assert zip_names(as_bob(ruled, "/pub/?zip&name=private-notes")) == [
        "private-notes/",
        "private-notes/n.txt",
    ]


@pytest.mark.parametrize(
    "target",
    [
        "/pub/?zip&name=../pub/private",
        "/pub/?zip&name=open.txt/../private",
        "/pub/?zip&name=%2Fpub%2Fprivate",
        "/pub/?zip&name=.%2Fprivate",
        "/pub/?zip&name=priv%5C..%5Cprivate",
        "/pub/?zip&name=private%00",
        "/pub/%2E%2E/pub/private/?zip",
        "/pub/private%2F/?zip",
        "/pub/private/?zip",
        "/pub/private/?list",
        "/pub/private/?list=infinity",
        "/pub/private/deeper/?zip",
    ],
)
def test_spellings_that_reach_for_a_forbidden_folder_are_refused(
    ruled: LiveServer, target: str
) -> None:
    answer = as_bob(ruled, target)
    assert answer.status_code == 403, target
    assert b"classified" not in answer.content


def test_the_whole_share_leaves_out_what_bob_may_not_read(ruled: LiveServer) -> None:
    expected = ["pub", "pub/open.txt", "pub/private-notes", "pub/private-notes/n.txt"]
    members = as_bob(ruled, "/?list=infinity").json()["members"]
    assert sorted(m["path"] for m in members) == expected
    assert zip_names(as_bob(ruled, "/?zip")) == [
        "pub/",
        "pub/open.txt",
        "pub/private-notes/",
        "pub/private-notes/n.txt",
    ]


def test_the_bound_counts_only_what_the_user_may_read(ruled: LiveServer) -> None:
    # Past the bound in the forbidden folder: a count of everything would refuse bob's zip
    # of five resources, and tell him by its refusal how much the folder holds.
    make_tree(ruled.root, {f"pub/private/many/{i}": b"x" for i in range(20)})
    assert zip_names(as_bob(ruled, "/pub/?zip")) == [
        "open.txt",
        "private-notes/",
        "private-notes/n.txt",
    ]
    members = as_bob(ruled, "/pub/?list=infinity").json()["members"]
    assert len(members) == 3
    # What bob may read is still bounded.
    make_tree(ruled.root, {f"pub/more/{i}": b"x" for i in range(8)})
    assert as_bob(ruled, "/pub/?zip").status_code == 403
    assert as_bob(ruled, "/pub/?list=infinity").status_code == 403


def test_links_out_of_the_share_are_not_reached(server: LiveServer, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "o.txt").write_bytes(b"outside")
    (server.root / "f").mkdir()
    (server.root / "f" / "a.txt").write_bytes(b"a")
    os.symlink(outside, server.root / "f" / "out")
    os.symlink(outside / "o.txt", server.root / "f" / "o.txt")
    assert [m["path"] for m in server.request("GET", "/f/?list=infinity").json()["members"]] == [
        "a.txt"
    ]
    assert zip_names(server.request("GET", "/f/?zip")) == ["a.txt"]
    for name in ("out", "out/o.txt", "o.txt"):
        assert server.request("GET", "/f/?zip&name=" + name).status_code == 404


def test_a_link_to_an_ancestor_is_a_leaf_in_the_zip(server: LiveServer) -> None:
    # A link back up would make the archive endless; it comes as an empty folder.
    make_tree(server.root, {"f/a.txt": b"a"})
    os.symlink(server.root / "f", server.root / "f" / "loop")
    assert zip_names(server.request("GET", "/f/?zip")) == ["a.txt", "loop/"]


# -- interrupted and changing downloads ----------------------------------------------------------


def _open_files(pid: int) -> list[str]:
    """What the process holds open, by target (sockets and pipes by kind only)."""
    found = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:
            continue  # closed while listed
        found.append(target.split(":")[0] if ":[" in target else target)
    return sorted(found)


@pytest.fixture
def process(tmp_path: Path) -> Iterator[ServerProcess]:
    root = tmp_path / "root"
    root.mkdir()
    live = ServerProcess(root, tmp_path / "state", workers=1)
    yield live
    live.stop()


def test_a_client_that_leaves_mid_zip_stops_the_server_reading(process: ServerProcess) -> None:
    (process.root / "f").mkdir()
    big = process.root / "f" / "big.bin"
    with open(big, "wb") as file:
        # Sparse: nothing written, yet minutes to read and send whole, so a server that went
        # on after the client left would still hold it open.
        file.truncate(64 << 30)
    assert process.request("GET", "/f/?list").status_code == 200
    assert process.proc is not None
    pid = process.proc.pid
    before = _open_files(pid)
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", process.port), timeout=10) as sock:
            sock.sendall(b"GET /f/?zip HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")

    # The file is closed and no connection is left behind once the server sees each leave
    # (the connection of the first request may close meanwhile).
    def settled() -> bool:
        now = _open_files(pid)
        return str(big) not in now and not Counter(now) - Counter(before)

    assert wait_for(settled, 20), _open_files(pid)
    assert process.request("GET", "/f/?list").status_code == 200


def test_a_file_overwritten_during_its_zip_comes_whole_as_it_was(server: LiveServer) -> None:
    old = os.urandom(4 * 1024 * 1024)
    make_tree(server.root, {"f/a.bin": old})
    with requests.get(server.url("/f/?zip"), stream=True, timeout=30) as answer:
        assert answer.status_code == 200
        pieces = answer.iter_content(64 * 1024)
        first = next(pieces)
        assert server.request("PUT", "/f/a.bin", data=b"new and shorter").status_code == 204
        body = first + b"".join(pieces)
    archive = zipfile.ZipFile(io.BytesIO(body))
    assert archive.testzip() is None
    assert archive.read("a.bin") == old
    assert server.request("GET", "/f/a.bin").content == b"new and shorter"


class _CountedSmall:
    """Delegates, but counts every tree as one resource: as if the tree grew after it was
    counted, between the check before the first byte and the walk that sends it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def count(self, _path: str, _limit: int) -> int:
        return 1


@pytest.mark.parametrize("target", ["/f/?zip", "/f/?list=infinity"])
def test_a_tree_that_grows_after_its_count_is_still_walked_bounded(
    make_server: Any, target: str
) -> None:
    server = make_server(max_propfind_resources=1500)
    # Enough for the JSON to have sent a first piece before it reaches the bound.
    make_tree(server.root, {f"f/{i}.txt": b"x" for i in range(2000)})
    with_provider(server, _CountedSmall)
    # The answer has begun (200); past the bound it breaks off, never ending as if complete.
    with requests.get(server.url(target), stream=True, timeout=30) as answer:
        assert answer.status_code == 200
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            answer.content  # noqa: B018


def test_a_selection_of_thousands_of_names_costs_no_more_than_their_number(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A request head of 64 KiB holds some 8,000 names: comparing each with every other to
    # drop those inside another took a minute of CPU (and the GIL) for one request.
    names = [f"{i:x}" for i in range(3000)]
    make_tree(server.root, {f"f/{name}": b"" for name in names})
    compared = 0
    is_ancestor = paths.is_ancestor

    def counting(ancestor: str, path: str) -> bool:
        nonlocal compared
        compared += 1
        return is_ancestor(ancestor, path)

    monkeypatch.setattr(paths, "is_ancestor", counting)
    query = "&".join(f"name={name}" for name in [*names, "0", "1"])
    assert zip_names(server.request("GET", "/f/?zip&" + query)) == sorted(names)
    assert compared < 10 * len(names)


@given(st.lists(st.lists(st.sampled_from(["a", "b", "a b", "ab"]), min_size=1, max_size=3)))
def test_outermost_keeps_each_path_not_inside_another_once_in_order(
    selected: list[list[str]],
) -> None:
    wanted = [paths.join(segments) for segments in selected]
    expected = [
        path
        for path in dict.fromkeys(wanted)
        if not any(paths.is_ancestor(other, path) for other in wanted)
    ]
    assert archive._outermost(wanted) == expected


@pytest.mark.parametrize(("mtime", "year"), [(1e12, 2107), (-1e9, 1980)])
def test_a_file_dated_outside_what_a_zip_can_hold_is_zipped_at_the_nearest_date(
    server: LiveServer, mtime: float, year: int
) -> None:
    # A zip entry's date runs from 1980 to 2107: a file dated past it broke every zip that
    # held it, mid-stream.
    make_tree(server.root, {"f/a.txt": b"a", "f/b.txt": b"b"})
    # Any client that may write can date a file past 2107 (X-OC-Mtime, as sync clients do).
    answer = server.request("PUT", "/f/c.txt", data=b"c", headers={"X-OC-Mtime": "7258118400"})
    assert answer.status_code == 201
    os.utime(server.root / "f" / "b.txt", (mtime, mtime))  # further still: a local program
    answer = server.request("GET", "/f/?zip")
    assert zip_names(answer) == ["a.txt", "b.txt", "c.txt"]
    archive = zipfile.ZipFile(io.BytesIO(answer.content))
    assert archive.read("c.txt") == b"c"
    assert archive.getinfo("c.txt").date_time == (2107, 12, 31, 23, 59, 58)
    assert archive.getinfo("b.txt").date_time[0] == year


@pytest.mark.parametrize(
    ("mtime", "when"), [(1e300, archive._DOS_END), (-1e300, archive._DOS_EPOCH)]
)
def test_a_date_past_what_the_platform_holds_is_zipped_at_the_nearest_date(
    mtime: float, when: tuple[int, ...]
) -> None:
    # An S3 object's date is its metadata, which any other S3 tool may write.
    assert archive._when(Resource("/a", False, 0, mtime, 0.0, "e")) == when


# -- cross-site requests -------------------------------------------------------------------------


def test_origins_that_only_look_like_ours_are_foreign(server: LiveServer) -> None:
    (server.root / "a.txt").write_bytes(b"keep")
    ours = f"127.0.0.1:{server.port}"
    lookalikes = [
        f"http://{ours}.evil.example",
        f"http://{ours}@evil.example",
        f"http://evil.example#{ours}",
        f"http://evil.example/{ours}",
        f"http://evil.example, http://{ours}",
        f"http://{ours}, http://evil.example",
        f"https://{ours}",
        f"http://localhost:{server.port}",
        "",
    ]
    batch = b'{"operations": [{"op": "delete", "path": "a.txt"}]}'
    for origin in lookalikes:
        put = server.request("PUT", "/a.txt", headers={"Origin": origin}, data=b"changed")
        posted = server.request(
            "POST", "/", headers={"Origin": origin, "Content-Type": "application/json"}, data=batch
        )
        assert (put.status_code, posted.status_code) == (403, 403), origin
    assert (server.root / "a.txt").read_bytes() == b"keep"
    # A scheme in capitals is still ours.
    assert server.request("PUT", "/a.txt", headers={"Origin": f"HTTP://{ours}"}).status_code == 204
