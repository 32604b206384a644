"""Unit tests of the access rules (davserver/auth.py: Rule, Policy, needs, require,
default_policy): who may do what where, decided without a server.

The live-server tests (test_access_rules.py, test_auth.py) show the rules at work through every
method; these pin each decision down so that mutation testing (docs/mutation.md) can run in
seconds."""

from __future__ import annotations

from pathlib import Path

import pytest

from davserver.auth import (
    ANONYMOUS,
    ANY_USER,
    Authenticator,
    Need,
    Policy,
    Rule,
    default_policy,
    needs,
    require,
)
from davserver.errors import Forbidden, Unauthorized
from davserver.passwords import Users


def _nowhere() -> str:
    raise AssertionError("only COPY and MOVE have a destination")


# -- Rule ------------------------------------------------------------------------------------


def test_a_rule_covers_its_path_and_everything_below_it_only() -> None:
    rule = Rule("/a", "bob", "read")
    assert rule.applies("bob", "/a")
    assert rule.applies("bob", "/a/b/c")
    assert not rule.applies("bob", "/ab")  # a sibling whose name starts alike
    assert not rule.applies("bob", "/")
    assert not rule.applies("bob", "/b")


def test_a_rule_for_a_named_user_applies_to_that_user_only() -> None:
    rule = Rule("/", "bob", "write")
    assert rule.applies("bob", "/x")
    assert not rule.applies("eve", "/x")
    assert not rule.applies(None, "/x")


def test_the_any_user_rule_applies_to_everyone_logged_in_and_not_to_anonymous() -> None:
    rule = Rule("/", ANY_USER, "write")
    assert rule.applies("bob", "/x")
    assert not rule.applies(None, "/x")


def test_the_anonymous_rule_applies_to_anonymous_only() -> None:
    rule = Rule("/", ANONYMOUS, "read")
    assert rule.applies(None, "/x")
    assert not rule.applies("bob", "/x")
    # A user who logged in under the name "anonymous" is not the anonymous visitor.
    assert not rule.applies("anonymous", "/x")


def test_specificity_is_depth_then_named_user() -> None:
    assert Rule("/", ANY_USER, "read").specificity() == (0, 0)
    assert Rule("/a/b", ANONYMOUS, "read").specificity() == (2, 0)
    assert Rule("/a", "bob", "read").specificity() == (1, 1)


# -- Policy ----------------------------------------------------------------------------------


def test_no_rule_means_no_access() -> None:
    policy = Policy([Rule("/a", "bob", "write")])
    assert policy.access("bob", "/b") == "none"
    assert not policy.allows("bob", "/b", "read")
    assert policy.allows("bob", "/b", "none")


def test_the_longer_path_wins_whatever_the_order() -> None:
    for rules in (
        [Rule("/", "bob", "write"), Rule("/a", "bob", "read")],
        [Rule("/a", "bob", "read"), Rule("/", "bob", "write")],
    ):
        policy = Policy(rules)
        assert policy.access("bob", "/a/f") == "read"
        assert policy.access("bob", "/b") == "write"


def test_a_named_user_wins_over_any_user_on_the_same_path_whatever_the_order() -> None:
    for rules in (
        [Rule("/a", "bob", "none"), Rule("/a", ANY_USER, "write")],
        [Rule("/a", ANY_USER, "write"), Rule("/a", "bob", "none")],
    ):
        policy = Policy(rules)
        assert policy.access("bob", "/a") == "none"
        assert policy.access("eve", "/a") == "write"


def test_among_equal_rules_the_later_wins() -> None:
    assert Policy([Rule("/", "bob", "read"), Rule("/", "bob", "write")]).access("bob", "/") == (
        "write"
    )
    assert Policy([Rule("/", "bob", "write"), Rule("/", "bob", "read")]).access("bob", "/") == (
        "read"
    )


@pytest.mark.parametrize(
    ("has", "needed", "allowed"),
    [
        ("none", "read", False),
        ("read", "read", True),
        ("read", "write", False),
        ("write", "read", True),
        ("write", "write", True),
    ],
)
def test_allows_compares_levels(has: str, needed: str, allowed: bool) -> None:
    policy = Policy([Rule("/", "bob", has)])  # type: ignore[arg-type]
    assert policy.allows("bob", "/f", needed) is allowed  # type: ignore[arg-type]


def test_a_tree_need_holds_only_when_nothing_below_is_withheld() -> None:
    policy = Policy([Rule("/", "bob", "write"), Rule("/a/private", "bob", "read")])
    assert policy.allows_tree("bob", "/a", "read")
    assert not policy.allows_tree("bob", "/a", "write")
    assert not policy.allows_tree("bob", "/", "write")
    # A withheld folder elsewhere does not matter.
    assert policy.allows_tree("bob", "/b", "write")
    # Nor does a rule that names someone else.
    assert Policy([Rule("/", "bob", "write"), Rule("/a/x", "eve", "none")]).allows_tree(
        "bob", "/a", "write"
    )


def test_a_tree_need_fails_when_the_top_itself_is_withheld() -> None:
    policy = Policy([Rule("/", "bob", "write"), Rule("/a", "bob", "read")])
    assert not policy.allows_tree("bob", "/a", "write")


def test_satisfies_checks_below_only_for_a_tree_need() -> None:
    policy = Policy([Rule("/", "bob", "write"), Rule("/a/private", "bob", "none")])
    assert policy.satisfies("bob", Need("/a", "write"))
    assert not policy.satisfies("bob", Need("/a", "write", tree=True))
    # And below it, for the user asking (anonymous has no rule here).
    assert policy.satisfies("bob", Need("/b", "write", tree=True))


# -- needs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "HEAD", "PROPFIND", "POST"])
def test_reads_and_batches_need_read_on_the_path(method: str) -> None:
    assert needs(method, "/a", _nowhere) == [Need("/a", "read")]


@pytest.mark.parametrize("method", ["PUT", "MKCOL", "PROPPATCH", "UNLOCK", "OPTIONS"])
def test_other_methods_need_write_on_the_path(method: str) -> None:
    assert needs(method, "/a", _nowhere) == [Need("/a", "write")]


def test_delete_needs_write_on_the_whole_tree() -> None:
    assert needs("DELETE", "/a", _nowhere) == [Need("/a", "write", tree=True)]


def test_copy_reads_the_source_tree_and_writes_the_destination_tree() -> None:
    assert needs("COPY", "/a", lambda: "/b") == [
        Need("/a", "read", tree=True),
        Need("/b", "write", tree=True),
    ]


def test_move_writes_both_trees() -> None:
    assert needs("MOVE", "/a", lambda: "/b") == [
        Need("/a", "write", tree=True),
        Need("/b", "write", tree=True),
    ]


@pytest.mark.parametrize(
    ("depth", "refresh", "tree"),
    [
        (None, False, True),  # Depth defaults to infinity (RFC 4918 9.10.3)
        ("infinity", False, True),
        ("Infinity", False, True),
        ("0", False, False),
        (" 0", False, False),
        ("0 ", False, False),
        (None, True, False),  # a refresh makes no new lock (RFC 4918 9.10.2)
        ("infinity", True, False),
    ],
)
def test_lock_needs_the_tree_unless_depth_0_or_a_refresh(
    depth: str | None, refresh: bool, tree: bool
) -> None:
    assert needs("LOCK", "/a", _nowhere, depth, refresh) == [Need("/a", "write", tree=tree)]


def test_a_lock_is_no_refresh_unless_said() -> None:
    assert needs("LOCK", "/a", _nowhere, "infinity") == [Need("/a", "write", tree=True)]


# -- require ---------------------------------------------------------------------------------


@pytest.fixture
def authenticator(tmp_path: Path) -> Authenticator:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("")
    return Authenticator(
        Users(str(htpasswd)),
        "realm",
        basic="always",
        digest=False,
        secret=b"s" * 32,
        nonce_lifetime=300,
    )


_POLICY = Policy([Rule("/", ANY_USER, "read"), Rule("/", ANONYMOUS, "read")])


def test_require_passes_when_every_need_is_met(authenticator: Authenticator) -> None:
    require(_POLICY, authenticator, "bob", [Need("/a", "read"), Need("/b", "read", tree=True)])
    require(_POLICY, authenticator, None, [Need("/a", "read")])
    require(_POLICY, None, None, [])


def test_require_judges_the_user_asking(authenticator: Authenticator) -> None:
    policy = Policy([Rule("/", "bob", "write"), Rule("/", ANONYMOUS, "read")])
    require(policy, authenticator, "bob", [Need("/a", "write"), Need("/b", "write", tree=True)])


def test_require_refuses_a_user_with_403(authenticator: Authenticator) -> None:
    with pytest.raises(Forbidden) as info:
        require(_POLICY, authenticator, "bob", [Need("/a", "read"), Need("/a", "write")])
    assert info.value.message == "bob may not write here"


def test_require_asks_anonymous_to_log_in_with_401(authenticator: Authenticator) -> None:
    with pytest.raises(Unauthorized) as info:
        require(_POLICY, authenticator, None, [Need("/a", "write")])
    assert (info.value.message, info.value.stale) == ("log in to do this", False)


@pytest.mark.parametrize(
    ("basic", "secure", "offered"),
    [
        ("always", False, True),
        ("always", True, True),
        ("https", False, False),
        ("https", True, True),
        ("never", False, False),
        ("never", True, False),
    ],
)
def test_basic_challenge_by_mode_and_connection(
    authenticator: Authenticator, basic: str, secure: bool, offered: bool
) -> None:
    authenticator.basic = basic
    expected = [("WWW-Authenticate", 'Basic realm="realm", charset="UTF-8"')] if offered else []
    assert authenticator.challenges(stale=False, secure=secure) == expected
    assert authenticator.offers_basic(secure) is offered


def test_require_refuses_anonymous_with_403_when_nobody_can_log_in() -> None:
    with pytest.raises(Forbidden) as info:
        require(_POLICY, None, None, [Need("/a", "write")])
    assert info.value.message == "anonymous may not write here"


# -- default_policy --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("has_users", "anonymous", "expected"),
    [
        (True, "", "none"),
        (False, "", "write"),
        (True, "read", "read"),
        (False, "read", "read"),
    ],
)
def test_default_anonymous_access(has_users: bool, anonymous: str, expected: str) -> None:
    assert default_policy(has_users, anonymous, []).access(None, "/a") == expected


def test_by_default_users_write_everywhere_and_configured_rules_come_later() -> None:
    assert default_policy(True, "", []).access("bob", "/a") == "write"
    # A configured rule on the root replaces the default for its user class.
    policy = default_policy(True, "", [Rule("/", ANY_USER, "read")])
    assert policy.access("bob", "/a") == "read"
    policy = default_policy(True, "", [Rule("/", ANONYMOUS, "read")])
    assert policy.access(None, "/a") == "read"
