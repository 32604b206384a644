"""Three stateless davserver instances over one bucket (SeaweedFS, tests/s3server.py) and one
PostgreSQL database (tests/pg.py), behind nginx: files in the bucket, properties, locks and
claims in the database, nothing in any instance's own folder that another needs."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import s3server
from cluster import assert_litmus_passed, round_robin, several
from helpers import run_litmus, wait_for
from procs import ServerProcess
from test_s3 import objects, uploads

from davserver.provider.s3 import PART_SIZE


@pytest.fixture
def on_s3(
    tmp_path: Path, postgres_url: str, s3_store: s3server.S3Store
) -> Iterator[list[ServerProcess]]:
    endpoint = ("--s3-endpoint", s3_store.endpoint, "--trusted-proxy", "127.0.0.1")
    with several(tmp_path, postgres_url, *endpoint, root=s3_store.new_root()) as started:
        yield started


def test_litmus_passes_through_nginx_over_three_instances_on_s3(
    on_s3: list[ServerProcess], tmp_path: Path
) -> None:
    with round_robin(tmp_path / "nginx", on_s3) as base:
        _, report = run_litmus(tmp_path, "--url", base + "/", timeout=900)
    assert_litmus_passed(report)


def test_killing_an_instance_mid_upload_loses_nothing(
    on_s3: list[ServerProcess], s3_store: s3server.S3Store
) -> None:
    """One instance dies while a large upload through it is under way (its first parts in
    the store); the others keep taking writes, the old file stays whole, and once the dead
    instance starts again its unfinished upload is aborted."""
    dying, second, third = on_s3
    root = str(dying.root)
    assert dying.request("PUT", "/kept.bin", data=b"old content").status_code == 201
    assert second.request("MKCOL", "/other/").status_code == 201
    expected = {"kept.bin": b"old content", "other/": b""}
    with socket.create_connection(("127.0.0.1", dying.port), timeout=30) as sock:
        head = f"PUT /kept.bin HTTP/1.1\r\nHost: x\r\nContent-Length: {3 * PART_SIZE}\r\n\r\n"
        sock.sendall(head.encode() + b"n" * (PART_SIZE + 100_000))
        assert wait_for(lambda: bool(uploads(s3_store, root)), 30)  # a part is in the store
        for n in range(10):
            writer = (second, third)[n % 2]
            assert writer.request("PUT", f"/other/{n}", data=b"%d" % n).status_code == 201
            expected[f"other/{n}"] = b"%d" % n
        dying.kill()
    for survivor in (second, third):
        assert survivor.request("GET", "/kept.bin").content == b"old content"
    dying.start()
    # Its start sweeps in the background: the dead process's upload and its note go.
    assert wait_for(lambda: uploads(s3_store, root) == [], 30)
    assert wait_for(lambda: objects(s3_store, root) == expected, 30), objects(s3_store, root)
    assert dying.request("PUT", "/kept.bin", data=b"new").status_code == 204
    assert third.request("GET", "/kept.bin").content == b"new"
