"""davserver over S3 (issue 23): a live server whose root is a prefix of a bucket in a real
store (SeaweedFS, tests/s3server.py), talked to over HTTP."""

from __future__ import annotations

import hashlib
import http.client
import logging
import random
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import s3server
import test_rclone
from clients_util import CadaverSession, assert_no_server_errors, capture_server_log
from conftest import LiveServer
from helpers import (
    COLOR,
    free_port,
    litmus_results,
    proppatch_body,
    run_litmus,
    wait_for,
    write_users,
)
from lxml import etree
from procs import ServerProcess

from davserver import failpoints
from davserver.config import load
from davserver.errors import Forbidden, NotFound
from davserver.provider import s3
from davserver.provider.s3 import PART_SIZE, UPLOADS_FOLDER, S3Provider, parse_root

DEPTH1 = {"Depth": "1"}


def objects(store: s3server.S3Store, root: str) -> dict[str, bytes]:
    """Every object under `root`, by key below it, with its content."""
    bucket, prefix = parse_root(root)
    client = store.client()
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", ()):
            body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            found[item["Key"][len(prefix) :]] = body
    return found


def hrefs(content: bytes) -> list[str]:
    """The hrefs of a PROPFIND answer, sorted."""
    found = etree.fromstring(content).iterfind("{DAV:}response/{DAV:}href")
    return sorted(href.text or "" for href in found)


def uploads(store: s3server.S3Store, root: str) -> list[Any]:
    """Multipart uploads begun and neither completed nor aborted, under `root`."""
    bucket, prefix = parse_root(root)
    listed = store.client().list_multipart_uploads(Bucket=bucket, Prefix=prefix)
    return list(listed.get("Uploads", ()))


def test_the_root_selects_the_s3_provider(s3_server: LiveServer) -> None:
    provider = s3_server.services.provider
    assert isinstance(provider, S3Provider)
    assert provider.prefix.endswith("/") and provider.bucket


def test_an_s3_root_in_a_file_is_kept_as_written(tmp_path: Path) -> None:
    config_file = tmp_path / "davserver.toml"
    config_file.write_text(
        '[storage]\nroot = "s3://bucket/a/b"\ns3_endpoint = "http://127.0.0.1:9"\n'
        's3_region = "eu-west-1"\n'
    )
    config = load(str(config_file))
    assert (config.root, config.s3_endpoint, config.s3_region) == (
        "s3://bucket/a/b",
        "http://127.0.0.1:9",
        "eu-west-1",
    )


def test_put_get_propfind_mkcol_delete(s3_server: LiveServer, s3_store: s3server.S3Store) -> None:
    assert s3_server.request("MKCOL", "/docs").status_code == 201
    assert s3_server.request("PUT", "/docs/a.txt", data=b"hello").status_code == 201
    assert s3_server.request("PUT", "/docs/a.txt", data=b"hello again").status_code == 204
    got = s3_server.request("GET", "/docs/a.txt")
    assert (got.status_code, got.content) == (200, b"hello again")
    head = s3_server.request("HEAD", "/docs/a.txt")
    assert head.headers["ETag"] == got.headers["ETag"]
    listing = s3_server.request("PROPFIND", "/docs/", headers=DEPTH1)
    assert hrefs(listing.content) == ["/docs/", "/docs/a.txt"]
    assert objects(s3_store, s3_server.config.root) == {"docs/": b"", "docs/a.txt": b"hello again"}
    assert s3_server.request("MKCOL", "/missing/sub").status_code == 409
    assert s3_server.request("PUT", "/missing/a", data=b"1").status_code == 409
    assert s3_server.request("DELETE", "/docs").status_code == 204
    assert s3_server.request("GET", "/docs/a.txt").status_code == 404
    assert objects(s3_store, s3_server.config.root) == {}


def test_ranged_get(s3_server: LiveServer) -> None:
    s3_server.request("PUT", "/a", data=b"0123456789")
    got = s3_server.request("GET", "/a", headers={"Range": "bytes=3-5"})
    assert (got.status_code, got.content, got.headers["Content-Range"]) == (
        206,
        b"345",
        "bytes 3-5/10",
    )


def test_the_mtime_a_client_sets_is_reported(s3_server: LiveServer) -> None:
    put = s3_server.request("PUT", "/a", data=b"1", headers={"X-OC-Mtime": "1000000000"})
    assert put.status_code == 201
    got = s3_server.request("GET", "/a")
    assert got.headers["Last-Modified"] == "Sun, 09 Sep 2001 01:46:40 GMT"
    listing = s3_server.request("PROPFIND", "/", headers=DEPTH1)
    assert b"Sun, 09 Sep 2001 01:46:40 GMT" in listing.content


def test_copy_and_move_of_a_tree(s3_server: LiveServer, s3_store: s3server.S3Store) -> None:
    s3_server.request("MKCOL", "/src")
    s3_server.request("MKCOL", "/src/sub")
    s3_server.request("PUT", "/src/sub/f", data=b"content")
    copied = s3_server.request("COPY", "/src", headers={"Destination": s3_server.url("/copy")})
    assert copied.status_code == 201
    moved = s3_server.request("MOVE", "/src", headers={"Destination": s3_server.url("/moved")})
    assert moved.status_code == 201
    assert objects(s3_store, s3_server.config.root) == {
        "copy/": b"",
        "copy/sub/": b"",
        "copy/sub/f": b"content",
        "moved/": b"",
        "moved/sub/": b"",
        "moved/sub/f": b"content",
    }


def test_folders_written_by_other_s3_tools_are_listed(
    s3_server: LiveServer, s3_store: s3server.S3Store
) -> None:
    bucket, prefix = parse_root(s3_server.config.root)
    s3_store.client().put_object(Bucket=bucket, Key=prefix + "x/y/z.txt", Body=b"plain")
    root = s3_server.request("PROPFIND", "/", headers=DEPTH1)
    assert hrefs(root.content) == ["/", "/x/"]
    inner = s3_server.request("PROPFIND", "/x/", headers=DEPTH1)
    assert hrefs(inner.content) == ["/x/", "/x/y/"]
    assert s3_server.request("GET", "/x/y/z.txt").content == b"plain"
    # A member can be added to such a folder, and it is deleted member by member.
    assert s3_server.request("PUT", "/x/y/new", data=b"1").status_code == 201
    assert s3_server.request("DELETE", "/x").status_code == 204
    assert objects(s3_store, s3_server.config.root) == {}


@pytest.mark.parametrize("sent", [1000, PART_SIZE + 1000])
def test_a_put_cut_off_mid_body_leaves_the_old_object(
    s3_server: LiveServer, s3_store: s3server.S3Store, sent: int
) -> None:
    s3_server.request("PUT", "/a", data=b"old")
    head = (f"PUT /a HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {sent * 2}\r\n\r\n").encode()
    # The server answers once it has seen the body end early, so by then the upload has
    # been dropped.
    answer = s3_server.raw(head + b"x" * sent, timeout=60)
    assert not answer.startswith(b"HTTP/1.1 2")
    assert s3_server.request("GET", "/a").content == b"old"
    assert objects(s3_store, s3_server.config.root) == {"a": b"old"}
    assert uploads(s3_store, s3_server.config.root) == []


def test_a_range_put_is_not_implemented(s3_server: LiveServer) -> None:
    s3_server.request("PUT", "/a", data=b"0123")
    answer = s3_server.request("PUT", "/a", data=b"45", headers={"Content-Range": "bytes 4-5/6"})
    assert answer.status_code == 501


def test_an_unreachable_store_answers_503(make_server: Callable[..., LiveServer]) -> None:
    server = make_server(root="s3://bucket/prefix", s3_endpoint=f"http://127.0.0.1:{free_port()}")
    for method in ("GET", "PROPFIND", "PUT", "MKCOL"):
        answer = server.request(method, "/a", data=b"1" if method == "PUT" else None)
        assert answer.status_code == 503, method
        assert answer.headers["Retry-After"] == "5"


def test_a_store_that_goes_away_answers_503_not_500(
    make_server: Callable[..., LiveServer], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    capture_server_log(caplog)
    (tmp_path / "store").mkdir()
    with s3server.running(tmp_path / "store") as store:
        server = make_server(root=store.new_root(), s3_endpoint=store.endpoint)
        assert server.request("MKCOL", "/d").status_code == 201
        assert server.request("PUT", "/d/a", data=b"1").status_code == 201
        s3server.stop(store)
        requests_sent = [
            ("GET", "/d/a", {}),
            ("PROPFIND", "/d/", {"headers": DEPTH1}),
            ("PUT", "/d/b", {"data": b"2"}),
            ("MKCOL", "/e", {}),
            ("DELETE", "/d/a", {}),
            ("COPY", "/d/", {"headers": {"Destination": server.url("/f/")}}),
            ("PROPPATCH", "/d/a", {"data": proppatch_body(COLOR, "c")}),
        ]
        for method, path, extra in requests_sent:
            answer = server.request(method, path, **extra)
            assert (answer.status_code, answer.headers.get("Retry-After")) == (503, "5"), method
    # Each was refused as the store's absence, none as a failure of the server's own.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_litmus_on_an_s3_root(s3_server: LiveServer, tmp_path: Path) -> None:
    returncode, report = run_litmus(tmp_path, "--url", s3_server.base + "/", timeout=900)
    assert returncode == 0, report
    groups = ("basic", "copymove", "props", "locks", "http")
    assert sorted(litmus_results(report)) == sorted(f"{g} (given)" for g in groups)
    assert "WARNING" not in report and "SKIPPED" not in report


def test_unfinished_uploads_a_crash_left_are_aborted(s3_store: s3server.S3Store) -> None:
    provider = S3Provider(s3_store.new_root(), s3_store.endpoint)
    client = s3_store.client()
    bucket = s3_store.bucket
    mine = client.create_multipart_upload(Bucket=bucket, Key=provider.prefix + "crashed")
    elsewhere = client.create_multipart_upload(Bucket=bucket, Key="elsewhere/crashed")
    try:
        assert provider.sweep_temp_files() == 0  # a fresh one may be a live server's
        assert provider.sweep_temp_files(older_than=-60) == 1
        left = client.list_multipart_uploads(Bucket=bucket).get("Uploads", ())
        ids = {upload["UploadId"] for upload in left}
        assert mine["UploadId"] not in ids and elsewhere["UploadId"] in ids
    finally:
        client.abort_multipart_upload(
            Bucket=bucket, Key="elsewhere/crashed", UploadId=elsewhere["UploadId"]
        )
        provider.close()


def test_a_wrong_checksum_leaves_the_old_object(
    s3_server: LiveServer, s3_store: s3server.S3Store
) -> None:
    s3_server.request("PUT", "/a", data=b"old")
    for size in (10, PART_SIZE + 10):
        body = b"n" * size
        wrong = hashlib.sha1(body + b"!").hexdigest()
        put = s3_server.request("PUT", "/a", data=body, headers={"OC-Checksum": f"SHA1:{wrong}"})
        assert put.status_code == 400
    assert objects(s3_store, s3_server.config.root) == {"a": b"old"}
    assert uploads(s3_store, s3_server.config.root) == []


def test_depth_infinity_and_its_limit(
    make_server: Callable[..., LiveServer], s3_store: s3server.S3Store
) -> None:
    server = make_server(
        root=s3_store.new_root(), s3_endpoint=s3_store.endpoint, max_propfind_resources=4
    )
    server.request("MKCOL", "/d")
    server.request("MKCOL", "/d/sub")
    server.request("PUT", "/d/sub/f", data=b"1")
    listing = server.request("PROPFIND", "/d", headers={"Depth": "infinity"})
    assert hrefs(listing.content) == ["/d/", "/d/sub/", "/d/sub/f"]
    server.request("PUT", "/d/g", data=b"1")
    server.request("PUT", "/d/h", data=b"1")
    refused = server.request("PROPFIND", "/d", headers={"Depth": "infinity"})
    assert refused.status_code == 403
    assert b"propfind-finite-depth" in refused.content


def test_a_name_past_the_longest_key_is_414(s3_server: LiveServer) -> None:
    path = "/" + "n" * 1100
    assert s3_server.request("PUT", path, data=b"1").status_code == 414
    assert s3_server.request("MKCOL", path).status_code == 414
    assert s3_server.request("GET", path).status_code == 414


def test_rclone_sync_round_trips_through_an_s3_root(
    make_server: Callable[..., LiveServer], s3_store: s3server.S3Store, tmp_path: Path
) -> None:
    users = write_users(tmp_path / "users.htpasswd", {test_rclone.USER: test_rclone.PASSWORD})
    server = make_server(root=s3_store.new_root(), s3_endpoint=s3_store.endpoint, htpasswd=users)
    rclone = test_rclone.rclone_for(server, tmp_path)
    local = tmp_path / "local"
    expected = test_rclone.make_tree(local)
    rclone.run("sync", str(local), "dav:dir")
    checked = rclone.run("check", str(local), "dav:dir")
    assert f"{len(expected)} matching files" in checked.stderr, checked.stderr
    assert "hashes could not be checked" not in checked.stderr, checked.stderr
    back = tmp_path / "back"
    rclone.run("sync", "dav:dir", str(back))
    test_rclone.assert_same_tree("the copy back from S3", back, expected)


def test_a_read_never_mixes_two_versions(s3_store: s3server.S3Store) -> None:
    provider = S3Provider(s3_store.new_root(), s3_store.endpoint)
    try:
        provider.write("/a", [b"first version"])
        _resource, stream = provider.open_read("/a")
        with stream:
            provider.write("/a", [b"second version"])
            # The stream was opened on the first version's ETag: it gives those bytes or none.
            with pytest.raises(NotFound):
                stream.read()
    finally:
        provider.close()


def test_a_put_killed_mid_upload_leaves_the_old_object_and_no_upload(
    s3_store: s3server.S3Store, tmp_path: Path
) -> None:
    root, state = s3_store.new_root(), tmp_path / "state"
    endpoint = ("--s3-endpoint", s3_store.endpoint)
    setup = ServerProcess(root, state, *endpoint)  # type: ignore[arg-type]
    try:
        assert requests.put(setup.base + "/a", data=b"old", timeout=30).status_code == 201
    finally:
        setup.stop()
    crashing = {failpoints.VARIABLE: "put.staged"}
    dying = ServerProcess(root, state, *endpoint, env=crashing, workers=1)  # type: ignore[arg-type]
    try:
        with pytest.raises(requests.ConnectionError):
            requests.put(dying.base + "/a", data=b"n" * (PART_SIZE + 10), timeout=60)
        assert dying.proc is not None and dying.proc.wait(10) == -9
    finally:
        dying.stop()
    assert len(uploads(s3_store, root)) == 1  # its parts are in the store, invisible
    after = ServerProcess(root, state, *endpoint)  # type: ignore[arg-type]
    try:
        # The start sweeps in the background: the dead process's upload goes at once.
        assert wait_for(lambda: uploads(s3_store, root) == [], seconds=30)
        assert requests.get(after.base + "/a", timeout=30).content == b"old"
        listing = requests.request("PROPFIND", after.base + "/", headers=DEPTH1, timeout=30)
        assert hrefs(listing.content) == ["/", "/a"]
        assert wait_for(lambda: objects(s3_store, root) == {"a": b"old"}, seconds=30)
    finally:
        after.stop()


def test_the_note_of_an_upload_in_progress_is_hidden_and_reserved(
    s3_store: s3server.S3Store,
) -> None:
    root = s3_store.new_root()
    provider = S3Provider(root, s3_store.endpoint)
    staged = provider.stage("/a", [b"x" * (PART_SIZE + 1)])
    try:
        [note] = objects(s3_store, root)
        assert note.startswith(UPLOADS_FOLDER + "/")
        assert list(provider.children("/")) == []
        assert provider.count("/", 100) == 1
        for path in ("/" + UPLOADS_FOLDER, "/" + UPLOADS_FOLDER.upper() + "/x"):
            with pytest.raises(Forbidden):
                provider.stat(path)
    finally:
        staged.discard()
        provider.close()
    assert objects(s3_store, root) == {}


def test_a_folder_of_several_listing_pages_is_set_aside_and_put_back_whole(
    s3_store: s3server.S3Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The copy aside, the deletions and the restore go page by page (ListObjectsV2 answers
    1,000 keys at most; made small here) and batch by batch, and miss none."""
    monkeypatch.setattr(s3, "LIST_PAGE", 7)
    monkeypatch.setattr(s3, "EACH_BATCH", 5)
    root = s3_store.new_root()
    provider = S3Provider(root, s3_store.endpoint)
    names = [f"big/{i:02}" for i in range(30)]
    try:
        provider.make_collection("/big")
        for name in names:
            provider.write("/" + name, [name.encode()])
        provider.set_aside("/big", "k")
        with pytest.raises(NotFound):
            provider.stat("/big")
        assert [k for k in objects(s3_store, root) if not k.startswith(".davserver-tmp-")] == []
        provider.restore("/big", "k")
        assert objects(s3_store, root) == {"big/": b"", **{n: n.encode() for n in names}}
    finally:
        provider.close()


def test_cadaver_round_trip_on_an_s3_root(
    s3_server: LiveServer,
    s3_store: s3server.S3Store,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A cadaver session: mkcol, put, ls, get, properties, copy (also over an existing
    file), move, lock, delete; checked in the bucket and over HTTP."""
    capture_server_log(caplog)
    local = tmp_path / "local"
    local.mkdir()
    report = bytes(range(256)) * 64 + b"\x00" * 150_000
    (local / "report ü.bin").write_bytes(report)
    (local / "notes.txt").write_text("first line\nsecond: ünïcödé\n", encoding="utf-8")
    notes = (local / "notes.txt").read_bytes()
    root = s3_server.config.root
    dav = CadaverSession(s3_server.url("/"), tmp_path / "home", local)
    try:
        dav.ok('mkcol "projects ü"')
        dav.ok('cd "projects ü"', expect="")
        dav.ok('put "report ü.bin"')
        dav.ok("put notes.txt")
        listing = dav.ok("ls")
        assert re.search(rf"report ü\.bin\s+{len(report)}\s", listing), listing
        dav.ok('get "report ü.bin" back.bin')
        assert (local / "back.bin").read_bytes() == report
        dav.ok("propset notes.txt color blue")
        assert "Value of color is: blue" in dav.run("propget notes.txt color")
        dav.ok("cd ..", expect="")
        dav.ok('copy "projects ü" backup')
        dav.ok("propset backup/notes.txt color old")
        # Over an existing file: the replaced one is set aside, then dropped.
        dav.ok('copy "projects ü/notes.txt" backup/notes.txt')
        assert "Value of color is: blue" in dav.run("propget backup/notes.txt color")
        dav.ok('move "projects ü/notes.txt" "moved notes.txt"')
        dav.ok('lock "moved notes.txt"')
        assert s3_server.request("DELETE", "/moved%20notes.txt").status_code == 423
        dav.ok('unlock "moved notes.txt"')
        assert objects(s3_store, root) == {
            "projects ü/": b"",
            "projects ü/report ü.bin": report,
            "backup/": b"",
            "backup/report ü.bin": report,
            "backup/notes.txt": notes,
            "moved notes.txt": notes,
        }
        dav.ok('delete "moved notes.txt"')
        dav.ok("rmcol backup")
        dav.ok('rmcol "projects ü"')
        assert "collection is empty" in dav.ok("ls", expect="collection is empty")
        dav.quit()
    finally:
        dav.kill()
    assert objects(s3_store, root) == {}
    assert_no_server_errors(caplog)


GIB = 1 << 30
# The server's peak resident memory while it streams 1 GiB either way: generous, yet far
# below what holding the body (or a good part of it) would take.
PEAK_RSS_LIMIT_KIB = 200 * 1024


def gib_body() -> Iterator[bytes]:
    """1 GiB in 1 MiB blocks, each numbered, so a lost or repeated block shows."""
    block = random.Random(23).randbytes(1 << 20)
    for number in range(GIB >> 20):
        yield number.to_bytes(8, "big") + block[8:]


def peak_rss_kib(pid: int, *, reset: bool = False) -> int:
    """The process's peak resident set size (VmHWM) so far; `reset` starts a new peak."""
    if reset:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM for process {pid}")


def test_a_gib_put_and_get_keep_the_servers_memory_flat(
    s3_store: s3server.S3Store, tmp_path: Path
) -> None:
    root = s3_store.new_root()
    server = ServerProcess(root, tmp_path / "state", "--s3-endpoint", s3_store.endpoint, workers=1)  # type: ignore[arg-type]
    try:
        assert server.proc is not None
        pid = server.proc.pid
        peak_rss_kib(pid, reset=True)
        sent = hashlib.sha256()
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=300)
        conn.putrequest("PUT", "/big.bin")
        conn.putheader("Content-Length", str(GIB))
        conn.endheaders()
        for block in gib_body():
            sent.update(block)
            conn.send(block)
        assert conn.getresponse().status == 201
        conn.close()
        put_peak = peak_rss_kib(pid)
        assert uploads(s3_store, root) == []
        peak_rss_kib(pid, reset=True)
        got = hashlib.sha256()
        size = 0
        with requests.get(server.base + "/big.bin", stream=True, timeout=300) as answer:
            assert answer.status_code == 200
            for piece in answer.iter_content(1 << 20):
                got.update(piece)
                size += len(piece)
        get_peak = peak_rss_kib(pid)
        assert (size, got.hexdigest()) == (GIB, sent.hexdigest())
        assert put_peak < PEAK_RSS_LIMIT_KIB, f"PUT: peak {put_peak} KiB"
        assert get_peak < PEAK_RSS_LIMIT_KIB, f"GET: peak {get_peak} KiB"
        print(f"peak RSS: PUT {put_peak >> 10} MiB, GET {get_peak >> 10} MiB")
        assert server.request("DELETE", "/big.bin").status_code == 204  # the store's space back
    finally:
        server.stop()


def test_the_store_is_told_to_end_unfinished_uploads_keeping_other_rules(
    s3_store: s3server.S3Store,
) -> None:
    bucket = s3_store.new_bucket()
    client = s3_store.client()
    theirs = {
        "ID": "another tool's",
        "Filter": {"Prefix": "logs/"},
        "Status": "Enabled",
        "Expiration": {"Days": 30},
    }
    client.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": [theirs]}
    )
    provider = S3Provider(f"s3://{bucket}/shared", s3_store.endpoint)
    try:
        provider.sweep_temp_files()
        provider.sweep_temp_files()  # once only
    finally:
        provider.close()
    rules = client.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    kept, ours = rules
    assert kept == theirs
    assert ours["Filter"] == {"Prefix": "shared/"}
    assert ours["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert ours["Status"] == "Enabled"
