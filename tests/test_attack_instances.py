"""An adversarial review of several davserver instances sharing one PostgreSQL database
(issue 18): clients racing through different instances, instances killed in the middle of a
change, the database going away under them, hostile sizes and names.

Every test talks HTTP to real instances (separate processes, tests/procs.py) over a real
PostgreSQL (tests/pg.py), except where a liveness rule is checked on two `PostgresDatabase`
objects with a short grace. Each test is named for what a user sees; those that proved a
defect say so in their comment.
"""

from __future__ import annotations

import contextlib
import random
import signal
import string
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
import requests
from helpers import (
    COLOR,
    color_of,
    lockinfo,
    prop_xml,
    proppatch_body,
    temp_files,
    wait_for,
)
from lxml import etree
from pg import PostgresServer
from procs import ServerProcess
from test_postgresql import dav, instances, several

from davserver import failpoints
from davserver.store import postgresql

__all__ = ["instances"]  # a fixture, used by name

NS_TOUCHED = "{urn:attack}touched"
_ALLPROP = b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'


def test_an_instance_stopped_while_the_database_is_frozen_still_stops(
    tmp_path: Path, postgres_url: str, postgres: PostgresServer
) -> None:
    # Defect: the owner's farewell (removing its row, releasing its advisory lock) waited for
    # an answer forever, so SIGTERM never ended an instance whose database had stalled.
    with several(tmp_path, postgres_url) as (first, second, _):
        assert dav(first, "PUT", "/f.txt", data=b"x").status_code == 201
        postgres.freeze(True)
        try:
            assert first.proc is not None
            first.proc.send_signal(signal.SIGTERM)
            assert first.proc.wait(30) == 0
        finally:
            postgres.freeze(False)
        assert dav(second, "GET", "/f.txt").content == b"x"


def test_a_frozen_database_costs_a_request_seconds_not_the_longest_statement(
    tmp_path: Path, postgres_url: str, postgres: PostgresServer
) -> None:
    # Defect: the request holding the pool's idle connection waited for the watchdog's
    # longest hold (11 s) on a database that answered nothing; the owner's heartbeat, silent
    # too, now has it cut after 3 s. (The bound is generous: 503 came after 11.1 s before.)
    with several(tmp_path, postgres_url) as (first, _, _):
        assert dav(first, "PUT", "/f.txt", data=b"x").status_code == 201
        postgres.freeze(True)
        try:
            began = time.monotonic()
            answer = dav(first, "PROPPATCH", "/f.txt", data=proppatch_body(COLOR, "red"))
            took = time.monotonic() - began
        finally:
            postgres.freeze(False)
        assert (answer.status_code, answer.headers.get("Retry-After")) == (503, "5")
        assert took < 8, took
        assert wait_for(
            lambda: (
                dav(first, "PROPPATCH", "/f.txt", data=proppatch_body(COLOR, "blue")).status_code
                == 207
            ),
            30,
        )
        assert color_of(first, "/f.txt") == "blue"


def _backends_waiting_on(url: str, statement: str) -> list[int]:
    """The pids of the database sessions whose statement starting with `statement` waits
    for a table lock."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s",
            (statement + "%",),
        )
        return [int(pid) for (pid,) in rows]


def _cut_off_moving_properties(url: str, during: Callable[[], object]) -> object:
    """Run `during` in a thread while writes of properties wait; once one waits (a MOVE's
    properties about to follow its rename), drop that session's connection, as a database
    restart or a network cut would. Returns what `during` returned."""
    done: list[object] = []
    with psycopg.connect(url, autocommit=True) as blocker:
        blocker.execute("BEGIN")
        blocker.execute("LOCK TABLE props IN EXCLUSIVE MODE")  # reads go on, writes wait
        worker = threading.Thread(target=lambda: done.append(during()))
        worker.start()
        assert wait_for(lambda: bool(_backends_waiting_on(url, "DELETE FROM props")), 30)
        for pid in _backends_waiting_on(url, "DELETE FROM props"):
            blocker.execute("SELECT pg_terminate_backend(%s)", (pid,))
        blocker.execute("ROLLBACK")
        worker.join(120)
    return done[0]


def _move_cut_off_midway(instance: ServerProcess, url: str) -> object:
    """A folder with labelled members MOVEd from /src/ to /dst/ through `instance`, with the
    database connection cut while the properties move; the MOVE's answer."""
    assert dav(instance, "MKCOL", "/src/").status_code == 201
    assert dav(instance, "PUT", "/src/f.txt", data=b"f").status_code == 201
    for path in ("/src/", "/src/f.txt"):
        answer = dav(instance, "PROPPATCH", path, data=proppatch_body(COLOR, "label" + path))
        assert answer.status_code == 207
    return _cut_off_moving_properties(
        url, lambda: dav(instance, "MOVE", "/src/", headers={"Destination": "/dst/"})
    )


def test_a_move_whose_database_connection_drops_midway_is_finished_by_the_next_meeting_change(
    instances: list[ServerProcess], postgres_url: str
) -> None:
    # Defect: the folder was renamed, then its properties' move failed (503) and the claim was
    # simply dropped: the moved files had lost their properties, and a new resource at the old
    # path showed them.
    first, second, _ = instances
    moved = _move_cut_off_midway(first, postgres_url)
    assert isinstance(moved, requests.Response)
    assert moved.status_code == 503
    assert moved.headers["Retry-After"] == "5"
    assert (first.root / "dst" / "f.txt").exists()
    # The next change meeting the interrupted MOVE (here through another instance) finishes it.
    assert dav(second, "MKCOL", "/src/").status_code == 201
    assert color_of(second, "/src/") is None
    assert color_of(second, "/dst/") == "label/src/"
    assert color_of(second, "/dst/f.txt") == "label/src/f.txt"


def test_a_recovery_whose_database_connection_drops_midway_is_tried_again(
    instances: list[ServerProcess], postgres_url: str
) -> None:
    # Defect: the recovering instance kept the claim after the database failed under it (as
    # for a change that cannot be recovered at all): its paths answered 503 Busy to every
    # change until that instance restarted, and it logged an error.
    first, second, _ = instances
    moved = _move_cut_off_midway(first, postgres_url)
    assert isinstance(moved, requests.Response) and moved.status_code == 503
    # The MKCOL meets the interrupted MOVE and recovers it, and that recovery is cut off too
    # (or an instance's own sweep for interrupted changes is, whichever comes first).
    made = _cut_off_moving_properties(
        postgres_url, lambda: dav(second, "MKCOL", "/src/", timeout=90).status_code
    )
    assert made == 201
    assert color_of(second, "/dst/f.txt") == "label/src/f.txt"


def _answer_of(ask: Callable[[], bool]) -> bool:
    """`ask()`'s answer once the database answers again (its pool reconnects in the
    background)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return ask()
        except postgresql.StoreUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_a_database_outage_longer_than_the_grace_makes_no_live_instance_look_dead(
    postgres: PostgresServer, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Defect: after an outage longer than the grace every instance had not been seen for
    # longer than the grace, and had lost its advisory lock; until it took the lock back, any
    # other instance meeting one of its claims presumed it dead and "recovered" a change it
    # was still making.
    grace = 2.0
    watcher = postgresql.PostgresDatabase(postgres_url, owner_grace=grace)
    other = postgresql.PostgresDatabase(postgres_url, owner_grace=grace)
    try:
        assert watcher.is_alive(other.owner)

        def slow() -> None:
            raise psycopg.OperationalError("still reconnecting")

        # The other instance is slower to come back (a loaded machine, a longer route).
        monkeypatch.setattr(other._live()[1], "_connect", slow)
        postgres.stop()
        try:
            # An outage: the time is what makes it one, nothing here measures it.
            time.sleep(max(grace, postgresql.STEADY_GAP) + 1)
        finally:
            postgres.start()
        assert _answer_of(lambda: watcher.is_alive(other.owner))
        # Once the database has been back for the grace, an instance that did not return is.
        assert wait_for(lambda: not _answer_of(lambda: watcher.is_alive(other.owner)), 30)
    finally:
        monkeypatch.undo()
        other.close()
        watcher.close()


def _labelled(instance: ServerProcess, files: dict[str, str]) -> None:
    """Write each file (its folders made on the way) holding its label, and set its property
    COLOR to the same label: a property that lands on another file shows."""
    for path, label in files.items():
        folders = path.split("/")[1:-1]
        for depth in range(1, len(folders) + 1):
            dav(instance, "MKCOL", "/" + "/".join(folders[:depth]) + "/")
        assert dav(instance, "PUT", path, data=label.encode()).status_code in (201, 204)
        assert (
            dav(instance, "PROPPATCH", path, data=proppatch_body(COLOR, label)).status_code == 207
        )


def _stored(url: str) -> tuple[dict[str, str], list[str]]:
    """The database's values of COLOR {path: text} and its lock roots."""
    with psycopg.connect(url) as conn:
        props = conn.execute("SELECT path, value FROM props WHERE name = %s", (COLOR,))
        values = {path: value.split(">", 1)[1].rsplit("<", 1)[0] for path, value in props}
        roots = [root for (root,) in conn.execute("SELECT root FROM locks")]
    return values, roots


def _agree(root: Path, url: str) -> dict[str, str]:
    """Files, properties and locks agree: every file holds the label its property holds, no
    row names a missing resource. Returns {path: label} of the files."""
    props, locks = _stored(url)
    files = {
        "/" + local.relative_to(root).as_posix(): local.read_text()
        for local in root.rglob("*.txt")
        if not local.name.startswith(".")
    }
    assert props == files
    assert [lock for lock in locks if not (root / lock.lstrip("/")).exists()] == []
    return files


WIN32_TIME = (
    '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:">'
    "<D:set><D:prop><Z:Win32LastModifiedTime>Wed, 01 Jan 2020 00:00:00 GMT"
    f"</Z:Win32LastModifiedTime>{prop_xml(COLOR, 'w')}</D:prop></D:set></D:propertyupdate>"
)


def test_changes_cut_off_by_killed_instances_are_recovered_through_a_survivor(
    tmp_path: Path, postgres_url: str
) -> None:
    """Five instances, each killed (SIGKILL) at one step of its own change: an overwriting
    MOVE with the destination set aside, a MOVE renamed but not recorded done, a COPY halfway,
    a PROPPATCH between the file's time and its properties, a LOCK of a new resource before
    the resource. A survivor's changes that meet theirs wait out the grace, recover them and
    succeed (no 500, no 503 within the documented wait), and everything agrees."""
    with several(tmp_path, postgres_url) as (survivor, _, _):
        root = survivor.root
        _labelled(survivor, {f"/m1/f{i}.txt": f"m1-{i}" for i in range(3)})
        _labelled(survivor, {f"/m1to/g{i}.txt": f"m1to-{i}" for i in range(2)})
        _labelled(survivor, {f"/m2/f{i}.txt": f"m2-{i}" for i in range(3)})
        _labelled(survivor, {f"/c/f{i}.txt": f"c-{i}" for i in range(4)})
        _labelled(survivor, {"/w.txt": "w"})
        cuts = [
            ("transfer.set-aside", "MOVE", "/m1/", {"Destination": "/m1to/", "Overwrite": "T"}),
            ("transfer.transferred", "MOVE", "/m2/", {"Destination": "/m2to/"}),
            ("copy.member@2", "COPY", "/c/", {"Destination": "/cto/"}),
            ("proppatch.mtime-set", "PROPPATCH", "/w.txt", {}),
            ("lock.acquired", "LOCK", "/new.txt", {}),
        ]
        bodies = {"PROPPATCH": WIN32_TIME.encode(), "LOCK": lockinfo()}

        def cut(index: int) -> int | None:
            point, method, path, headers = cuts[index]
            dying = ServerProcess(
                root,
                tmp_path / f"dying{index}",
                "--database",
                postgres_url,
                "--log-level",
                "error",
                env={failpoints.VARIABLE: point},
                workers=1,
            )
            try:
                with contextlib.suppress(requests.ConnectionError):
                    dav(dying, method, path, headers=headers, data=bodies.get(method))
                assert dying.proc is not None
                return dying.proc.wait(30)
            finally:
                dying.stop()

        with ThreadPoolExecutor(len(cuts)) as pool:
            assert list(pool.map(cut, range(len(cuts)))) == [-signal.SIGKILL] * len(cuts)
        meeting = [
            ("PROPPATCH", "/m1to/", proppatch_body(NS_TOUCHED)),
            ("PROPPATCH", "/m2/", proppatch_body(NS_TOUCHED)),
            ("PROPPATCH", "/c/", proppatch_body(NS_TOUCHED)),
            ("PROPPATCH", "/w.txt", proppatch_body(NS_TOUCHED)),
        ]

        def meet(index: int) -> int:
            method, path, body = meeting[index]
            # Beyond the documented wait (60 s, then 503): a hang fails here.
            return dav(survivor, method, path, data=body, timeout=90).status_code

        with ThreadPoolExecutor(len(meeting)) as pool:
            statuses = list(pool.map(meet, range(len(meeting))))
        # /m2/ was renamed before the crash: its recovery finished the MOVE, so it is gone.
        assert statuses == [207, 404, 207, 207]
        # A PUT meets the dead LOCK's lock before its claim (423, as for any lock); the lock
        # goes when a survivor recovers the LOCK by itself (defect: nobody ever did, since
        # no request met its claim, and the PUT stayed 423 until the lock expired).
        assert wait_for(
            lambda: dav(survivor, "PUT", "/new.txt", data=b"new").status_code == 201, 60
        )
        assert dav(survivor, "PROPPATCH", "/new.txt", data=proppatch_body(COLOR, "new")).ok
        files = _agree(root, postgres_url)
    assert (root / "w.txt").stat().st_mtime == 1577836800
    assert set(files) >= {f"/m2to/f{i}.txt" for i in range(3)} | {"/w.txt"}
    moved = {f"/m1to/f{i}.txt" for i in range(3)}
    kept = {f"/m1/f{i}.txt" for i in range(3)} | {f"/m1to/g{i}.txt" for i in range(2)}
    assert moved <= set(files) or kept <= set(files)
    assert not any(path.startswith("/cto/") for path in files)


def _unpredictable(length: int, seed: int) -> str:
    """`length` letters and digits that do not compress (PostgreSQL compresses long index
    entries before it measures them)."""
    rng = random.Random(seed)
    return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(length))


def test_names_and_paths_too_long_for_the_database_get_a_final_answer_not_503(
    instances: list[ServerProcess],
) -> None:
    # Defect: an index entry over PostgreSQL's limit (about 2,700 bytes) was taken for the
    # database being away: 503 with Retry-After, so clients retried forever, and each try
    # logged "database unavailable" and checked the whole pool.
    first, second, _ = instances
    assert dav(first, "PUT", "/f.txt", data=b"x").status_code == 201
    long_name = "{urn:x}p" + _unpredictable(3000, 1)
    refused = dav(first, "PROPPATCH", "/f.txt", data=proppatch_body(long_name, "v"))
    assert refused.status_code == 507
    assert "Retry-After" not in refused.headers
    # Names and paths up to the limit work through every instance (a path of 2,000 bytes:
    # eight folders of 250, the longest name most filesystems take).
    fine = "{urn:x}p" + _unpredictable(1000, 2)
    assert dav(second, "PROPPATCH", "/f.txt", data=proppatch_body(fine, "v")).status_code == 207
    folders = [_unpredictable(249, 10 + i) for i in range(8)]
    deep = ""
    for folder in folders:
        deep += "/" + folder
        assert dav(first, "MKCOL", deep + "/").status_code == 201
    assert dav(second, "PROPPATCH", deep + "/", data=proppatch_body()).status_code == 207
    assert color_of(first, deep + "/") == "red"
    # Past the limit (here at 2,750 bytes), a change is refused as a URI the server will not
    # take (RFC 9110 15.5.15), and nothing is left behind.
    for level in range(2):
        deep += "/" + _unpredictable(249, 20 + level)
        assert dav(first, "MKCOL", deep + "/").status_code == 201
    deeper = deep + "/" + _unpredictable(249, 30)
    assert dav(second, "MKCOL", deeper + "/").status_code == 414
    assert dav(first, "PUT", deeper, data=b"x").status_code == 414
    assert dav(second, "LOCK", deeper, data=lockinfo()).status_code == 414
    assert not (first.root / deeper.lstrip("/")).exists()
    assert temp_files(first.root) == []
    assert dav(second, "DELETE", "/" + folders[0] + "/").status_code == 204


def _at_once(*calls: Callable[[], requests.Response]) -> list[int]:
    """Send the requests together (released by one barrier); their statuses, in order."""
    barrier = threading.Barrier(len(calls))

    def send(call: Callable[[], requests.Response]) -> int:
        barrier.wait()
        return call().status_code

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(send, calls))


ROUNDS = 20


def test_clients_racing_through_two_instances_get_what_one_after_the_other_gives(
    instances: list[ServerProcess], postgres_url: str
) -> None:
    first, second, third = instances
    root = first.root

    def race(n: int) -> None:
        # Crossing MOVEs: the first replaces the other's source (204), the second carries it
        # back (201); one file is left, holding its own label under its own name.
        _labelled(first, {f"/x{n}.txt": f"x{n}", f"/y{n}.txt": f"y{n}"})
        crossing = _at_once(
            lambda: dav(first, "MOVE", f"/x{n}.txt", headers={"Destination": f"/y{n}.txt"}),
            lambda: dav(second, "MOVE", f"/y{n}.txt", headers={"Destination": f"/x{n}.txt"}),
        )
        assert sorted(crossing) == [201, 204]
        # Two exclusive LOCKs of one new resource: exactly one is granted.
        locking = _at_once(
            lambda: dav(first, "LOCK", f"/l{n}.bin", data=lockinfo()),
            lambda: dav(second, "LOCK", f"/l{n}.bin", data=lockinfo()),
        )
        assert sorted(locking) == [201, 423]
        # A MOVE of a folder and a PUT into it: the new file moves with the folder, or the
        # PUT finds no folder (409).
        _labelled(first, {f"/d{n}/a.txt": f"d{n}a"})
        move_put = _at_once(
            lambda: dav(first, "MOVE", f"/d{n}/", headers={"Destination": f"/e{n}/"}),
            lambda: dav(second, "PUT", f"/d{n}/b.txt", data=f"d{n}b".encode()),
        )
        assert move_put in ([201, 201], [201, 409])
        assert (root / f"e{n}" / "b.txt").exists() == (move_put[1] == 201)
        if move_put[1] == 201:
            body = proppatch_body(COLOR, f"d{n}b")
            assert dav(third, "PROPPATCH", f"/e{n}/b.txt", data=body).status_code == 207
        # A LOCK of a folder on one instance against a PUT, a DELETE and a MOVE of its
        # members on the others: each is refused (423) exactly when the LOCK came first.
        _labelled(first, {f"/k{n}/{m}.txt": f"k{n}{m}" for m in "pqr"})
        against = _at_once(
            lambda: dav(first, "LOCK", f"/k{n}/", data=lockinfo()),
            lambda: dav(second, "PUT", f"/k{n}/p.txt", data=f"k{n}p".encode()),
            lambda: dav(third, "DELETE", f"/k{n}/q.txt"),
            lambda: dav(second, "MOVE", f"/k{n}/r.txt", headers={"Destination": f"/s{n}.txt"}),
        )
        assert against[0] == 200
        assert against[1] in (204, 423) and against[2] in (204, 423)
        assert against[3] in (201, 423)
        assert (root / f"k{n}" / "q.txt").exists() == (against[2] == 423)
        assert (root / f"s{n}.txt").exists() == (against[3] == 201)
        # COPY onto a destination being locked elsewhere: the COPY replaces it before the
        # LOCK (which then locks the copy), or the LOCK refuses the COPY.
        _labelled(first, {f"/c{n}.txt": f"c{n}", f"/t{n}.txt": f"t{n}"})
        copy_lock = _at_once(
            lambda: dav(first, "COPY", f"/c{n}.txt", headers={"Destination": f"/t{n}.txt"}),
            lambda: dav(second, "LOCK", f"/t{n}.txt", data=lockinfo()),
        )
        assert copy_lock in ([204, 200], [423, 200])
        assert (root / f"t{n}.txt").read_text() == (f"c{n}" if copy_lock[0] == 204 else f"t{n}")

    for n in range(ROUNDS):
        race(n)
    # Every file holds the label its property holds; no lock on a missing resource.
    _agree(root, postgres_url)


def _update(sets: dict[str, str], removes: tuple[str, ...] = ()) -> bytes:
    """A PROPPATCH body that sets `sets` ({name: value}) and removes `removes`."""
    setting = "".join(prop_xml(name, value) for name, value in sets.items())
    removing = "".join(prop_xml(name) for name in removes)
    removal = f"<D:remove><D:prop>{removing}</D:prop></D:remove>" if removes else ""
    return (
        '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:">'
        f"<D:set><D:prop>{setting}</D:prop></D:set>{removal}</D:propertyupdate>"
    ).encode()


def test_concurrent_proppatches_through_two_instances_are_each_all_or_nothing(
    instances: list[ServerProcess],
) -> None:
    first, second, third = instances
    assert dav(first, "PUT", "/pp.txt", data=b"x").status_code == 201
    a, b = "{urn:attack}a", "{urn:attack}b"

    def patch(n: int) -> int:
        """Each sets a and b to one value and a property of its own; every third also
        removes a protected property, which refuses the whole PROPPATCH."""
        target = first if n % 2 else second
        sets = {a: f"v{n}", b: f"v{n}", f"{{urn:attack}}own{n}": str(n)}
        removes = ("{DAV:}getetag",) if n % 3 == 0 else ()
        answer = dav(target, "PROPPATCH", "/pp.txt", data=_update(sets, removes))
        assert answer.status_code == 207
        return 403 if b"403" in answer.content else 200 if b"200 OK" in answer.content else 0

    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(patch, range(120)))
    assert outcomes == [403 if n % 3 == 0 else 200 for n in range(120)]
    answer = dav(third, "PROPFIND", "/pp.txt", headers={"Depth": "0"}, data=_ALLPROP)
    found = {e.tag: e.text for e in etree.fromstring(answer.content).iterfind(".//{DAV:}prop/*")}
    assert found[a] == found[b] and found[a] in {f"v{n}" for n in range(120) if n % 3}
    owns = {tag for tag in found if tag.startswith("{urn:attack}own")}
    assert owns == {f"{{urn:attack}}own{n}" for n in range(120) if n % 3}


def test_a_database_restart_under_moves_and_proppatches_loses_nothing_and_splits_nothing(
    instances: list[ServerProcess], postgres: PostgresServer, postgres_url: str
) -> None:
    """Folders moved back and forth and files labelled through every instance while the
    database restarts: answers are 503 with Retry-After or success, never 500; afterwards
    every claim is recovered and every file holds the label its property holds."""
    first = instances[0]
    root = first.root
    for i in range(6):
        _labelled(first, {f"/r{i}/f{j}.txt": f"r{i}-{j}" for j in range(3)})
    stop = threading.Event()
    answers: list[tuple[int, str | None]] = []
    guard = threading.Lock()

    def load(i: int) -> None:
        """Moves folder i between /r{i}/ and /r{i}x/, through each instance in turn."""
        for turn in range(2000):  # bounded; ends once the database is back and answering
            if stop.is_set():
                return
            instance = instances[turn % 3]
            here = f"/r{i}/" if (root / f"r{i}").exists() else f"/r{i}x/"
            there = f"/r{i}x/" if here == f"/r{i}/" else f"/r{i}/"
            if turn % 2:
                answer = dav(instance, "MOVE", here, headers={"Destination": there})
            else:
                answer = dav(instance, "PROPPATCH", here, data=proppatch_body(NS_TOUCHED))
            with guard:
                answers.append((answer.status_code, answer.headers.get("Retry-After")))

    workers = [threading.Thread(target=load, args=(i,)) for i in range(6)]
    for worker in workers:
        worker.start()
    try:
        assert wait_for(lambda: len(answers) >= 60, 60)
        postgres.stop()
        assert wait_for(lambda: any(s == 503 for s, _ in answers), 30)
        postgres.start()
        back = len(answers)
        assert wait_for(lambda: sum(s in (201, 207) for s, _ in answers[back:]) >= 60, 60)
    finally:
        stop.set()
        for worker in workers:
            worker.join(60)
    assert {s for s, _ in answers} <= {201, 207, 503}
    assert {after for s, after in answers if s == 503} == {"5"}

    def claims_left() -> int:
        with psycopg.connect(postgres_url) as conn:
            row = conn.execute("SELECT count(*) FROM claims").fetchone()
        return -1 if row is None else int(row[0])

    # Changes cut off by the restart are recovered by the instances' own sweeps.
    assert wait_for(lambda: claims_left() == 0, 60)
    files = _agree(root, postgres_url)
    assert len(files) == 18
