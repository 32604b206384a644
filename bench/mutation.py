"""Mutation testing with mutmut 3 over the modules where a bug loses data or lets someone in.

    .venv/bin/python bench/mutation.py                  # every target below (see docs/mutation.md)
    .venv/bin/python bench/mutation.py paths ifheader   # some of them
    .venv/bin/python bench/mutation.py --write          # and rewrite the table in docs/mutation.md

Each target is one module mutated against only the fast test files that cover it: mutmut first
runs the whole test selection once to learn which test reaches which function, so a selection
with live-server tests would cost minutes before the first mutant. A target runs in its own
scratch copy of the project (build/mutation/<target>/, git-ignored, made afresh each time)
whose pyproject.toml is ours with `only_mutate` and the test selection of that target added:
mutmut reads its settings from the working folder only.

A survivor is either killed by a test or listed in EQUIVALENT with the reason no test can tell
it from the original. mutmut numbers the mutants of a function in order, so the names stay
valid while that function is unchanged; after an edit, rerun and examine the new survivors.
The exit status is 1 when a survivor is neither killed nor explained.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRATCH = ROOT / "build" / "mutation"
DOC = ROOT / "docs" / "mutation.md"
TABLE_START = "<!-- mutation table: bench/mutation.py --write -->"
TABLE_END = "<!-- end of mutation table -->"


@dataclass(frozen=True)
class Target:
    """`module` mutated (only the mutants matching `mutants`, if given) against `tests`.

    `process_tests` pairs a pattern of mutant names with tests whose server runs in a child
    process (tests/test_crash.py: a failpoint kills it). mutmut maps tests to the functions
    they reach within its own process only, so it never runs these; each survivor matching a
    pattern is run against its tests afterwards (`recheck`).
    """

    module: str
    tests: tuple[str, ...]
    mutants: tuple[str, ...] = ()
    process_tests: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # mutmut's time limit for a mutant is (its tests' time + 1 s) x 2 x this, with a test's
    # time measured without its fixtures: for a live-server test, without starting and
    # stopping the server, which take longer than the test. None: pyproject.toml's value.
    timeout_multiplier: float | None = None

    def process_for(self, mutant: str) -> list[str]:
        """The child-process tests that `mutant` must also pass."""
        return [t for p, ts in self.process_tests if fnmatch.fnmatch(mutant, p) for t in ts]


_AUTH = "davserver.auth."
_WRITE = "davserver.methods.write."
_COPYMOVE = "davserver.methods.copymove."
_BATCH = "davserver.methods.batch."
_DAVAPP = "davserver.app.xǁDavAppǁ"


def _batch_target(functions: tuple[str, ...], crashing: str | None = None) -> Target:
    """A target over some of batch.py's functions (mutmut's mangled names), with the batch
    tests, and the batch crash test for the mutants matching `crashing`, if given."""
    crash_test = (_CRASH + "test_batch_killed_midway_is_recovered_item_by_item",)
    return Target(
        "davserver/methods/batch.py",
        ("tests/test_batch.py", "tests/test_review_batch.py"),
        tuple(f"{_BATCH}x{name}__mutmut_*" for name in functions),
        process_tests=() if crashing is None else ((_BATCH + crashing, crash_test),),
        timeout_multiplier=LIVE_TIMEOUT,
    )


_CRASH = "tests/test_crash.py::"
_SHORTCUT_TESTS = ("tests/test_shortcut.py", "tests/test_shortcut_attack.py")
# mutmut's default multiplier, for targets whose tests start a server each (see Target).
LIVE_TIMEOUT = 15.0
TARGETS: dict[str, Target] = {
    "paths": Target("davserver/paths.py", ("tests/test_paths.py",)),
    "ifheader": Target("davserver/ifheader.py", ("tests/test_ifheader.py",)),
    "headers": Target("davserver/headers.py", ("tests/test_headers.py",)),
    # The access rules only: the Basic and Digest checks are exercised through a live server.
    "auth-rules": Target(
        "davserver/auth.py",
        ("tests/test_auth_rules.py",),
        tuple(
            _AUTH + name
            for name in (
                "xǁRuleǁ*",
                "xǁPolicyǁ*",
                "x_needs__mutmut_*",
                "x_require__mutmut_*",
                "x_default_policy__mutmut_*",
            )
        ),
    ),
    "owners": Target("davserver/owners.py", ("tests/test_claims.py", "tests/test_owners.py")),
    "store-base": Target(
        "davserver/store/base.py", ("tests/test_claims.py", "tests/test_store_contract.py")
    ),
    "store-sqlite": Target(
        "davserver/store/sqlite.py", ("tests/test_store_contract.py", "tests/test_store_sqlite.py")
    ),
    # Guard needs a request and services: test_locks.py drives it through a live server, and
    # the one test of a lock's owner (RFC 4918 6.4) needs logged-in users.
    "locking": Target(
        "davserver/locking.py",
        ("tests/test_locks.py", "tests/test_auth.py::test_locks_belong_to_their_user"),
    ),
    # The modules below are only reached through a live server: each target takes the test
    # files of its method and those that reach its rarer paths (conditions, locks, rules), and
    # the generous time limit of mutmut's default.
    "write": Target(
        "davserver/methods/write.py",
        (
            "tests/test_write.py",
            "tests/test_desktop_clients.py",
            "tests/test_rfc4918_methods.py",
            "tests/test_locks.py::test_delete_member_of_locked_collection",
            "tests/test_locks.py::test_delete_removes_locks",
        ),
        process_tests=(
            (
                _WRITE + "x__put_whole__*",
                (
                    _CRASH
                    + "test_put_killed_leaves_the_old_or_the_new_content_and_no_temporary_file",
                ),
            ),
            (
                _WRITE + "x__put_range__*",
                (_CRASH + "test_content_range_put_killed_keeps_what_arrived_and_nothing_else",),
            ),
            (
                _WRITE + "x_make_collection__*",
                (_CRASH + "test_mkcol_killed_after_forgetting_stale_rows_leaves_nothing_attached",),
            ),
            (
                _WRITE + "x_delete_resource__*",
                (_CRASH + "test_folder_delete_killed_midway_leaves_no_rows_of_deleted_files",),
            ),
        ),
        timeout_multiplier=LIVE_TIMEOUT,
    ),
    "copymove": Target(
        "davserver/methods/copymove.py",
        (
            "tests/test_copymove.py",
            "tests/test_rfc4918_copymove.py",
            "tests/test_copy_links_review.py",
            "tests/test_locks.py",
            "tests/test_desktop_clients.py::test_copy_and_move_with_x_oc_mtime",
            "tests/test_ordering.py::test_crossing_moves_run_one_after_the_other",
            "tests/test_ordering.py::test_overwriting_move_that_fails_keeps_the_destination",
            "tests/test_ordering.py::test_overwriting_copy_whose_destination_cannot_be_made_keeps_it",
        ),
        timeout_multiplier=LIVE_TIMEOUT,
    ),
    # What decides who may do what, and where: a path kept inside the collection (_resolve),
    # the access rules and login of every item, the claims a batch holds, which POST is a
    # batch. Its parsing, running and answering are the targets below.
    "batch": _batch_target(
        (
            "__resolve",
            "ǁRunnerǁrun",
            "ǁRunnerǁ_authorize",
            "ǁRunnerǁrequire_login",
            "__claims",
            "__outermost",
            "_is_batch",
        ),
        "x__claims__*",
    ),
    # What runs a batch's items and can lose data: each item's call into the methods' own
    # functions (delete, copy, move, mkcol, proppatch), how a tree operation's failures become
    # its result, and stop_on_error (an item run after a failure).
    "batch-run": _batch_target(
        ("ǁRunnerǁ_execute", "ǁRunnerǁ_members", "ǁRunnerǁrelative", "__results"),
        "xǁRunnerǁ_execute__*",
    ),
    # The handler: which POST is run at all (a read-only share, the target's conditions, the
    # body's limits and lock tokens), the propfind item, and a refused body's answer.
    "batch-post": _batch_target(
        ("_post", "ǁRunnerǁ_propfind", "__bad", "ǁTallyǁnote"), "x_post__*"
    ),
    # Reading the body: the JSON document, each item's keys and values, and the 400 that says
    # what is wrong (its code, its index, and a reason the client reads).
    "batch-parse": _batch_target(
        (
            "_parse_batch",
            "__encodable",
            "__operation",
            "__string",
            "__names",
            "__check_name",
            "ǁBatchErrorǁ__init__",
            "ǁBatchErrorǁjson",
        )
    ),
    # The answer: each result as JSON or as a <D:response>, the error codes, the hrefs an
    # error names, the summary, the spool the answer waits in, and the Runner's base (which
    # paths are relative to).
    "batch-answer": _batch_target(
        (
            "ǁItemResultǁas_json",
            "ǁRunnerǁ_hrefs",
            "__code",
            "__json_stream",
            "__xml_item",
            "ǁSpoolǁ__init__",
            "ǁSpoolǁ__iter__",
            "ǁRunnerǁ__init__",
        )
    ),
    # The body limits and framing of a request (not its Destination, nor its hrefs). The
    # framing tests run their server in a child process (a framing error may close it).
    "request-body": Target(
        "davserver/request.py",
        (
            "tests/test_mutation_request.py",
            "tests/test_write.py",
            "tests/test_hostile.py::test_huge_declared_xml_body_is_413_unread",
            "tests/test_hostile.py::test_xml_body_over_the_limit_is_413",
            "tests/test_hostile.py::test_a_transfer_coding_other_than_chunked_is_501_and_nothing_stored",
            "tests/test_hostile.py::test_an_empty_item_in_the_transfer_codings_is_ignored",
        ),
        tuple(
            f"davserver.request.xǁRequestǁ{name}__mutmut_*"
            for name in (
                "content_length",
                "chunked",
                "check_framing",
                "has_body",
                "read_body",
                "body_chunks",
            )
        ),
        process_tests=(("davserver.request.*", ("tests/test_framing.py",)),),
        timeout_multiplier=LIVE_TIMEOUT,
    ),
    # The deadlines for a handshake, headers and a small body (with its slow-body allowance).
    "deadlines": Target(
        "davserver/httpd.py",
        (
            "tests/test_mutation_httpd.py",
            "tests/test_header_deadline_review.py",
            "tests/test_hostile.py::test_headers_or_a_small_body_trickled_a_byte_at_a_time_are_cut_off",
        ),
        tuple(
            f"davserver.httpd.xǁ{name}__mutmut_*"
            for name in (
                *(
                    f"ElasticServerǁ{method}"
                    for method in (
                        "watch",
                        "unwatch",
                        "body_deadline",
                        "cut_off",
                        "_cut_off_overdue",
                    )
                ),
                "_Requestǁparse_request",
                "_Gatewayǁget_environ",
            )
        ),
        timeout_multiplier=LIVE_TIMEOUT,
        # Chunked bodies on cheroot, through `python -m davserver --engine cheroot`.
        process_tests=(("davserver.httpd.xǁ_Gatewayǁ*", ("tests/test_framing.py",)),),
    ),
    # The plain GET's shortcut: which requests it answers without WSGI (any other goes to the
    # general path), what it answers, and its access line.
    "shortcut": Target(
        "davserver/app.py",
        _SHORTCUT_TESTS,
        (
            _DAVAPP + "shortcut__mutmut_*",
            _DAVAPP + "__init____mutmut_*",
            "davserver.app.x__access_line__mutmut_*",
        ),
        timeout_multiplier=LIVE_TIMEOUT,
    ),
    # The engine's side of it: which requests it offers the shortcut, and how it sends the
    # answer (live servers in this process).
    "shortcut-engine": Target(
        "davserver/llhttpd.py",
        _SHORTCUT_TESTS,
        ("davserver.llhttpd.xǁLlhttpServerǁ_shortcut__mutmut_*",),
        timeout_multiplier=LIVE_TIMEOUT,
    ),
}

# Survivors no test can kill, with the reason. Keys are mutmut's mutant names.
EQUIVALENT: dict[str, str] = {
    "davserver.llhttpd.xǁLlhttpServerǁ_shortcut__mutmut_21": (
        'codec names ignore case: "LATIN-1" is latin-1'
    ),
    _DAVAPP + "shortcut__mutmut_29": (
        "no Destination callback for auth.needs: it calls one for COPY and MOVE only, and "
        "the shortcut has already turned away every method but GET"
    ),
    _DAVAPP + "shortcut__mutmut_34": (
        "no authenticator for auth.require: it only decides whether a refusal is a 401 or a "
        "403, and the shortcut catches either and returns None (the general path answers)"
    ),
    **{
        f"davserver.request.xǁRequestǁcheck_framing__mutmut_{n}": "the Transfer-Encoding "
        "header's name in other letter case: Request.header upper-cases it"
        for n in (17, 18)
    },
    "davserver.paths.x__decode__mutmut_11": 'codec names ignore case: "LATIN-1" is latin-1',
    "davserver.paths.x__decode__mutmut_13": 'codec names ignore case: "UTF-8" is utf-8',
    "davserver.paths.x_url_to_path__mutmut_1": (
        "a path of exactly _REMEMBERED_LENGTH characters decoded without the cache: the same "
        "answer (the bound only keeps the cache's memory small)"
    ),
    "davserver.paths.x_name__mutmut_4": (
        "a provider path starts with '/', so rsplit('/') with or without a limit ends with "
        "the same last segment"
    ),
    "davserver.paths.x_name__mutmut_7": (
        "rsplit('/', 2) of a provider path ends with the same last segment as rsplit('/', 1)"
    ),
    "davserver.paths.x_name__mutmut_8": (
        "rsplit('/', 1) of a path starting with '/' has exactly two items, so [1] is [-1]"
    ),
    **{
        f"davserver.store.base.xǁ{stub}__mutmut_{n}": (
            "a default argument of a Protocol method: the stub never runs, each store "
            "implementation has its own signature"
        )
        for stub, n in (
            ("PropertyStoreǁdelete", 1),
            ("PropertyStoreǁdescribed", 1),
            ("PropertyStoreǁdescribed", 2),
            ("LockStoreǁdelete", 1),
        )
    },
    "davserver.headers.x_parse_etag_list__mutmut_6": (
        "`pos <= len(value)`: at the end the pattern (which needs a quote) finds nothing and "
        "the same list is returned"
    ),
    "davserver.headers.x_evaluate_preconditions__mutmut_9": (
        "weak=None for weak=False: the flag is only read for its truth"
    ),
    "davserver.headers.x_parse_range__mutmut_4": (
        "rpartition('=') differs only with two '=', and then either way the header is "
        "unparsable (a unit that is not 'bytes', or an item with '=' in a number) and ignored"
    ),
    "davserver.headers.x_parse_range__mutmut_12": "empty_suffix=None: only read for its truth",
    "davserver.headers.x_parse_range__mutmut_22": (
        "rpartition('-') differs only with two '-' in an item, and then either way one part "
        "is no number and the header is ignored"
    ),
    "davserver.headers.x_parse_range__mutmut_45": (
        "break for continue after a suffix range of an empty entity: with size 0 no later "
        "item can add a range, and a malformed one returns None either way"
    ),
    "davserver.headers.x_parse_range__mutmut_66": (
        "size + 1 for size - 1 as an open range's end: min(last, size - 1) cuts it back"
    ),
    **{
        f"davserver.headers.x_parse_content_range__mutmut_{n}": (
            f"rpartition({sep!r}) differs only with two {sep!r}, and then either way a part is "
            "no number (or the unit is not 'bytes'): 400 either way"
        )
        for n, sep in ((3, " "), (7, "/"), (11, "-"))
    },
    "davserver.headers.x_parse_prefer__mutmut_4": (
        "an absent Prefer read as 'XXXX' adds the token 'xxxx', which means nothing"
    ),
    "davserver.headers.x_parse_prefer__mutmut_25": (
        "an absent Brief read as 'XXXX' is not 't' either"
    ),
    "davserver.owners.x__boot_id__mutmut_9": (
        "strip('XXpid:[]XX') strips X as well, and the link text 'pid:[N]' has none"
    ),
    "davserver.owners.x_new_owner__mutmut_3": (
        "a 13-character nonce for a 12-character one: any length unique per store will do"
    ),
    **{
        f"davserver.owners.x_retire__mutmut_{n}": (
            "retire only gets names from new_owner, which hold four '/': the last segment "
            "is the same however rsplit is limited or indexed"
        )
        for n in (5, 8, 9)
    },
    **{
        f"davserver.store.sqlite.{name}": (
            "the same SQL in other letter case: SQLite's keywords, pragma names and values, "
            "table and column names ignore case"
        )
        for name in (
            "x__where_any__mutmut_17",
            *(f"xǁDatabaseǁconnection__mutmut_{n}" for n in (25, 26, 29, 30)),
            *(f"xǁSqlitePropertyStoreǁget__mutmut_{n}" for n in (16, 17)),
            *(f"xǁSqlitePropertyStoreǁmembers_with_properties__mutmut_{n}" for n in (7, 8)),
            *(f"xǁSqlitePropertyStoreǁpatch__mutmut_{n}" for n in (7, 8, 14, 15, 17)),
            *(f"xǁSqlitePropertyStoreǁ_transfer__mutmut_{n}" for n in (9, 18, 45, 46)),
            *(f"xǁSqlitePropertyStoreǁdelete__mutmut_{n}" for n in (11, 13)),
            *(f"xǁSqlitePropertyStoreǁdescribed__mutmut_{n}" for n in (11, 19, 20)),
            *(f"xǁSqliteLockStoreǁ_around__mutmut_{n}" for n in (12, 21)),
            *(f"xǁSqliteLockStoreǁacquire__mutmut_{n}" for n in (6, 7)),
            *(f"xǁSqliteLockStoreǁrefresh__mutmut_{n}" for n in (6, 7)),
            *(f"xǁSqliteLockStoreǁrelease__mutmut_{n}" for n in (6, 7)),
            *(f"xǁSqliteLockStoreǁdelete__mutmut_{n}" for n in (11, 13)),
        )
    },
    "davserver.store.sqlite.xǁDatabaseǁ__init____mutmut_13": (
        "the first generation number 1 for 0: a connection only compares it with the "
        "generation it was made in"
    ),
    "davserver.store.sqlite.xǁDatabaseǁclose__mutmut_2": (
        "generations counting down (-1, -2, ...) are as distinct as counting up"
    ),
    "davserver.store.sqlite.xǁDatabaseǁclose__mutmut_3": (
        "generations by steps of 2 are as distinct as by steps of 1"
    ),
    "davserver.store.sqlite.xǁDatabaseǁconnection__mutmut_18": (
        "sqlite3's implicit transactions (isolation_level left at its default) never start: "
        "every write runs inside Database.write()'s explicit BEGIN IMMEDIATE ... COMMIT, and "
        "reads need no transaction"
    ),
    "davserver.store.sqlite.xǁDatabaseǁdelete_where__mutmut_2": (
        "groups of 50 keys instead of 500 for a plain IN (...): more statements, the same rows "
        "deleted"
    ),
    "davserver.store.sqlite.xǁDatabaseǁdelete_where__mutmut_18": (
        "a group starting at every key instead of every step-th: overlapping groups, the same "
        "rows deleted"
    ),
    "davserver.store.sqlite.xǁSqlitePropertyStoreǁget__mutmut_9": (
        "exactly 500 names wanted are then fetched all and filtered here instead of by IN "
        "(...): the same properties"
    ),
    "davserver.store.sqlite.xǁSqlitePropertyStoreǁmove__mutmut_4": (
        "keep_source=None for False: only read for its truth"
    ),
    **{
        f"davserver.locking.{name}": (
            "the message of an error with a precondition element: the answer is the <D:error> "
            "document, and only a 500's message is logged"
        )
        for name in (
            "xǁGuardǁ_blocked__mutmut_1",
            "xǁGuardǁ_blocked__mutmut_4",
            *(f"x_existing_lock__mutmut_{n}" for n in (33, 36, 39, 40)),
        )
    },
    **{
        f"davserver.locking.{name}": (
            "a header name in other letter case: Request.header upper-cases it for the WSGI key"
        )
        for name in (
            "xǁGuardǁ__init____mutmut_7",
            "xǁGuardǁ__init____mutmut_8",
            "x_existing_lock__mutmut_5",
            "x_existing_lock__mutmut_6",
        )
    },
    "davserver.locking.xǁGuardǁ_state__mutmut_7": (
        "exists=None for False: ifheader only reads it for its truth"
    ),
    "davserver.locking.xǁGuardǁ_state__mutmut_26": (
        "a resource that is not there said to exist: with no entity tag every entity-tag "
        "condition evaluates the same (ifheader._condition_holds), and its lock tokens are kept"
    ),
    "davserver.locking.xǁGuardǁ_state__mutmut_12": (
        "a tag that names no resource of ours said to exist: with no entity tag and no lock "
        "token every condition on it evaluates the same (ifheader._condition_holds)"
    ),
    **{
        f"davserver.locking.{name}": (
            "a check of the parent's locks where no membership was asked: every such caller "
            "(COPY and MOVE) has already called require_membership on the same path, and for "
            "the root its parent is itself"
        )
        for name in (
            "xǁGuardǁtree_check__mutmut_1",
            "xǁTreeCheckǁ__init____mutmut_10",
            "xǁTreeCheckǁ__init____mutmut_12",
        )
    },
    "davserver.auth.x_needs__mutmut_77": (
        'the Depth is only compared with "0", which has no case: upper() decides alike'
    ),
    "davserver.auth.x_needs__mutmut_79": (
        'the default Depth is only compared with "0": any other word means infinity'
    ),
    "davserver.auth.x_needs__mutmut_80": (
        'a default Depth spelled "INFINITY" is not "0" either: it still means infinity'
    ),
    **{
        _WRITE + name: "a header name in other letter case: HTTP header names ignore case "
        "(RFC 9110 5.1), and Request.header upper-cases a name for its WSGI key"
        for name in (
            *(f"x_put__mutmut_{n}" for n in (15, 16, 25, 26, 53, 54)),
            "x__check_put__mutmut_11",
            "x__check_put__mutmut_12",
            "x__put_whole__mutmut_5",
            "x__put_whole__mutmut_6",
            "x__create_only__mutmut_4",
            "x__create_only__mutmut_5",
            "x_make_collection__mutmut_28",
            "x_make_collection__mutmut_29",
            "x__continues__mutmut_12",
            "x__continues__mutmut_13",
            "x_delete__mutmut_11",
            "x_delete__mutmut_12",
        )
    },
    **{
        _WRITE + f"x__drop_checksum__mutmut_{n}": (
            "every dead property asked for instead of the checksum alone: with others but no "
            "checksum, removing the checksum that is not there changes nothing"
        )
        for n in (2, 4)
    },
    **{
        _WRITE + f"x_make_collection__mutmut_{n}": (
            "MKCOL's claim recorded with another or no intent: recovery reads the intents of "
            "transfers, DELETE, LOCK and PROPPATCH only, and a MKCOL has nothing to finish"
        )
        for n in (3, 6, 7, 8, 9, 10, 11, 12)
    },
    "davserver.httpd.xǁ_Requestǁparse_request__mutmut_5": (
        "ready=None for False: cheroot only reads it for its truth"
    ),
    "davserver.httpd.xǁElasticServerǁ_cut_off_overdue__mutmut_6": (
        "a deadline cut off only once passed, not when reached: they differ only when the "
        "supervisor looks at the very instant (a float of time.monotonic()) it falls"
    ),
    _WRITE + "x__create_only__mutmut_6": (
        "a missing If-None-Match read as 'XXXX' is not '*' either"
    ),
    _WRITE + "x_delete__mutmut_4": (
        "another default for a collection DELETE's Depth: that Depth is only checked, its "
        "value unused"
    ),
    _WRITE + "x_check_preconditions__mutmut_1": (
        "an entity tag of '' for none: every tag of a list is quoted (at least two "
        "characters), so '' matches none, as None does"
    ),
    _WRITE + "x_check_preconditions__mutmut_14": (
        "no method given to the evaluation: it only tells GET and HEAD (304) from the others "
        "(412), and check_preconditions serves the methods that change state"
    ),
    _WRITE + "x_delete_resource__mutmut_36": (
        "forget_locks left at its default (True): a look for the locks of a file just seen to "
        "have none, which finds none"
    ),
    _WRITE + "x__put_range__mutmut_74": (
        "a file just written, cut to the size it has: the same bytes, and its time is the "
        "write's (a requested X-OC-Mtime is set after)"
    ),
    **{
        _COPYMOVE + name: "a header name in other letter case: HTTP header names ignore case "
        "(RFC 9110 5.1), and Request.header upper-cases a name for its WSGI key"
        for name in (*(f"x__run__mutmut_{n}" for n in (19, 20, 35, 36, 40, 41, 58, 59, 93, 94)),)
    },
    **{
        _COPYMOVE + f"x_transfer__mutmut_{n}": (
            "a MOVE's source claimed shared as well as exclusive: the exclusive claim already "
            "meets every other claim on it, and a batch's claim covers it the same"
        )
        for n in (6, 7)
    },
    **{
        _COPYMOVE + f"x_transfer__mutmut_{n}": (
            "a MOVE's per-member check of its source dropped: it repeats require_tree(source), "
            "made under the same exclusive claim, where no LOCK can come in between"
        )
        for n in (89, 104)
    },
    _COPYMOVE + "x_transfer__mutmut_90": (
        "a COPY given a per-member check of its source: transfers only check the source of a "
        "MOVE (the members it deletes), so a COPY never asks it"
    ),
    _COPYMOVE + "x__run__mutmut_6": (
        "no Depth recorded for a file's MOVE: a file has no members, so nothing reads it"
    ),
    _COPYMOVE + "x__run__mutmut_12": (
        "another default for a file MOVE's Depth: that Depth is only checked, its value unused"
    ),
    _COPYMOVE + "x__run__mutmut_78": (
        "the 207 of a COPY or MOVE without the provider for its hrefs: it is only asked about "
        "the lock root a 423 member names, and COPY and MOVE refuse every lock in their trees "
        "(require_tree) before they change anything"
    ),
    _COPYMOVE + "x_copy__mutmut_4": "move=None for move=False: only read for its truth",
    **{
        _BATCH + f"x_is_batch__mutmut_{n}": "a header name in other letter case: HTTP header "
        "names ignore case (RFC 9110 5.1), and Request.header upper-cases a name for its WSGI key"
        for n in (7, 8)
    },
    _BATCH + "x_is_batch__mutmut_9": (
        "a missing Content-Type read as 'XXXX' is no JSON either: not a batch (405)"
    ),
    _BATCH + "xǁRunnerǁ_authorize__mutmut_6": (
        "another stand-in for a destination that leaves the collection: such an item is "
        "refused (403) before its rights are asked, and require_login skips it"
    ),
    **{
        _BATCH + f"x_post__mutmut_{n}": "a header name in other letter case: HTTP header "
        "names ignore case (RFC 9110 5.1), and Request.header upper-cases a name for its WSGI key"
        for n in (88, 89)
    },
    **{
        _BATCH + f"x_post__mutmut_{n}": "the batch claim's 'op' key or value changed: nothing "
        "reads it (recovery takes a batch's 'items' and 'current' step by their own keys)"
        for n in (117, 118, 119, 120)
    },
    _BATCH + "x_post__mutmut_90": (
        "a missing Accept read as 'XXXX' names no XML either: the answer is JSON"
    ),
    _BATCH + "x__encodable__mutmut_5": 'codec names ignore case: "UTF-8" is utf-8',
    _BATCH + "x__operation__mutmut_79": (
        "a copy's or move's default depth spelled 'INFINITY': it is lower-cased like a given one"
    ),
    _BATCH + "xǁRunnerǁ_propfind__mutmut_38": (
        "minimal=None for minimal=False: collect only reads it for its truth"
    ),
    _BATCH + "xǁRunnerǁ_propfind__mutmut_51": (
        "`or` for `and` in telling a found property from a missing one: collect puts only "
        "values it found (never None: a batch asks no propname) in its 200 propstat and only "
        "None in its 404 one, so both tests decide alike"
    ),
    **{
        _BATCH + name: "a response header name in other letter case: HTTP header names ignore "
        "case (RFC 9110 5.1), and cheroot compares them lower-cased (to frame the body); a "
        "batch's answer is no file, whose length app.py reads by name for the access log"
        for name in (
            *(f"x_post__mutmut_{n}" for n in (11, 12, 23, 24, 135, 136, 138, 139)),
            *(f"x__bad__mutmut_{n}" for n in (9, 10, 12, 13)),
        )
    },
}

# Mutants mutmut calls "suspicious" (the test process ended oddly) that the tests did catch.
CAUGHT: dict[str, str] = {
    "davserver.owners.x__pid_exists__mutmut_5": (
        "os.kill(pid, 1) for os.kill(pid, 0): test_pid_exists asks about its own process, "
        "which the mutant hangs up (SIGHUP), so the test process dies"
    ),
}

# A survivor of mutmut's run that a test with a server in a child process caught.
PROCESS_KILLED = "killed by a child-process test"
# A survivor of the last run that a test added since kills (`--again --by-pytest`).
RECHECK_KILLED = "killed by a test added since"
KILLED = (
    "killed",
    "timeout",
    "caught by type check",
    "segfault",
    PROCESS_KILLED,
    RECHECK_KILLED,
)


def caught(mutant: str, status: str) -> bool:
    return status in KILLED or (status == "suspicious" and mutant in CAUGHT)


@dataclass
class Score:
    """The outcome of one target."""

    name: str
    target: Target
    statuses: dict[str, str]
    seconds: float

    @property
    def killed(self) -> int:
        return sum(caught(m, s) for m, s in self.statuses.items())

    @property
    def equivalent(self) -> list[str]:
        return [m for m, s in self.statuses.items() if not caught(m, s) and m in EQUIVALENT]

    @property
    def unexplained(self) -> list[str]:
        return [m for m, s in self.statuses.items() if not caught(m, s) and m not in EQUIVALENT]

    @property
    def score(self) -> float:
        scored = len(self.statuses) - len(self.equivalent)
        return 100.0 * self.killed / scored if scored else 100.0


def prepare(name: str, target: Target) -> Path:
    """A fresh scratch copy of the project whose mutmut settings select `target`."""
    work = SCRATCH / name
    shutil.rmtree(work, ignore_errors=True)
    for folder in ("davserver", "tests"):
        shutil.copytree(ROOT / folder, work / folder, ignore=_IGNORED)
    configure(work, target)
    return work


_IGNORED = shutil.ignore_patterns("__pycache__", ".hypothesis")


def configure(work: Path, target: Target) -> None:
    """Our pyproject.toml in `work`, with `only_mutate` and the test selection of `target`."""
    (work / "pyproject.toml").write_text(settings(target), encoding="utf-8")


def settings(target: Target) -> str:
    """Our pyproject.toml with `only_mutate` and the test selection of `target`."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    selection = ", ".join(f'"{test}"' for test in target.tests)
    settings = (
        f'only_mutate = ["{target.module}"]\npytest_add_cli_args_test_selection = [{selection}]\n'
    )
    if target.timeout_multiplier is not None:
        text = re.sub(r"^timeout_multiplier = .*\n", "", text, count=1, flags=re.M)
        settings += f"timeout_multiplier = {target.timeout_multiplier}\n"
    text = text.replace("[tool.mutmut]\n", "[tool.mutmut]\n" + settings, 1)
    tomllib.loads(text)  # a broken edit must fail here, not as a puzzling mutmut error
    return text


def mutmut(work: Path, *args: str, log: Path | None = None) -> str:
    command = [str(Path(sys.executable).parent / "mutmut"), *args]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    if log is None:
        done = subprocess.run(
            command, cwd=work, env=env, capture_output=True, text=True, check=True
        )
        return done.stdout
    with log.open("w") as out:
        subprocess.run(command, cwd=work, env=env, stdout=out, stderr=out, check=True)
    return ""


def run_target(name: str, target: Target, children: int) -> Score:
    work = prepare(name, target)
    started = time.monotonic()
    mutmut(work, "run", "--max-children", str(children), *target.mutants, log=work / "run.log")
    statuses = results(work, target)
    statuses.update(recheck(work, statuses, target.process_for, PROCESS_KILLED))
    seconds = time.monotonic() - started
    (work / "seconds").write_text(f"{seconds}\n", encoding="utf-8")
    return Score(name, target, statuses, seconds)


def rerun_survivors(name: str, target: Target, children: int, by_pytest: bool) -> Score:
    """`--again`: the last run's unexplained survivors run again, against the tests as they
    are now: by mutmut, which maps the tests added since to the functions they reach, or,
    `by_pytest` or when the target's test selection changed (mutmut would forget the verdicts
    on every other mutant), each in a pytest run of the tests added since and of those that
    reached its function. Minutes for a few
    survivors, where a new run of every mutant takes as long as the first; the time reported
    is the last full run's."""
    work = SCRATCH / name
    for tests in (work / "tests", work / "mutants" / "tests"):
        shutil.copytree(ROOT / "tests", tests, ignore=_IGNORED, dirs_exist_ok=True)
    statuses = results(work, target)
    again = [m for m, s in statuses.items() if not caught(m, s) and m not in EQUIVALENT]
    if (work / "pyproject.toml").read_text(encoding="utf-8") != settings(target):
        # mutmut would drop every verdict and check only the mutants named.
        print(f"{name}: its test selection changed since the last run: rechecking by pytest")
        by_pytest = True
    if by_pytest:
        statuses.update(recheck(work, statuses, _tests_since(work, target), RECHECK_KILLED))
    else:
        configure(work, target)
        if again:
            mutmut(work, "run", "--max-children", str(children), *again, log=work / "again.log")
        statuses = results(work, target)
    statuses.update(recheck(work, statuses, target.process_for, PROCESS_KILLED))
    seconds = float((work / "seconds").read_text(encoding="utf-8"))
    return Score(name, target, statuses, seconds)


def _tests_since(work: Path, target: Target) -> Callable[[str], list[str]]:
    """For a mutant, the tests of `target` that mutmut's last run did not know (first), then
    those it saw reach the mutant's function."""
    stats = json.loads((work / "mutants" / "mutmut-stats.json").read_text(encoding="utf-8"))
    reaching: dict[str, list[str]] = stats["tests_by_mangled_function_name"]
    listed = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
    found = subprocess.run(
        [*listed, *target.tests], cwd=work / "mutants", capture_output=True, text=True, check=True
    )
    collected = [t for t in found.stdout.splitlines() if "::" in t]
    new = [t for t in collected if t not in stats["duration_by_test"]]

    def tests_for(mutant: str) -> list[str]:
        return [*new, *reaching.get(mutant.rsplit("__mutmut_", 1)[0], [])]

    return tests_for


def results(work: Path, target: Target) -> dict[str, str]:
    """The verdict on each mutant of `target` in the scratch copy `work`: mutmut's, or that of
    a test it does not run (`recheck`), kept beside it while mutmut's stands."""
    statuses: dict[str, str] = {}
    for line in mutmut(work, "results", "--all", "true").splitlines():
        mutant, _, status = line.strip().rpartition(": ")
        if not target.mutants or any(fnmatch.fnmatch(mutant, p) for p in target.mutants):
            statuses[mutant] = status
    rechecked = work / RECHECKED
    if rechecked.exists():
        for mutant, verdict in json.loads(rechecked.read_text(encoding="utf-8")).items():
            if statuses.get(mutant) == "survived":
                statuses[mutant] = verdict
    return statuses


RECHECKED = "rechecked.json"


def recheck(
    work: Path, statuses: dict[str, str], tests_for: Callable[[str], list[str]], verdict: str
) -> dict[str, str]:
    """The unexplained survivors that fail `tests_for(mutant)`, with `verdict`.

    The tests run where mutmut runs its own (the scratch copy's `mutants/` folder), so a child
    process started with `python -m davserver` imports the mutated code too, and inherits
    MUTANT_UNDER_TEST, which makes the trampolines run the mutant."""
    killed: dict[str, str] = {}
    for mutant, status in statuses.items():
        if caught(mutant, status) or mutant in EQUIVALENT:
            continue
        tests = tests_for(mutant)
        if not tests:
            continue
        command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider"]
        command += ["--hypothesis-seed=0", *tests]
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "MUTANT_UNDER_TEST": mutant}
        done = subprocess.run(command, cwd=work / "mutants", env=env, capture_output=True)
        if done.returncode not in (0, 1):  # not "passed" or "failed": a broken selection
            raise RuntimeError(f"{' '.join(command)}:\n{done.stdout.decode()}")
        if done.returncode == 1:
            killed[mutant] = verdict
    rechecked = work / RECHECKED
    known = json.loads(rechecked.read_text(encoding="utf-8")) if rechecked.exists() else {}
    rechecked.write_text(json.dumps({**known, **killed}, indent=1) + "\n", encoding="utf-8")
    return killed


def table(scores: list[Score]) -> str:
    lines = [
        "| target | module | tests | mutants | killed | survived | equivalent | score | time |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in scores:
        tests = ", ".join(f"`{t}`" for t in s.target.tests)
        lines.append(
            f"| `{s.name}` | `{s.target.module}` | {tests} | {len(s.statuses)} | {s.killed} "
            f"| {len(s.unexplained)} | {len(s.equivalent)} | {s.score:.1f}% "
            f"| {s.seconds / 60:.1f} min |"
        )
    return "\n".join(lines)


def explained() -> list[str]:
    """The equivalent and the otherwise caught survivors with their reasons, as markdown."""
    lines = ["Equivalent survivors (not counted in the score):", ""]
    lines += [f"- `{mutant}`: {reason}." for mutant, reason in sorted(EQUIVALENT.items())]
    lines += ["", 'Caught although mutmut says "suspicious" (counted as killed):', ""]
    lines += [f"- `{mutant}`: {reason}." for mutant, reason in sorted(CAUGHT.items())]
    return lines


def write_doc(scores: list[Score]) -> None:
    """Replace the rows of the targets just run in the generated table of docs/mutation.md."""
    text = DOC.read_text(encoding="utf-8")
    head, _, rest = text.partition(TABLE_START)
    old, _, tail = rest.partition(TABLE_END)
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `([^`]+)` \|.*$", old, re.M)}
    fresh = table(scores).splitlines()
    rows.update({s.name: row for s, row in zip(scores, fresh[2:], strict=True)})
    ordered = [rows[name] for name in TARGETS if name in rows]
    body = "\n".join([*fresh[:2], *ordered, "", *explained()])
    DOC.write_text(f"{head}{TABLE_START}\n{body}\n{TABLE_END}{tail}", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", help=f"some of: {', '.join(TARGETS)}")
    parser.add_argument("--write", action="store_true", help="update docs/mutation.md")
    parser.add_argument("--children", type=int, default=2, help="mutants tested at once")
    parser.add_argument(
        "--again",
        action="store_true",
        help="rerun only the last run's survivors, against the tests as they are now",
    )
    parser.add_argument(
        "--by-pytest",
        action="store_true",
        help="with --again: run each survivor in pytest, not mutmut (the default when the "
        "target's test selection changed)",
    )
    options = parser.parse_args()
    unknown = set(options.targets) - set(TARGETS)
    if unknown:
        parser.error(f"unknown target(s): {', '.join(sorted(unknown))}")
    scores = []
    for name in options.targets or TARGETS:
        print(f"{name}: mutating {TARGETS[name].module} ...", flush=True)
        if options.again:
            score = rerun_survivors(name, TARGETS[name], options.children, options.by_pytest)
        else:
            score = run_target(name, TARGETS[name], options.children)
        scores.append(score)
        for mutant in score.unexplained:
            print(f"  survived: {mutant} ({score.statuses[mutant]})")
            print(f"    see: cd {SCRATCH / name} && {sys.executable} -m mutmut show {mutant}")
    print(table(scores))
    if options.write:
        write_doc(scores)
    return 1 if any(score.unexplained for score in scores) else 0


if __name__ == "__main__":
    sys.exit(main())
