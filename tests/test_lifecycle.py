"""Starting and stopping a server: what a start cleans up on the share, and what a stop gives
back to the process."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from conftest import LiveServer
from helpers import lockinfo, make_tree, proppatch_body, wait_for

from davserver.provider.fs import STALE_UPLOAD_SECONDS, TEMP_PREFIX, TRASH_NAME


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def use_the_store(live: LiveServer) -> None:
    """Requests that read and write the property and lock store from several worker threads
    at once, so that several threads hold a connection to it."""

    def one(i: int) -> None:
        with requests.Session() as session:
            url = live.url(f"/f{i}.txt")
            assert session.put(url, data=b"x", timeout=30).status_code == 201
            patched = session.request("PROPPATCH", url, data=proppatch_body(), timeout=30)
            assert patched.status_code == 207
            locked = session.request("LOCK", url, data=lockinfo(), timeout=30)
            assert locked.status_code == 200

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, range(4)))


def test_starting_and_stopping_servers_leaks_no_descriptors(tmp_path: Path) -> None:
    # A stopped server must close its SQLite connections (one per worker thread that used
    # the store, three descriptors each in WAL mode): a process that starts servers again and
    # again, as this test suite does, otherwise runs out of descriptors.
    def cycle(n: int) -> None:
        root = tmp_path / f"root{n}"
        root.mkdir()
        live = LiveServer(root, tmp_path / f"state{n}", {})
        try:
            use_the_store(live)
        finally:
            live.stop()

    cycle(0)  # what the first server loads once for good (modules, logging) is not a leak
    before = open_descriptors()
    for n in range(1, 26):
        cycle(n)
    assert open_descriptors() <= before


def test_a_start_sweeps_away_what_a_crash_left_behind(tmp_path: Path) -> None:
    # Uploads a crash cut off (temporary files untouched for an hour) and the trash of deleted
    # files go when the server starts, at any depth; an upload still being written stays.
    root = tmp_path / "root"
    stale_upload = root / "dir" / "sub" / f"{TEMP_PREFIX}upload"
    fresh_upload = root / "dir" / f"{TEMP_PREFIX}writing"
    make_tree(
        root,
        {
            "dir/sub/" + stale_upload.name: b"cut off",
            "dir/" + fresh_upload.name: b"in progress",
            f"{TRASH_NAME}/1-1": b"deleted",
            "dir/kept.txt": b"kept",
        },
    )
    old = time.time() - STALE_UPLOAD_SECONDS - 60
    os.utime(stale_upload, (old, old))
    live = LiveServer(root, tmp_path / "state", {})
    try:
        assert wait_for(lambda: not stale_upload.exists())
        assert wait_for(lambda: os.listdir(root / TRASH_NAME) == [])
        assert fresh_upload.read_bytes() == b"in progress"
        assert (root / "dir" / "kept.txt").read_bytes() == b"kept"
    finally:
        live.stop()
