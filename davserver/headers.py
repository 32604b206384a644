"""Pure helpers for HTTP and WebDAV request headers.

ETags and conditionals (RFC 9110 section 13), Range (RFC 9110 section 14), Depth, Overwrite and
Timeout (RFC 4918 section 10), and Prefer (RFC 8144). No I/O: values in, values or `DavError`
out, so every rule is testable without a server.
"""

from __future__ import annotations

import functools
import re
import time
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import NamedTuple

from .errors import BadRequest, RangeNotSatisfiable

INFINITY = "infinity"
_MAX_DIGITS = 19  # far past any file size or timeout; int() of thousands of digits is refused


def _number(text: str) -> int | None:
    """A non-negative decimal number written in ASCII digits, or None. (`str.isdigit` also
    accepts '²' and other digits `int` refuses, and WSGI headers are Latin-1 text.)"""
    if not text or len(text) > _MAX_DIGITS or not (text.isascii() and text.isdigit()):
        return None
    return int(text)


def quote_etag(etag: str) -> str:
    """The ETag header value for an opaque validator."""
    return f'"{etag}"'


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


# Dates are formatted for every resource of a listing: written out by hand
# (`email.utils.formatdate` and strftime cost several times as much) and remembered per second
# (files made together share it).


@functools.lru_cache(maxsize=4096)
def _date_forms(seconds: int) -> tuple[str, str]:
    t = time.gmtime(seconds)
    clock = f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
    http = (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year:04d} {clock} GMT"
    )
    return http, f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{clock}Z"


def http_date(timestamp: float) -> str:
    """An RFC 1123 / IMF-fixdate, always in GMT (`Sun, 06 Nov 1994 08:49:37 GMT`)."""
    return _date_forms(int(timestamp))[0]


def rfc3339_date(timestamp: float) -> str:
    """`1994-11-06T08:49:37Z`, as RFC 4918 15.1 wants creationdate."""
    return _date_forms(int(timestamp))[1]


def parse_http_date(value: str) -> float | None:
    """Seconds since the epoch, or None when the value is not a valid HTTP date."""
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        # asctime dates carry no zone; HTTP dates are always GMT (RFC 9110 5.6.7).
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def parse_depth(value: str | None, default: str, allowed: tuple[str, ...]) -> str:
    """`"0"`, `"1"` or `"infinity"`; a value outside `allowed` is a 400."""
    if value is None:
        return default
    depth = value.strip().lower()
    if depth not in allowed:
        raise BadRequest(f"Depth: {value!r} is not allowed here (use {', '.join(allowed)})")
    return depth


def parse_overwrite(value: str | None) -> bool:
    """Overwrite: T (the default) or F (RFC 4918 10.6)."""
    if value is None:
        return True
    flag = value.strip().upper()
    if flag not in ("T", "F"):
        raise BadRequest(f"Overwrite must be T or F, not {value!r}")
    return flag == "T"


def parse_timeout(value: str) -> int | None:
    """Seconds asked for by a `Timeout` header (RFC 4918 10.7), or None for Infinite.

    The header lists preferences; the first one understood wins, as the RFC allows the server
    to pick any.
    """
    for item in value.split(","):
        item = item.strip()
        if item.lower() == "infinite":
            return None
        if item.lower().startswith("second-"):
            seconds = _number(item[7:])
            if seconds is not None:
                return seconds
    raise BadRequest(f"Timeout {value!r} is neither Infinite nor Second-N")


# -- entity tags and conditionals ---------------------------------------------------------------

_ETAG_RE = re.compile(r'\s*(W/)?("[^"]*")\s*(?:,|$)')


def parse_etag_list(value: str) -> list[tuple[bool, str]] | None:
    """`If-Match`/`If-None-Match` entries as `(weak, '"opaque"')`, or None for `*`."""
    if value.strip() == "*":
        return None
    tags: list[tuple[bool, str]] = []
    pos = 0
    while pos < len(value):
        match = _ETAG_RE.match(value, pos)
        if match is None:
            # Unquoted or otherwise malformed entries never match anything; that is the
            # behaviour of the servers clients are tested against.
            return tags
        tags.append((match.group(1) is not None, match.group(2)))
        pos = match.end()
    return tags


def etag_in(value: str, etag: str | None, *, weak: bool, exists: bool) -> bool:
    """Whether the entity tag `etag` (quoted) matches the list in `value`.

    Strong comparison (If-Match) ignores weak entries; weak comparison (If-None-Match) treats
    `W/"x"` as `"x"`. `*` matches whenever the resource exists, collections included
    (RFC 9110 13.1.1), even though they have no entity tag.
    """
    tags = parse_etag_list(value)
    if tags is None:
        return exists
    if etag is None:
        return False
    return any(tag == etag and (weak or not is_weak) for is_weak, tag in tags)


class Validators(NamedTuple):
    """What conditionals are evaluated against: `etag` quoted (None for a collection or
    nothing), `mtime` None when nothing exists. (A tuple: made for every GET, and a frozen
    dataclass costs several times as much to build.)"""

    etag: str | None
    mtime: float | None

    @property
    def exists(self) -> bool:
        return self.mtime is not None


def evaluate_preconditions(method: str, headers: dict[str, str], current: Validators) -> int | None:
    """RFC 9110 13.2.2: the status that stops the request (304 or 412), or None to go on."""
    if_match = headers.get("HTTP_IF_MATCH")
    if if_match is not None:
        if not etag_in(if_match, current.etag, weak=False, exists=current.exists):
            return 412
    else:
        since = headers.get("HTTP_IF_UNMODIFIED_SINCE")
        if since is not None and current.mtime is not None:
            limit = parse_http_date(since)
            if limit is not None and int(current.mtime) > limit:
                return 412
    safe = method in ("GET", "HEAD")
    if_none_match = headers.get("HTTP_IF_NONE_MATCH")
    if if_none_match is not None:
        if etag_in(if_none_match, current.etag, weak=True, exists=current.exists):
            return 304 if safe else 412
    elif safe:
        since = headers.get("HTTP_IF_MODIFIED_SINCE")
        if since is not None and current.mtime is not None:
            limit = parse_http_date(since)
            if limit is not None and int(current.mtime) <= limit:
                return 304
    return None


# -- ranges ---------------------------------------------------------------------------------

_MAX_RANGES = 64


def parse_range(value: str | None, size: int) -> list[tuple[int, int]] | None:
    """Byte ranges to send as inclusive `(first, last)` pairs, or None for the whole entity.

    Unparsable headers and other units are ignored (RFC 9110 14.2); a syntactically valid set
    in which no range overlaps the content raises RangeNotSatisfiable (416). Overlapping or
    very many ranges are coalesced, which the RFC allows and which defeats small-range abuse.
    """
    if value is None:
        return None
    unit, _, spec = value.partition("=")
    if unit.strip().lower() != "bytes" or not spec.strip():
        return None
    # A suffix range of an empty entity is satisfiable but selects no bytes, which no
    # Content-Range can express: such a request gets the (empty) whole.
    empty_suffix = False
    ranges: list[tuple[int, int]] = []
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        first_s, dash, last_s = item.partition("-")
        first_s, last_s = first_s.strip(), last_s.strip()
        first_n, last_n = _number(first_s), _number(last_s)
        if not dash or (first_s and first_n is None) or (last_s and last_n is None):
            return None
        if first_n is None:
            if last_n is None:
                return None
            suffix = last_n
            if suffix == 0:
                continue
            if size == 0:
                empty_suffix = True
                continue
            ranges.append((max(size - suffix, 0), size - 1))
            continue
        first = first_n
        if last_n is not None and last_n < first:
            return None
        if first >= size:
            continue
        last = last_n if last_n is not None else size - 1
        ranges.append((first, min(last, size - 1)))
    if not ranges:
        if empty_suffix:
            return None
        raise RangeNotSatisfiable(f"no range of {value!r} lies within {size} bytes")
    return _coalesce(ranges)


def _coalesce(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    if len(ranges) == 1:
        return ranges
    ordered = sorted(ranges)
    merged = [ordered[0]]
    for first, last in ordered[1:]:
        prev_first, prev_last = merged[-1]
        if first <= prev_last + 1 or len(merged) >= _MAX_RANGES:
            merged[-1] = (prev_first, max(prev_last, last))
        else:
            merged.append((first, last))
    # Answer in the order asked when nothing had to be merged (RFC 9110 14.6 allows either).
    return ranges if len(merged) == len(ranges) else merged


def parse_content_range(value: str) -> tuple[int, int, int | None]:
    """`bytes first-last/total` (total may be `*`) of a partial PUT; 400 when malformed."""
    unit, _, spec = value.strip().partition(" ")
    span, _, total_s = spec.partition("/")
    first_s, _, last_s = span.partition("-")
    first, last, total = _number(first_s), _number(last_s), _number(total_s)
    if (
        unit.lower() != "bytes"
        or first is None
        or last is None
        or (total is None and total_s != "*")
        or last < first
    ):
        raise BadRequest(f"Content-Range {value!r} is not 'bytes first-last/total'")
    if total is not None and last >= total:
        raise BadRequest(f"Content-Range {value!r} ends beyond its total")
    return first, last, total


def if_range_allows(value: str | None, etag: str, mtime: float) -> bool:
    """If-Range (RFC 9110 13.1.5): send the ranges only when the validator still matches."""
    if value is None:
        return True
    value = value.strip()
    if value.startswith('"'):
        return value == etag
    if value.startswith("W/"):
        return False
    date = parse_http_date(value)
    return date is not None and int(mtime) == int(date)


# -- Prefer (RFC 8144) --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Preferences:
    minimal: bool = False
    no_root: bool = False


def parse_prefer(prefer: str | None, brief: str | None) -> Preferences:
    """`Prefer: return=minimal` / `depth-noroot`, and the older `Brief: t`."""
    tokens: set[str] = set()
    for header in (prefer or "").split(","):
        token = header.split(";")[0].strip().lower().replace(" ", "")
        if token:
            tokens.add(token)
    minimal = "return=minimal" in tokens or (brief or "").strip().lower() == "t"
    return Preferences(minimal=minimal, no_root="depth-noroot" in tokens)
