"""The WebDAV ``If`` request header (RFC 4918, section 10.4): parsed into data, evaluated purely.

The module has two halves that share nothing but the data classes:

* :func:`parse_if` turns the header value into an immutable :class:`IfHeader`, or raises
  :class:`IfHeaderError` (which the HTTP layer answers with 400 Bad Request).
* :func:`evaluate` decides whether a parsed header holds.  It never looks at storage or at the
  lock table itself: the caller passes a function that reports the :class:`ResourceState` of a
  resource tag.  That keeps the evaluator pure, and leaves the mapping of tags (absolute URIs or
  absolute paths, RFC 4918 8.3) to resources with the code that knows the server's URL space.

The two purposes of the header (RFC 4918 10.4.1) are kept apart on purpose: whether the header
*holds* is :func:`evaluate`; which lock tokens the request *submits* is :meth:`IfHeader.tokens`,
and a token is submitted whether or not the list it appears in was evaluated or found true.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NoReturn

__all__ = [
    "MAX_HEADER_LENGTH",
    "NO_LOCK",
    "Condition",
    "ConditionList",
    "IfHeader",
    "IfHeaderError",
    "ResourceState",
    "evaluate",
    "parse_if",
]

#: Longest header value :func:`parse_if` accepts, in characters (64 KiB).  Header values are
#: decoded as ISO-8859-1 by WSGI, so this is also the length in bytes on the wire.  Real clients
#: send a few hundred characters; the bound only keeps a hostile request cheap to refuse.
MAX_HEADER_LENGTH = 64 * 1024

#: The state token that RFC 4918 10.4.8 guarantees never names a current lock, so that
#: ``Not <DAV:no-lock>`` is a condition that always holds.
NO_LOCK = "DAV:no-lock"

# Optional linear whitespace between tokens.  Only SP and HTAB: obsolete line folding (CRLF
# followed by whitespace, RFC 9112 5.2) is the HTTP layer's business and arrives here as SP.
_LWS = " \t"

# The contents of a Coded-URL or Resource-Tag ("<" ... ">").  RFC 4918 asks for an absolute-URI
# or Simple-ref and forbids whitespace inside; we check only what the framing needs (no
# whitespace, no control character, no angle bracket) and leave the URI syntax to whoever maps
# the tag, which must cope with unknown URIs anyway.  ``\s`` also covers Unicode whitespace, and
# the control characters are C0, DEL and C1.
_CODED_URL_CHARS = re.compile(r"[^\s<>\x00-\x1f\x7f-\x9f]*")

# etagc = %x21 / %x23-7E / obs-text (RFC 9110 8.8.3); obs-text is %x80-FF.  We also accept SP
# and HTAB: RFC 4918 cites the entity-tag of RFC 2616, an opaque quoted-string that may contain
# them, and its own examples (10.4.6, 10.4.9) send ["I am an ETag"] and [W/"A weak ETag"].
# Backslash stays an ordinary character as in RFC 9110 (no quoted-pair): such a tag cannot be
# one of ours anyway, so it only has to be framed consistently.
_ETAGC = re.compile(r"[\t\x20\x21\x23-\x7e\x80-\xff]*")


class IfHeaderError(ValueError):
    """Raised with a human-readable reason when the header does not parse (-> HTTP 400).

    The message says what was expected and at which character offset of the header value;
    :attr:`offset` holds that offset for callers that want it as a number.
    """

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset

    def __reduce__(self) -> tuple[type[IfHeaderError], tuple[str, int]]:
        # The default reduce passes only ``args`` (the message) back to __init__, which also
        # needs the offset; without this the exception cannot cross a pickle boundary.
        return (type(self), (str(self), self.offset))


@dataclass(frozen=True, slots=True)
class Condition:
    """One Condition of a List: a state token or an entity tag, possibly prefixed by ``Not``.

    ``value`` is the state token exactly as written between ``<`` and ``>`` (for example
    ``"urn:uuid:..."`` or ``"DAV:no-lock"``), or the entity tag exactly as written between ``[``
    and ``]``, quotes and any ``W/`` prefix included (for example ``'"abc"'`` or ``'W/"x"'``).
    """

    negated: bool
    kind: Literal["token", "etag"]
    value: str


@dataclass(frozen=True, slots=True)
class ConditionList:
    """A List production: a conjunction of conditions on one resource.

    ``resource`` is the Resource-Tag that precedes the list, as written between ``<`` and ``>``
    (an absolute URI or an absolute path), or ``None`` for an untagged list, which applies to the
    Request-URI.  A tag followed by several lists yields several :class:`ConditionList` values
    with the same ``resource``.
    """

    resource: str | None
    conditions: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class IfHeader:
    """A parsed If header: a disjunction of :class:`ConditionList` values, in header order.

    The parser never produces an empty ``lists``, and never mixes tagged (``resource`` set) and
    untagged (``resource`` ``None``) lists in one header.
    """

    lists: tuple[ConditionList, ...]

    def tokens(self) -> frozenset[str]:
        """Return the lock tokens the request submits (RFC 4918 6.5, 7.5, 10.4.1).

        These are the state tokens that appear without ``Not`` anywhere in the header, whatever
        list they are in and whether or not that list holds.  A negated token is not submitted:
        ``Not <token>`` asserts that the lock is absent, which is no claim to own it.
        ``DAV:no-lock`` is never a lock token, so it is left out.
        """
        return frozenset(
            condition.value
            for condition_list in self.lists
            for condition in condition_list.conditions
            if condition.kind == "token" and not condition.negated and condition.value != NO_LOCK
        )

    def resources(self) -> tuple[str | None, ...]:
        """Return the distinct resource tags in order of first appearance.

        An untagged header yields ``(None,)``: its lists all apply to the Request-URI.
        """
        # dict keeps insertion order and drops repeats in linear time.
        return tuple(dict.fromkeys(condition_list.resource for condition_list in self.lists))


@dataclass(frozen=True, slots=True)
class ResourceState:
    """What :func:`evaluate` needs to know about the resource a list applies to.

    ``etag`` is the resource's current strong entity tag as sent in ETag headers, quotes
    included (for example ``'"abc"'``), or ``None`` when there is no entity.  ``lock_tokens`` are
    the tokens of every lock whose scope covers the URL: the resource's own locks and the
    depth-infinity locks of its ancestors (RFC 4918 10.4.4: "A lock state token is considered to
    match if the resource is anywhere in the scope of the lock").
    """

    exists: bool
    etag: str | None
    lock_tokens: frozenset[str]


def _condition_holds(condition: Condition, state: ResourceState) -> bool:
    """Evaluate one condition against one resource state (RFC 4918 10.4.3, 10.4.4)."""
    if condition.kind == "token":
        # Exact, case-sensitive match of the token (10.4.4).  DAV:no-lock is tested explicitly
        # so that ``Not <DAV:no-lock>`` holds even if a caller's token set were odd.
        matched = condition.value != NO_LOCK and condition.value in state.lock_tokens
    else:
        # Strong comparison (RFC 9110 8.8.3.2), which 10.4.4 allows: both tags must be strong
        # and equal character for character (a weak condition equal to the etag would mean the
        # etag is weak too, so one test covers both).  An unmapped resource has no entity.
        matched = (
            state.exists and not condition.value.startswith("W/") and condition.value == state.etag
        )
    return matched != condition.negated


def evaluate(header: IfHeader, state: Callable[[str | None], ResourceState]) -> bool:
    """Return whether the If header holds (RFC 4918 10.4.3); if not, the request fails with 412.

    ``state(tag)`` is called with each list's resource tag exactly as written (``None`` for the
    Request-URI) and must describe that resource.  A list holds when every one of its conditions
    holds; the header holds when at least one list holds, each list being evaluated against its
    own resource.

    * A state-token condition holds when the token is in the resource's ``lock_tokens``;
      ``DAV:no-lock`` never matches, so ``Not <DAV:no-lock>`` always holds.
    * An entity-tag condition holds when it equals the resource's ``etag`` under strong
      comparison: a weak tag (``W/"..."``) never matches, nor does anything when the resource
      does not exist or has no ETag.
    * ``Not`` reverses the result of the one condition it prefixes.

    Resources that do not exist (unmapped URLs, including tags that name a resource elsewhere)
    are, per RFC 4918 10.4.4, treated as a resource that exists but lacks the described state:
    they have no entity tag and normally no locks, so ``</missing> (["x"])`` is false and
    ``</missing> (Not ["x"])`` is true.  The one exception is lock scope, which belongs to the
    URL rather than to an entity: ``state`` should still report, for an unmapped URL inside a
    depth-infinity locked collection, that collection's lock tokens (which is how a client PUTs
    a new member into a locked collection).  This function trusts ``lock_tokens`` as given, even
    when ``exists`` is false.

    Evaluation stops at the first list that holds, so ``state`` is not necessarily called for
    every tag, and it is called at most once per distinct tag.  Which tokens were submitted does
    not depend on evaluation: use :meth:`IfHeader.tokens`.
    """
    # One lookup per distinct tag: a tag with several lists would otherwise hit the lock table
    # once per list.
    seen: dict[str | None, ResourceState] = {}
    for condition_list in header.lists:
        tag = condition_list.resource
        if tag not in seen:
            seen[tag] = state(tag)
        resource_state = seen[tag]
        if all(_condition_holds(c, resource_state) for c in condition_list.conditions):
            return True
    return False


def parse_if(value: str) -> IfHeader:
    """Parse the value of an If header (without the ``If:`` name) into an :class:`IfHeader`.

    The grammar is RFC 4918 10.4.2::

        If = "If" ":" ( 1*No-tag-list | 1*Tagged-list )
        No-tag-list = List
        Tagged-list = Resource-Tag 1*List
        List = "(" 1*Condition ")"
        Condition = ["Not"] (State-token | "[" entity-tag "]")
        State-token = Coded-URL
        Resource-Tag = "<" Simple-ref ">"

    with ``entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE`` (RFC 9110 8.8.3), etagc widened to
    spaces and tabs because RFC 4918 cites RFC 2616, whose quoted-string allows them, and its own
    examples use them (``["I am an ETag"]``).  Elsewhere, spaces and tabs are allowed, and
    optional, between any two tokens (so ``)(`` and ``Not<...>`` are fine), but not inside
    ``<...>`` nor between a bracket and the entity tag.  ``Not`` is case-sensitive.  The first
    list decides whether the header is tagged or untagged; mixing the two is an error.  Line
    folding must have been replaced by spaces before the call, as RFC 9112 5.2 asks of recipients.

    Raises :class:`IfHeaderError` with the expected input and its character offset when the
    value does not parse, is empty or blank, or is longer than :data:`MAX_HEADER_LENGTH`.
    Runs in time linear in the length of the value.
    """
    if len(value) > MAX_HEADER_LENGTH:
        # Refuse before looking at the text, so an oversized header costs nothing to parse.
        raise IfHeaderError(
            f"invalid If header: expected at most {MAX_HEADER_LENGTH} characters, found"
            f" {len(value)} (the excess starts at offset {MAX_HEADER_LENGTH})",
            MAX_HEADER_LENGTH,
        )
    return _Parser(value).header()


class _Parser:
    """A recursive-descent parser over one header value; every step moves ``pos`` forward."""

    __slots__ = ("_end", "_pos", "_text")

    def __init__(self, text: str) -> None:
        self._text = text
        self._pos = 0
        self._end = len(text)

    def _fail(self, expected: str, offset: int | None = None, why: str = "") -> NoReturn:
        """Raise an IfHeaderError saying what was expected, where, and what was found."""
        at = self._pos if offset is None else offset
        found = repr(self._text[at]) if at < self._end else "end of header"
        detail = f" ({why})" if why else ""
        raise IfHeaderError(
            f"invalid If header: expected {expected} at offset {at}, found {found}{detail}", at
        )

    def _skip_lws(self) -> None:
        text, pos, end = self._text, self._pos, self._end
        while pos < end and text[pos] in _LWS:
            pos += 1
        self._pos = pos

    def _peek(self) -> str:
        """Return the current character, or "" at the end of the value."""
        return self._text[self._pos] if self._pos < self._end else ""

    def header(self) -> IfHeader:
        self._skip_lws()
        first = self._peek()
        if first == "":
            self._fail("'(' or '<'", why="the header is empty")
        if first not in ("(", "<"):
            self._fail("'(' to open a list or '<' to open a resource tag")
        if first == "(":
            return IfHeader(self._untagged_lists())
        return IfHeader(self._tagged_lists())

    def _untagged_lists(self) -> tuple[ConditionList, ...]:
        lists: list[ConditionList] = []
        while True:
            ch = self._peek()
            if ch == "(":
                lists.append(ConditionList(None, self._list()))
            elif ch == "":
                return tuple(lists)
            elif ch == "<":
                self._fail("'('", why="a header that starts untagged cannot have resource tags")
            else:
                self._fail("'(' or end of header")
            self._skip_lws()

    def _tagged_lists(self) -> tuple[ConditionList, ...]:
        lists: list[ConditionList] = []
        while True:
            ch = self._peek()
            if ch == "<":
                tag = self._coded_url("resource tag")
                self._skip_lws()
                if self._peek() != "(":
                    self._fail("'('", why="a resource tag must be followed by at least one list")
                while self._peek() == "(":
                    lists.append(ConditionList(tag, self._list()))
                    self._skip_lws()
            elif ch == "":
                return tuple(lists)
            else:
                # A '(' cannot get here: the loop above consumes every list after a tag.
                self._fail("'(', '<' or end of header")

    def _list(self) -> tuple[Condition, ...]:
        """Parse ``"(" 1*Condition ")"``; the current character is the '('."""
        self._pos += 1
        conditions: list[Condition] = []
        while True:
            self._skip_lws()
            ch = self._peek()
            if ch == ")" and conditions:
                self._pos += 1
                return tuple(conditions)
            negated = self._text.startswith("Not", self._pos)
            if negated:
                self._pos += 3
                self._skip_lws()
                ch = self._peek()
            if ch == "<":
                conditions.append(Condition(negated, "token", self._coded_url("state token")))
            elif ch == "[":
                conditions.append(Condition(negated, "etag", self._entity_tag()))
            elif negated:
                self._fail("'<' or '[' after 'Not'")
            elif conditions:
                self._fail("'Not', '<', '[' or ')'")
            else:
                self._fail("'Not', '<' or '['", why="a list needs at least one condition")

    def _coded_url(self, what: str) -> str:
        """Parse ``"<" contents ">"`` and return the contents; the current character is '<'."""
        start = self._pos + 1
        stop = _CODED_URL_CHARS.match(self._text, start)
        assert stop is not None  # a pattern with '*' always matches, if only the empty string
        end = stop.end()
        if end >= self._end or self._text[end] != ">":
            self._fail(
                f"'>' to close the {what} opened at offset {self._pos}",
                end,
                "a Coded-URL may not contain whitespace, control characters or '<'",
            )
        if end == start:
            self._fail(f"the {what}", end, "'<>' is empty")
        self._pos = end + 1
        return self._text[start:end]

    def _entity_tag(self) -> str:
        """Parse ``"[" entity-tag "]"`` and return the entity tag; the current char is '['."""
        opened = self._pos
        start = opened + 1
        quote = start + 2 if self._text.startswith("W/", start) else start
        if quote >= self._end or self._text[quote] != '"':
            self._fail(
                "'\"' or 'W/\"' to open the entity tag" if quote == start else "'\"' after 'W/'",
                quote,
                "'[' must be followed directly by the entity tag",
            )
        run = _ETAGC.match(self._text, quote + 1)
        assert run is not None  # a pattern with '*' always matches
        close = run.end()
        if close >= self._end or self._text[close] != '"':
            self._fail(
                f"an entity-tag character or '\"' to close the entity tag opened at offset"
                f" {opened}",
                close,
            )
        if close + 1 >= self._end or self._text[close + 1] != "]":
            self._fail(
                f"']' to close the '[' at offset {opened}",
                close + 1,
                "the entity tag must be followed directly by ']'",
            )
        self._pos = close + 2
        return self._text[start : close + 1]
