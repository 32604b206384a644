"""The Provider contract (davserver/provider/base.py), checked the same way on every provider:
the filesystem one and the S3 one over a real store (SeaweedFS, tests/s3server.py)."""

from __future__ import annotations

import gc
import io
import os
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import s3server

from davserver.errors import Conflict, Forbidden, MethodNotAllowed, NotFound
from davserver.provider import s3
from davserver.provider.base import AsideKeeper, Provider, TreeCounter
from davserver.provider.fs import FilesystemProvider
from davserver.provider.s3 import PART_SIZE, S3Provider


@pytest.fixture(params=["fs", "s3"])
def provider(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Provider]:
    made: Any
    if request.param == "fs":
        made = FilesystemProvider(str(tmp_path / "root"))
    else:
        store: s3server.S3Store = request.getfixturevalue("s3_store")
        made = S3Provider(store.new_root() + "/some/prefix", store.endpoint, s3server.REGION)
    yield made
    made.close()


def read(provider: Provider, path: str) -> bytes:
    _resource, stream = provider.open_read(path)
    with stream:
        return stream.read()


def names(provider: Provider, path: str) -> dict[str, bool]:
    """The members of a collection: name -> is_collection."""
    return {r.path.rsplit("/", 1)[1]: r.is_collection for r in provider.children(path)}


def failing(after: list[bytes]) -> Iterator[bytes]:
    """A body that breaks off (a client that disconnects) after `after`."""
    yield from after
    raise ConnectionResetError("client went away")


def test_root_is_an_empty_collection(provider: Provider) -> None:
    assert provider.stat("/").is_collection
    assert list(provider.children("/")) == []


def test_missing_resources_are_not_found(provider: Provider) -> None:
    operations: list[Callable[[], object]] = [
        lambda: provider.stat("/nope"),
        lambda: list(provider.children("/nope")),
        lambda: provider.open_read("/nope"),
        lambda: provider.delete("/nope"),
        lambda: provider.copy("/nope", "/other"),
        lambda: provider.set_mtime("/nope", 1.0),
    ]
    for operation in operations:
        with pytest.raises(NotFound):
            operation()


def test_write_then_read_and_stat(provider: Provider) -> None:
    written = provider.write("/a.txt", [b"hello ", b"world"])
    stat = provider.stat("/a.txt")
    assert (stat.path, stat.is_collection, stat.size) == ("/a.txt", False, 11)
    assert written.etag == stat.etag
    assert read(provider, "/a.txt") == b"hello world"
    assert names(provider, "/") == {"a.txt": False}


def test_rewrite_changes_the_etag(provider: Provider) -> None:
    first = provider.write("/a.txt", [b"one"])
    second = provider.write("/a.txt", [b"two!"])
    assert first.etag != second.etag
    assert read(provider, "/a.txt") == b"two!"


def test_empty_file(provider: Provider) -> None:
    provider.write("/empty", [])
    assert provider.stat("/empty").size == 0
    assert read(provider, "/empty") == b""


def test_create_only_where_nothing_is(provider: Provider) -> None:
    provider.write("/a", [b"1"], create=True)
    with pytest.raises(MethodNotAllowed):
        provider.write("/a", [b"2"], create=True)
    assert read(provider, "/a") == b"1"


def test_write_without_parent_is_a_conflict(provider: Provider) -> None:
    with pytest.raises(Conflict):
        provider.write("/missing/a", [b"1"])
    provider.write("/file", [b"1"])
    with pytest.raises(Conflict):
        provider.write("/file/a", [b"1"])


def test_write_over_a_collection_is_not_allowed(provider: Provider) -> None:
    provider.make_collection("/c")
    with pytest.raises(MethodNotAllowed):
        provider.write("/c", [b"1"])
    assert provider.stat("/c").is_collection


@pytest.mark.parametrize("size", [10, PART_SIZE + 10])
def test_a_body_cut_off_leaves_the_old_content(provider: Provider, size: int) -> None:
    provider.write("/a", [b"old"])
    with pytest.raises(ConnectionResetError):
        provider.write("/a", failing([b"x" * size]))
    assert read(provider, "/a") == b"old"
    assert names(provider, "/") == {"a": False}


def test_a_large_body_is_sent_with_bounded_memory(provider: Provider) -> None:
    piece = b"p" * (1 << 20)
    count = PART_SIZE * 8 // len(piece)
    tracemalloc.start()
    try:
        provider.write("/big", (piece for _ in range(count)))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert provider.stat("/big").size == len(piece) * count
    # A part being filled, the one being sent, and the client's own copy of it.
    assert peak < 4 * PART_SIZE


def test_large_body_in_several_pieces(provider: Provider) -> None:
    piece = bytes(range(256)) * 4096  # 1 MiB
    count = PART_SIZE // len(piece) * 2 + 1
    provider.write("/big", (piece for _ in range(count)))
    assert provider.stat("/big").size == len(piece) * count
    _resource, stream = provider.open_read("/big")
    with stream:
        stream.seek(PART_SIZE - 3)
        assert stream.read(6) == (piece * 9)[PART_SIZE - 3 : PART_SIZE + 3]
        stream.seek(0)
        assert stream.read(4) == piece[:4]


def test_staged_content_is_invisible_until_commit(provider: Provider) -> None:
    provider.write("/a", [b"old"])
    staged = provider.stage("/a", [b"new"])
    try:
        assert read(provider, "/a") == b"old"
        stored = staged.commit(mtime=1_000_000.0)
    finally:
        staged.discard()
    assert read(provider, "/a") == b"new"
    assert stored.mtime == 1_000_000.0
    assert provider.stat("/a").mtime == 1_000_000.0
    [member] = provider.children("/")
    assert member.mtime == 1_000_000.0


def test_large_staged_commit_keeps_the_mtime(provider: Provider) -> None:
    staged = provider.stage("/a", [b"y" * (PART_SIZE + 1)])
    try:
        stored = staged.commit(mtime=2_000_000.0)
    finally:
        staged.discard()
    assert (stored.size, stored.mtime) == (PART_SIZE + 1, 2_000_000.0)


def test_discarded_content_leaves_nothing(provider: Provider) -> None:
    for size in (3, PART_SIZE + 3):
        staged = provider.stage("/a", [b"z" * size])
        staged.discard()
        staged.discard()
    with pytest.raises(NotFound):
        provider.stat("/a")
    assert list(provider.children("/")) == []


@pytest.mark.parametrize("size", [4, PART_SIZE + 4])
def test_commit_create_where_something_appeared(provider: Provider, size: int) -> None:
    staged = provider.stage("/a", [b"m" * size])
    try:
        provider.write("/a", [b"theirs"])
        with pytest.raises(MethodNotAllowed):
            staged.commit(create=True)
    finally:
        staged.discard()
    assert read(provider, "/a") == b"theirs"


def test_commit_after_the_parent_went_is_a_conflict(provider: Provider) -> None:
    provider.make_collection("/c")
    staged = provider.stage("/c/a", [b"1"])
    try:
        provider.delete("/c")
        with pytest.raises(Conflict):
            staged.commit()
    finally:
        staged.discard()


def test_stage_errors(provider: Provider) -> None:
    provider.make_collection("/c")
    with pytest.raises(MethodNotAllowed):
        provider.stage("/c", [b"1"])
    with pytest.raises(Conflict):
        provider.stage("/missing/a", [b"1"])


def test_make_collection(provider: Provider) -> None:
    provider.make_collection("/c")
    provider.make_collection("/c/d")
    assert provider.stat("/c").is_collection
    assert names(provider, "/") == {"c": True}
    assert names(provider, "/c") == {"d": True}
    assert list(provider.children("/c/d")) == []
    with pytest.raises(MethodNotAllowed):
        provider.make_collection("/c")
    provider.write("/f", [b"1"])
    with pytest.raises(MethodNotAllowed):
        provider.make_collection("/f")
    with pytest.raises(Conflict):
        provider.make_collection("/missing/c")


def test_children_of_a_file_are_not_found(provider: Provider) -> None:
    provider.write("/f", [b"1"])
    with pytest.raises(NotFound):
        list(provider.children("/f"))


def test_open_read_of_a_collection_is_not_allowed(provider: Provider) -> None:
    provider.make_collection("/c")
    with pytest.raises(MethodNotAllowed):
        provider.open_read("/c")


def test_delete(provider: Provider) -> None:
    provider.make_collection("/c")
    provider.write("/c/f", [b"1"])
    with pytest.raises(Conflict):
        provider.delete("/c")
    provider.delete("/c/f")
    assert list(provider.children("/c")) == []
    provider.delete("/c")
    assert list(provider.children("/")) == []
    with pytest.raises(NotFound):
        provider.stat("/c")
    with pytest.raises(Forbidden):
        provider.delete("/")


def test_copy_a_file(provider: Provider) -> None:
    provider.write("/a", [b"content"])
    provider.make_collection("/c")
    provider.copy("/a", "/c/b")
    assert read(provider, "/c/b") == b"content"
    provider.write("/a", [b"changed"])
    assert read(provider, "/c/b") == b"content"


def test_copy_a_collection_makes_an_empty_one(provider: Provider) -> None:
    provider.make_collection("/c")
    provider.write("/c/f", [b"1"])
    provider.copy("/c", "/d")
    assert provider.stat("/d").is_collection
    assert list(provider.children("/d")) == []


def test_copy_without_parent_is_a_conflict(provider: Provider) -> None:
    provider.write("/a", [b"1"])
    with pytest.raises(Conflict):
        provider.copy("/a", "/missing/b")


def test_set_mtime(provider: Provider) -> None:
    provider.write("/a", [b"1"])
    provider.set_mtime("/a", 1_234_567.0)
    assert provider.stat("/a").mtime == 1_234_567.0
    assert read(provider, "/a") == b"1"
    # A collection takes the date where the storage keeps one (SeaweedFS keeps no metadata
    # on folder markers); asking is never an error.
    provider.make_collection("/c")
    provider.set_mtime("/c", 7_654_321.0)
    assert provider.stat("/c").is_collection


def test_count_stops_past_the_limit(provider: Provider) -> None:
    assert isinstance(provider, TreeCounter)
    provider.make_collection("/c")
    provider.make_collection("/c/d")
    for name in ("a", "b"):
        provider.write(f"/c/d/{name}", [b"1"])
    assert provider.count("/", 100) == 5
    assert provider.count("/c", 100) == 4
    assert provider.count("/", 2) > 2


def test_read_stream_is_seekable(provider: Provider) -> None:
    provider.write("/a", [b"0123456789"])
    resource, stream = provider.open_read("/a")
    with stream:
        assert resource.size == 10
        stream.seek(4)
        assert stream.read(3) == b"456"
        stream.seek(-2, io.SEEK_END)
        assert stream.read() == b"89"
        stream.seek(1)
        assert stream.read(2) == b"12"
        assert stream.tell() == 3
    stream.close()  # a second close does nothing


def test_a_whole_read_goes_past_any_piece_size(provider: Provider) -> None:
    content = bytes(range(256)) * (5 * 4096 + 1)  # 5 MiB and 256 bytes: several reads' worth
    provider.write("/a", [content])
    assert read(provider, "/a") == content


def keeper(provider: Provider) -> AsideKeeper:
    assert isinstance(provider, AsideKeeper)
    return provider


def make_labelled(provider: Provider) -> dict[str, bytes]:
    """/d with a file, a dated file and a sub-collection holding a file; their contents."""
    provider.make_collection("/d")
    provider.make_collection("/d/sub")
    contents = {"/d/a": b"a", "/d/dated": b"dated", "/d/sub/b": b"b"}
    for path, body in contents.items():
        provider.write(path, [body])
    provider.set_mtime("/d/dated", 1_000_000.0)
    return contents


def test_a_tree_set_aside_is_gone_until_restored_whole(provider: Provider) -> None:
    contents = make_labelled(provider)
    provider.write("/other", [b"o"])
    dates = {path: provider.stat(path).mtime for path in contents}
    keeper(provider).set_aside("/d", "k1")
    assert keeper(provider).has_aside("/d", "k1")
    assert not keeper(provider).has_aside("/d", "k2")
    with pytest.raises(NotFound):
        provider.stat("/d")
    assert names(provider, "/") == {"other": False}
    assert provider.count("/", 100) == 2
    keeper(provider).restore("/d", "k1")
    assert not keeper(provider).has_aside("/d", "k1")
    assert names(provider, "/") == {"d": True, "other": False}
    assert names(provider, "/d") == {"a": False, "dated": False, "sub": True}
    assert {path: read(provider, path) for path in contents} == contents
    assert {path: provider.stat(path).mtime for path in contents} == dates


def test_a_file_set_aside_and_discarded_is_gone_for_good(provider: Provider) -> None:
    provider.write("/f", [b"old"])
    keeper(provider).set_aside("/f", "k")
    provider.write("/f", [b"new"])
    keeper(provider).discard("/f", "k")
    keeper(provider).discard("/f", "k")  # safe to repeat, as recovery may
    assert not keeper(provider).has_aside("/f", "k")
    assert read(provider, "/f") == b"new"
    assert names(provider, "/") == {"f": False}
    assert provider.count("/", 100) == 2


def test_setting_aside_what_is_not_there_is_not_found(provider: Provider) -> None:
    with pytest.raises(NotFound):
        keeper(provider).set_aside("/nope", "k")
    assert not keeper(provider).has_aside("/nope", "k")


def test_s3_copies_a_large_object_part_by_part(
    s3_store: s3server.S3Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The limits made small (S3 takes parts of 5 MiB and more), so the path CopyObject's
    # 5 GiB limit sends objects down runs on a few MiB.
    monkeypatch.setattr(s3, "COPY_LIMIT", 1 << 20)
    monkeypatch.setattr(s3, "COPY_PART", 5 << 20)
    provider = S3Provider(s3_store.new_root(), s3_store.endpoint)
    try:
        body = bytes(range(256)) * (11 << 12)  # 11 MiB: three parts
        provider.write("/a", [body])
        provider.set_mtime("/a", 1_234_567.0)
        provider.copy("/a", "/b")
        assert read(provider, "/b") == body
        # UploadPartCopy carries no metadata: the date a client set is copied by hand.
        assert provider.stat("/b").mtime == 1_234_567.0
        left = provider.client.list_multipart_uploads(
            Bucket=provider.bucket, Prefix=provider.prefix
        )
        assert left.get("Uploads", []) == []
    finally:
        provider.close()


def test_a_file_stream_dropped_unclosed_gives_its_descriptor_back(tmp_path: Path) -> None:
    provider = FilesystemProvider(str(tmp_path / "root"))
    provider.write("/a", [b"content"])
    _resource, stream = provider.open_read("/a")
    fd = stream.fileno()  # type: ignore[attr-defined]
    os.fstat(fd)
    del stream
    gc.collect()
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(fd)
    _resource, stream = provider.open_read("/a")
    stream.close()
    with pytest.raises(ValueError, match="closed file"):
        stream.fileno()  # type: ignore[attr-defined]
