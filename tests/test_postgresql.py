"""Several davserver instances as one server: three processes over one folder and one
PostgreSQL database (a real one, tests/pg.py), as a load balancer would spread clients."""

from __future__ import annotations

import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
import requests
from cluster import assert_litmus_passed, round_robin, several
from helpers import (
    COLOR,
    digest_authorization,
    digest_challenge,
    free_port,
    lockinfo,
    propfind_body,
    proppatch_body,
    run_litmus,
    temp_files,
    wait_for,
)
from lxml import etree
from pg import PostgresServer
from procs import ServerProcess

from davserver import cli, logs
from davserver.passwords import set_password
from davserver.store import postgresql
from davserver.store.postgresql import masked

NS = "urn:several"


@pytest.fixture
def instances(tmp_path: Path, postgres_url: str) -> Iterator[list[ServerProcess]]:
    with several(tmp_path, postgres_url) as started:
        yield started


def dav(instance: ServerProcess, method: str, path: str, **kwargs: object) -> requests.Response:
    kwargs.setdefault("timeout", 30)
    return requests.request(method, instance.base + path, **kwargs)  # type: ignore[arg-type]


def lock(instance: ServerProcess, path: str) -> str:
    answer = dav(
        instance, "LOCK", path, headers={"Timeout": "Second-600"}, data=lockinfo("several")
    )
    assert answer.status_code in (200, 201), answer.text
    return answer.headers["Lock-Token"]


def dead_properties(instance: ServerProcess, path: str) -> dict[str, str]:
    """Every dead property in the namespace NS on `path`, by local name."""
    body = b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'
    answer = dav(instance, "PROPFIND", path, headers={"Depth": "0"}, data=body)
    assert answer.status_code == 207, answer.text
    found = etree.fromstring(answer.content).iterfind(".//{DAV:}prop/*")
    return {e.tag.split("}")[1]: e.text or "" for e in found if e.tag.startswith("{" + NS)}


def test_the_password_never_shows() -> None:
    assert "s3cret" not in masked("postgresql://dav:s3cret@db.example:5432/dav")
    assert "***" in masked("postgresql://dav:s3cret@db.example/dav")
    assert "s3cret" not in masked("postgresql://db.example/dav?password=s3cret&user=dav")
    assert masked("postgresql://dav@db.example/dav") == "user=dav dbname=dav host=db.example"


def test_an_unreachable_database_stops_the_start_naming_it_without_the_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # cli.main sets up the process's logging; undone afterwards, for the tests run after this
    # one in the same process (their access lines go to caplog).
    for logger in (logging.getLogger(), logs.access_logger):
        monkeypatch.setattr(logger, "handlers", list(logger.handlers))
        monkeypatch.setattr(logger, "level", logger.level)
    monkeypatch.setattr(logs, "_access_writer", None)
    url = f"postgresql://dav:s3cret@127.0.0.1:{free_port()}/dav"
    code = cli.main(
        [str(tmp_path / "root"), "--port", "0", "--state-dir", str(tmp_path), "--database", url]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "[storage] database" in err and "127.0.0.1" in err
    assert "s3cret" not in err


def test_a_lock_taken_through_one_instance_holds_on_the_others(
    instances: list[ServerProcess],
) -> None:
    first, second, third = instances
    assert dav(first, "PUT", "/doc.txt", data=b"v1").status_code == 201
    token = lock(first, "/doc.txt")
    for other in (second, third):
        assert dav(other, "PUT", "/doc.txt", data=b"v2").status_code == 423
        refused = dav(other, "LOCK", "/doc.txt", data=lockinfo("another"))
        assert refused.status_code == 423
    sent = {"If": f"({token})"}
    assert dav(second, "PUT", "/doc.txt", data=b"v2", headers=sent).status_code == 204
    assert dav(third, "UNLOCK", "/doc.txt", headers={"Lock-Token": token}).status_code == 204
    assert dav(first, "PUT", "/doc.txt", data=b"v3").status_code == 204


def test_properties_set_through_one_instance_are_seen_through_the_others_at_once(
    instances: list[ServerProcess],
) -> None:
    first = instances[0]
    assert dav(first, "PUT", "/p.txt", data=b"x").status_code == 201
    for n, (writer, reader) in enumerate(itertools.permutations(instances, 2)):
        answer = dav(writer, "PROPPATCH", "/p.txt", data=proppatch_body(COLOR, f"c{n}"))
        assert answer.status_code == 207 and b"200 OK" in answer.content
        found = dav(reader, "PROPFIND", "/p.txt", headers={"Depth": "0"}, data=propfind_body(COLOR))
        assert f"c{n}".encode() in found.content


def test_concurrent_proppatches_on_two_instances_lose_no_update(
    instances: list[ServerProcess],
) -> None:
    first, second, third = instances
    assert dav(first, "PUT", "/busy.txt", data=b"x").status_code == 201

    def patch(n: int) -> int:
        target = first if n % 2 else second
        body = proppatch_body(f"{{{NS}}}p{n}", str(n))
        answer = dav(target, "PROPPATCH", "/busy.txt", data=body)
        return answer.status_code if b"200 OK" in answer.content else -answer.status_code

    with ThreadPoolExecutor(32) as pool:
        statuses = list(pool.map(patch, range(400)))
    assert statuses == [207] * 400
    assert dead_properties(third, "/busy.txt") == {f"p{n}": str(n) for n in range(400)}


def test_a_put_cut_off_by_killing_its_instance_leaves_the_old_file(
    instances: list[ServerProcess],
) -> None:
    dying, survivor, _ = instances
    assert dav(dying, "PUT", "/kept.bin", data=b"old content").status_code == 201
    root = dying.root
    with socket.create_connection(("127.0.0.1", dying.port), timeout=10) as sock:
        head = "PUT /kept.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n"
        sock.sendall(head.encode() + b"n" * 200_000)
        assert wait_for(lambda: bool(temp_files(root)), 10)  # the upload is under way
        dying.kill()
    assert dav(survivor, "GET", "/kept.bin").content == b"old content"
    dying.start()
    assert wait_for(lambda: not temp_files(root), 10)
    assert dav(dying, "PUT", "/kept.bin", data=b"new").status_code == 204
    assert dav(survivor, "GET", "/kept.bin").content == b"new"


def test_a_database_restart_under_load_gives_503_then_recovers_losing_nothing(
    instances: list[ServerProcess], postgres: PostgresServer
) -> None:
    first, second, third = instances
    assert dav(first, "PUT", "/locked.txt", data=b"x").status_code == 201
    assert dav(first, "PUT", "/load.txt", data=b"x").status_code == 201
    token = lock(second, "/locked.txt")
    stop = threading.Event()
    names = itertools.count()
    answers: list[tuple[int, str | None, str]] = []  # status, Retry-After, property name
    guard = threading.Lock()

    def load(instance: ServerProcess) -> None:
        for _ in range(5000):  # bounded; ends when the database is back and answering
            if stop.is_set():
                return
            name = f"q{next(names)}"
            answer = dav(instance, "PROPPATCH", "/load.txt", data=proppatch_body(f"{{{NS}}}{name}"))
            status = answer.status_code
            if status == 207 and b"200 OK" not in answer.content:
                status = -207
            with guard:
                answers.append((status, answer.headers.get("Retry-After"), name))

    workers = [threading.Thread(target=load, args=(i,)) for i in instances for _ in range(2)]
    for worker in workers:
        worker.start()
    try:
        assert wait_for(lambda: len(answers) >= 30, 30)
        postgres.stop()
        assert wait_for(lambda: any(s == 503 for s, _, _ in answers), 30)
        postgres.start()
        restarted = len(answers)
        assert wait_for(lambda: any(s == 207 for s, _, _ in answers[restarted:]), 30)
        recovered = len(answers)
        assert wait_for(lambda: len(answers) >= recovered + 30, 30)
    finally:
        stop.set()
        for worker in workers:
            worker.join(60)
    assert {s for s, _, _ in answers} == {207, 503}
    assert all(after == "5" for s, after, _ in answers if s == 503)
    stored = dead_properties(third, "/load.txt")
    assert {name for s, _, name in answers if s == 207} <= set(stored)
    for instance in instances:
        assert dav(instance, "PUT", "/locked.txt", data=b"y").status_code == 423
    sent = {"If": f"({token})"}
    assert dav(third, "PUT", "/locked.txt", data=b"y", headers=sent).status_code == 204


def test_an_instance_with_a_wrong_clock_keeps_time_by_the_database(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    class HourFast:
        monotonic = staticmethod(time.monotonic)  # intervals: not the wall clock

        @staticmethod
        def time() -> float:
            return time.time() + 3600

    honest = postgresql.PostgresDatabase(postgres_url)
    with monkeypatch.context() as patched:
        patched.setattr(postgresql, "time", HourFast)
        skewed = postgresql.PostgresDatabase(postgres_url)
        skewed_now = skewed.clock()
    try:
        assert abs(skewed_now - honest.clock()) < 1
        assert abs(honest.clock() - time.time()) < 1
    finally:
        skewed.close()
        honest.close()


def test_litmus_passes_through_nginx_round_robin_over_three_instances(
    tmp_path: Path, postgres_url: str
) -> None:
    with (
        several(tmp_path, postgres_url, "--trusted-proxy", "127.0.0.1") as started,
        round_robin(tmp_path / "nginx", started) as base,
    ):
        _, report = run_litmus(tmp_path, "--url", base + "/", timeout=600)
    assert_litmus_passed(report)


def test_instances_starting_at_once_create_the_schema_once(postgres_url: str) -> None:
    barrier = threading.Barrier(6)

    def start(_: int) -> postgresql.PostgresDatabase:
        barrier.wait()
        return postgresql.PostgresDatabase(postgres_url)

    with ThreadPoolExecutor(6) as pool:
        opened = list(pool.map(start, range(6)))
    for db in opened:
        db.close()
    with psycopg.connect(postgres_url) as conn:
        versions = conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
    assert versions == [(v,) for v in range(1, postgresql.SCHEMA_VERSION + 1)]


def test_a_schema_from_a_newer_release_is_refused(postgres_url: str) -> None:
    postgresql.PostgresDatabase(postgres_url).close()
    with psycopg.connect(postgres_url) as conn:
        conn.execute("INSERT INTO schema_version VALUES (%s)", (postgresql.SCHEMA_VERSION + 1,))
    with pytest.raises(postgresql.SchemaTooNew):
        postgresql.PostgresDatabase(postgres_url)


def test_with_one_digest_secret_a_nonce_from_one_instance_is_good_on_another(
    tmp_path: Path, postgres_url: str
) -> None:
    # README, "Several instances": the same htpasswd and Digest files, and auth-secret copied
    # into every instance's state folder before it starts.
    users, digests = tmp_path / "htpasswd", tmp_path / "digest"
    set_password(str(users), "ann", "ann's password", str(digests), "davserver")
    secret = os.urandom(32)
    for index in range(3):
        (tmp_path / f"s{index}").mkdir()
        (tmp_path / f"s{index}" / "auth-secret").write_bytes(secret)
    auth = ("--htpasswd", str(users), "--digest-file", str(digests))
    with several(tmp_path, postgres_url, *auth) as (first, second, third):
        challenge = digest_challenge(dav(first, "PROPFIND", "/"), "SHA-256")
        for n, other in enumerate((second, third), start=1):
            sent = digest_authorization(
                "PROPFIND", "/", "ann", "ann's password", challenge, "SHA-256", n
            )
            answer = dav(other, "PROPFIND", "/", headers={"Authorization": sent, "Depth": "0"})
            assert answer.status_code == 207


def test_a_database_that_stops_answering_gives_503_not_a_hang(
    instances: list[ServerProcess], postgres: PostgresServer
) -> None:
    first, second, _ = instances
    assert dav(first, "PUT", "/f.txt", data=b"x").status_code == 201
    assert (
        dav(first, "PROPPATCH", "/f.txt", data=proppatch_body(COLOR, "before")).status_code == 207
    )
    postgres.freeze(True)
    try:
        # The client's 30 s timeout would fail the test: the answer comes well before.
        answer = dav(second, "PROPPATCH", "/f.txt", data=proppatch_body(COLOR, "frozen"))
        assert answer.status_code == 503
        assert answer.headers["Retry-After"] == "5"
    finally:
        postgres.freeze(False)

    def patched() -> bool:
        body = proppatch_body(COLOR, "after")
        return dav(second, "PROPPATCH", "/f.txt", data=body).status_code == 207

    assert wait_for(patched, 30)
    found = dav(first, "PROPFIND", "/f.txt", headers={"Depth": "0"}, data=propfind_body(COLOR))
    assert b"after" in found.content
