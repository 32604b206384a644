"""Attacks on the S3 provider (issue 23): two clients racing on the same paths, hostile
names, and clients that vanish mid-upload, against a real store (SeaweedFS)."""

from __future__ import annotations

import io
import socket
import struct
import threading
import time
import zipfile
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import pytest
import requests
import s3server
from conftest import LiveServer
from helpers import color_of, lockinfo, proppatch_body, wait_for
from test_s3 import objects, uploads

from davserver.provider.fs import TEMP_PREFIX
from davserver.provider.s3 import PART_SIZE, UPLOADS_FOLDER, parse_root

ROUNDS = 12


def together(*calls: Callable[[], requests.Response]) -> list[int]:
    """Run the calls at once, each in its own thread; their statuses."""
    statuses: list[int] = [0] * len(calls)
    start = threading.Barrier(len(calls))

    def run(index: int) -> None:
        start.wait()
        statuses[index] = calls[index]().status_code

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return statuses


def call(
    server: LiveServer, method: str, path: str, **kwargs: Any
) -> Callable[[], requests.Response]:
    def send() -> requests.Response:
        return requests.request(method, server.url(path), timeout=60, **kwargs)

    return send


def agreeing(server: LiveServer, store: s3server.S3Store) -> dict[str, bytes]:
    """The objects under the root, after checking that they, the properties and the
    server's own objects agree: no reserved object left, no upload left, every object's
    folder marked, and no property of a resource that is not there."""
    found = objects(store, server.config.root)
    assert not [k for k in found if k.lower().startswith(TEMP_PREFIX)], found
    assert uploads(store, server.config.root) == []
    for key in found:
        parts = key.rstrip("/").split("/")
        for depth in range(1, len(parts)):
            assert "/".join(parts[:depth]) + "/" in found, (key, found)
    for path in server.services.props.described("/"):
        key = path.lstrip("/")
        assert key in found or key + "/" in found, (path, found)
    return found


def test_crossing_moves_leave_one_whole_resource_with_its_properties(
    s3_server: LiveServer, s3_store: s3server.S3Store
) -> None:
    for _ in range(ROUNDS):
        for name in ("a", "b"):
            assert s3_server.request("PUT", "/" + name, data=name.encode() * 3).status_code in (
                201,
                204,
            )
            s3_server.request("PROPPATCH", "/" + name, data=proppatch_body(value=name))
        statuses = together(
            call(s3_server, "MOVE", "/a", headers={"Destination": s3_server.url("/b")}),
            call(s3_server, "MOVE", "/b", headers={"Destination": s3_server.url("/a")}),
        )
        found = agreeing(s3_server, s3_store)
        # One ran whole, then the other moved what it had left: one resource remains.
        assert sorted(statuses) == [201, 204], statuses
        assert len(found) == 1, found
        for name in ("a", "b"):
            if name in found:
                content = found[name]
                assert content in (b"aaa", b"bbb")
                assert color_of(s3_server, "/" + name) == content[:1].decode()
        for name in ("a", "b"):
            s3_server.request("DELETE", "/" + name)


def test_a_put_racing_the_delete_of_its_folder_leaves_no_orphan(
    s3_server: LiveServer, s3_store: s3server.S3Store
) -> None:
    for _ in range(ROUNDS):
        assert s3_server.request("MKCOL", "/d").status_code == 201
        s3_server.request("PUT", "/d/old", data=b"old")
        statuses = together(
            call(s3_server, "PUT", "/d/x", data=b"x" * 1000),
            call(s3_server, "DELETE", "/d"),
        )
        found = agreeing(s3_server, s3_store)
        # The DELETE ran first (the PUT then found no folder: 409) or last (it took both).
        assert statuses in ([409, 204], [201, 204]), statuses
        assert found == {}


def test_a_copy_onto_a_destination_being_written_leaves_one_whole(
    s3_server: LiveServer, s3_store: s3server.S3Store
) -> None:
    s3_server.request("PUT", "/src", data=b"source")
    s3_server.request("PROPPATCH", "/src", data=proppatch_body(value="src"))
    for _ in range(ROUNDS):
        s3_server.request("PUT", "/dst", data=b"before")
        statuses = together(
            call(s3_server, "PUT", "/dst", data=b"written"),
            call(s3_server, "COPY", "/src", headers={"Destination": s3_server.url("/dst")}),
        )
        found = agreeing(s3_server, s3_store)
        assert statuses == [204, 204], statuses
        assert found["dst"] in (b"source", b"written")
        if found["dst"] == b"source":
            assert color_of(s3_server, "/dst") == "src"


def test_a_folder_deleted_during_a_large_put_into_it_leaves_no_orphan(
    s3_server: LiveServer, s3_store: s3server.S3Store
) -> None:
    assert s3_server.request("MKCOL", "/d").status_code == 201
    deleted = threading.Event()

    def body() -> Any:
        yield b"x" * (PART_SIZE + 10)  # a part is sent: a multipart upload is under way
        deleted.wait(60)
        yield b"y" * 10

    result: list[requests.Response] = []
    putting = threading.Thread(
        target=lambda: result.append(
            requests.put(s3_server.url("/d/big"), data=body(), timeout=120)
        )
    )
    putting.start()
    assert wait_for(lambda: len(uploads(s3_store, s3_server.config.root)) == 1, 30)
    # The upload holds no claim on its folder until its body is in: the DELETE goes first.
    assert s3_server.request("DELETE", "/d").status_code == 204
    deleted.set()
    putting.join(120)
    assert result[0].status_code == 409
    assert agreeing(s3_server, s3_store) == {}


def test_a_client_vanishing_mid_multipart_put_leaves_the_old_object(
    s3_server: LiveServer, s3_store: s3server.S3Store
) -> None:
    s3_server.request("PUT", "/a", data=b"old")
    with socket.create_connection(("127.0.0.1", s3_server.port), timeout=30) as sock:
        sock.sendall(
            f"PUT /a HTTP/1.1\r\nHost: x\r\nContent-Length: {3 * PART_SIZE}\r\n\r\n".encode()
        )
        sock.sendall(b"n" * (PART_SIZE + 100))
        assert wait_for(lambda: len(uploads(s3_store, s3_server.config.root)) == 1, 30)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
    assert wait_for(lambda: uploads(s3_store, s3_server.config.root) == [], 30)
    assert agreeing(s3_server, s3_store) == {"a": b"old"}


# Names S3 tools and URL encoders treat specially: each must be its own key, round trip
# exact, and be listed under the one href that reaches it.
HOSTILE_NAMES = [
    "100%",
    "%",
    "a%20b",
    "a%2Fb",
    "a+b",
    "+",
    "a b",
    " lead",
    "trail ",
    "trail. ",
    "日本 ü",
    "\u00e9",
    "e\u0301",
    "a?b",
    "a#b",
    "a&b=c",
    "a;b",
    "*",
    "~x",
    "..x",
    "...",
    "tab\tx",
    "nl\nx",
]


def test_hostile_names_are_each_their_own_object(
    s3_server: LiveServer, s3_store: s3server.S3Store
) -> None:
    assert s3_server.request("MKCOL", "/d").status_code == 201
    for name in HOSTILE_NAMES:
        target = "/d/" + quote(name, safe="")
        assert s3_server.request("PUT", target, data=name.encode()).status_code == 201, name
        assert s3_server.request("GET", target).content == name.encode(), name
    expected = {"d/": b"", **{"d/" + n: n.encode() for n in HOSTILE_NAMES}}
    assert agreeing(s3_server, s3_store) == expected
    listed = s3_server.request("GET", "/d/?list").json()["members"]
    assert sorted(m["path"] for m in listed) == sorted(HOSTILE_NAMES)
    # Moved as a tree (S3 has no rename: copied and deleted object by object), each lands.
    moved = s3_server.request("MOVE", "/d", headers={"Destination": s3_server.url("/e")})
    assert moved.status_code == 201
    assert agreeing(s3_server, s3_store) == {"e" + key[1:]: body for key, body in expected.items()}


RESERVED = [
    TEMP_PREFIX + "aside-k",
    TEMP_PREFIX + "aside-k/o",
    TEMP_PREFIX.upper() + "ASIDE-k",
    "d/" + TEMP_PREFIX + "aside-k",
    UPLOADS_FOLDER,
    UPLOADS_FOLDER + "/tag/upload",
]


@pytest.mark.parametrize("name", RESERVED)
def test_a_client_can_neither_read_nor_write_the_servers_own_objects(
    s3_server: LiveServer, s3_store: s3server.S3Store, name: str
) -> None:
    # What a crash mid-transfer leaves: a kept copy set aside, and the note of an upload.
    bucket, prefix = parse_root(s3_server.config.root)
    client = s3_store.client()
    kept = {TEMP_PREFIX + "aside-k/okeep": b"kept", UPLOADS_FOLDER + "/tag/upload": b"a"}
    for key, body in kept.items():
        client.put_object(Bucket=bucket, Key=prefix + key, Body=body)
    assert s3_server.request("PUT", "/a", data=b"a").status_code == 201
    assert s3_server.request("MKCOL", "/d").status_code == 201
    target = "/" + quote(name)
    destination = {"Destination": s3_server.url(target), "Overwrite": "T"}
    attempts = [
        s3_server.request("GET", target),
        s3_server.request("PUT", target, data=b"clobber"),
        s3_server.request("DELETE", target),
        s3_server.request("MKCOL", target),
        s3_server.request("PROPFIND", target, headers={"Depth": "0"}),
        s3_server.request("PROPPATCH", target, data=proppatch_body()),
        s3_server.request("LOCK", target, data=lockinfo()),
        s3_server.request("COPY", "/a", headers=destination),
        s3_server.request("MOVE", "/a", headers=destination),
        s3_server.request("GET", "/?zip&name=" + quote(name, safe="")),
    ]
    assert [a.status_code for a in attempts] == [403] * len(attempts)
    batch = {"operations": [{"op": "copy", "path": "a", "destination": name}]}
    answer = s3_server.request(
        "POST", "/", headers={"Content-Type": "application/json"}, json=batch
    )
    assert [r["status"] for r in answer.json()["results"]] == [403]
    # Nor do they show in any listing, however deep.
    everything = s3_server.request("GET", "/?list=infinity").json()["members"]
    assert sorted(m["path"] for m in everything) == ["a", "d"]
    archive = zipfile.ZipFile(io.BytesIO(s3_server.request("GET", "/?zip").content))
    assert sorted(archive.namelist()) == ["a", "d/"]
    found = objects(s3_store, s3_server.config.root)
    assert {k: found[k] for k in kept} == kept
    assert sorted(k for k in found if k not in kept) == ["a", "d/"]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e300", "-5", "soon"])
def test_a_date_another_tool_wrote_out_of_range_is_not_believed(
    s3_server: LiveServer, s3_store: s3server.S3Store, value: str
) -> None:
    # The date a client set is the object's metadata, which any S3 tool may write: one that
    # no date can be made of broke every listing of its folder.
    bucket, prefix = parse_root(s3_server.config.root)
    s3_store.client().put_object(
        Bucket=bucket, Key=prefix + "f", Body=b"f", Metadata={"mtime": value}
    )
    stored = s3_store.client().head_object(Bucket=bucket, Key=prefix + "f")["LastModified"]
    listing = s3_server.request("PROPFIND", "/", headers={"Depth": "1"})
    assert listing.status_code == 207
    assert s3_server.request("GET", "/?list").json()["members"][0]["modified"] == int(
        stored.timestamp()
    )
    answer = s3_server.request("GET", "/f")
    assert answer.content == b"f"
    assert parsedate_to_datetime(answer.headers["Last-Modified"]) == stored.replace(microsecond=0)
    assert zipfile.ZipFile(io.BytesIO(s3_server.request("GET", "/?zip").content)).read("f") == b"f"


def test_a_locked_resource_moved_away_while_another_moves_onto_it_keeps_locks_agreeing(
    s3_server: LiveServer, s3_store: s3server.S3Store
) -> None:
    for _ in range(ROUNDS // 2):
        for name in ("a", "b"):
            s3_server.request("PUT", "/" + name, data=name.encode())
        locked = s3_server.request("LOCK", "/a", data=lockinfo(), headers={"Timeout": "Second-600"})
        token = locked.headers["Lock-Token"]
        statuses = together(
            call(
                s3_server,
                "MOVE",
                "/a",
                headers={"Destination": s3_server.url("/c"), "If": f"({token})"},
            ),
            call(s3_server, "MOVE", "/b", headers={"Destination": s3_server.url("/a")}),
        )
        found = agreeing(s3_server, s3_store)
        # The lock went with the resource it was on (RFC 4918 7.7: a lock never moves).
        assert s3_server.services.locks.around("/", time.time()) == []
        if statuses[1] == 423:  # b came while a was still locked
            assert statuses[0] == 201 and found == {"b": b"b", "c": b"a"}
        else:
            assert statuses == [201, 201] and found == {"a": b"b", "c": b"a"}
        for name in ("a", "b", "c"):
            s3_server.request("DELETE", "/" + name)
