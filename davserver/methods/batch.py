"""POST of a JSON batch: many operations in one request, each with its own outcome (a 207).

Each item runs through the very functions the WebDAV methods use (DELETE, COPY, MOVE, MKCOL,
PROPPATCH, PROPFIND at Depth 0), with the same lock checks and access rules, so a batch can
never do what the equivalent requests could not. Everything that can refuse the whole batch
comes before any item runs: the target's conditional headers (412), the body (400), a change on
a read-only share (403), an anonymous client without the rights its items need (401). Then the
items run in order, to the end (or, with `stop_on_error`, to the first failure) whatever the
client does meanwhile: each result is serialized as soon as it is known, as JSON or, with
`Accept: application/xml`, as a `<D:multistatus>`, into a spool (memory, then a temporary file)
that is sent once the batch is done. One result model, two serializations.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .. import auth, paths, xmlin, xmlout
from ..errors import BadRequest, DavError, Forbidden, MethodNotAllowed, PayloadTooLarge
from ..locking import Guard
from ..model import MemberStatus
from ..ordering import claimed
from ..props import LiveContext
from ..request import Request, Response
from ..services import Services
from ..xmlnames import property_name_problem
from .copymove import Transfer, transfer
from .propfind import DeadProperties, collect
from .proppatch import apply_changes
from .read import DAV_METHODS, content_type
from .results import collection_test, member_error
from .write import check_preconditions, delete_resource, make_collection

OPS = ("delete", "move", "copy", "mkcol", "proppatch", "propfind")
# The one item that changes nothing: a batch of these alone is allowed on a read-only share.
READ_OPS = frozenset({"propfind"})
JSON_TYPE = "application/json"
# Serialized results beyond this many bytes wait for the client in a temporary file.
SPOOL_IN_MEMORY = 1024 * 1024


class BatchError(BadRequest):
    """A body that is not a valid batch: 400 with a JSON reason, before anything runs."""

    def __init__(self, code: str, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.index = index

    def json(self) -> bytes:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.index is not None:
            body["index"] = self.index
        return json.dumps(body).encode()


@dataclass(frozen=True, slots=True)
class Operation:
    """One validated item. `target`/`dest_target` are provider paths, or None when the given
    path leaves the collection (that item is then refused with 403)."""

    index: int
    op: str
    path: str
    target: str | None
    destination: str = ""
    dest_target: str | None = None
    overwrite: bool = True
    depth: str = "infinity"
    set: tuple[tuple[str, str], ...] = ()
    remove: tuple[str, ...] = ()
    props: tuple[str, ...] | None = None

    @property
    def escapes(self) -> bool:
        """Whether a path of the item leaves the collection (the item is then refused)."""
        return self.target is None or (self.op in ("move", "copy") and self.dest_target is None)


@dataclass(slots=True)
class ItemResult:
    index: int
    op: str
    path: str
    href: str
    status: int
    error: str | None = None
    message: str = ""
    # The hrefs of the resources the error names (the locked one of lock-token-submitted).
    error_hrefs: list[str] = field(default_factory=list)
    members: list[dict[str, Any]] = field(default_factory=list)
    props: dict[str, str] | None = None
    missing: list[str] | None = None
    propstat: dict[str, int] | None = None

    @property
    def succeeded(self) -> bool:
        return 200 <= self.status < 300 and self.status != 207

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "index": self.index,
            "op": self.op,
            "path": self.path,
            "href": self.href,
            "status": self.status,
        }
        if self.error:
            out["error"] = self.error
        if self.error_hrefs:
            out["error_hrefs"] = self.error_hrefs
        if self.message:
            out["message"] = self.message
        if self.members:
            out["members"] = self.members
        if self.props is not None:
            out["props"] = self.props
            out["missing"] = self.missing or []
        if self.propstat is not None:
            out["propstat"] = self.propstat
        return out


# -- parsing and validation ---------------------------------------------------------------------


def _resolve(base: str, given: str) -> str | None:
    """`given` (plain, `/`-separated, relative to `base`) as a provider path, or None when it
    would leave `base` or names something no path can (`..`, backslashes, NUL)."""
    try:
        segments = [s for s in given.split("/") if s]
        for segment in segments:
            paths.check_segment(segment)
    except DavError:
        return None
    return paths.join([*paths.split(base), *segments])


def _string(item: dict[str, Any], key: str, index: int) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        raise BatchError("invalid-operation", f"operation {index}: '{key}' must be a string", index)
    return value


def _names(value: Any, key: str, index: int) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(n, str) and n for n in value):
        raise BatchError(
            "invalid-operation",
            f"operation {index}: '{key}' must be a list of property names like '{{DAV:}}getetag'",
            index,
        )
    return tuple(value)


def parse_batch(body: bytes, base: str, limit: int) -> tuple[list[Operation], bool, list[str]]:
    """The operations, `stop_on_error` and the body's lock tokens; raises BatchError."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BatchError("invalid-json", f"the body is not valid JSON: {exc}") from None
    if not _encodable(document):
        # JSON can spell lone surrogates (\ud800) that no path or XML can hold.
        raise BatchError("invalid-json", "the body holds text that is not valid Unicode")
    if not isinstance(document, dict) or not isinstance(document.get("operations"), list):
        raise BatchError("invalid-batch", 'the body must be {"operations": [...]}')
    unknown = set(document) - {"operations", "stop_on_error", "lock_tokens"}
    if unknown:
        raise BatchError("invalid-batch", f"unknown keys: {', '.join(sorted(unknown))}")
    items = document["operations"]
    if len(items) > limit:
        raise BatchError("too-many-operations", f"{len(items)} operations; the limit is {limit}")
    stop = document.get("stop_on_error", False)
    if not isinstance(stop, bool):
        raise BatchError("invalid-batch", "stop_on_error must be true or false")
    tokens = document.get("lock_tokens", [])
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        raise BatchError("invalid-batch", "lock_tokens must be a list of strings")
    return [_operation(item, i, base) for i, item in enumerate(items)], stop, tokens


def _encodable(document: Any) -> bool:
    """Whether every string (keys included) in a parsed JSON document is valid UTF-8."""
    pending = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return True


def _operation(item: Any, index: int, base: str) -> Operation:
    if not isinstance(item, dict):
        raise BatchError("invalid-operation", f"operation {index} is not an object", index)
    op = item.get("op")
    if op not in OPS:
        raise BatchError(
            "unknown-op",
            f"operation {index}: unknown op {op!r}; use one of {', '.join(OPS)}",
            index,
        )
    path = _string(item, "path", index)
    common = {"index": index, "op": op, "path": path, "target": _resolve(base, path)}
    if op in ("move", "copy"):
        destination = _string(item, "destination", index)
        overwrite = item.get("overwrite", True)
        depth = str(item.get("depth", "infinity")).lower()
        if not isinstance(overwrite, bool):
            raise BatchError(
                "invalid-operation", f"operation {index}: overwrite must be true or false", index
            )
        if depth not in (("infinity",) if op == "move" else ("0", "infinity")):
            raise BatchError(
                "invalid-operation", f"operation {index}: depth {depth!r} is not allowed", index
            )
        return Operation(
            **common,
            destination=destination,
            dest_target=_resolve(base, destination),
            overwrite=overwrite,
            depth=depth,
        )
    if op == "proppatch":
        sets = item.get("set", {})
        if not isinstance(sets, dict) or not all(isinstance(v, str) for v in sets.values()):
            raise BatchError(
                "invalid-operation",
                f"operation {index}: 'set' must map property names to string values",
                index,
            )
        remove = _names(item.get("remove", []), "remove", index)
        if not sets and not remove:
            raise BatchError(
                "invalid-operation", f"operation {index}: nothing to set or remove", index
            )
        # Any name may be removed: one stored before names were checked, that XML cannot
        # spell, can only be removed here (see propfind.DeadProperties).
        for name in sets:
            _check_name(name, index)
        return Operation(**common, set=tuple(sets.items()), remove=remove)
    if op == "propfind":
        props = None if "props" not in item else _names(item["props"], "props", index)
        for name in props or ():
            _check_name(name, index)
        return Operation(**common, props=props)
    return Operation(**common)


def _check_name(name: str, index: int) -> None:
    problem = property_name_problem(name)
    if problem is not None:
        raise BatchError("invalid-operation", f"operation {index}: {problem}", index)


# -- running ---------------------------------------------------------------------------------


_METHOD = {
    "delete": "DELETE",
    "move": "MOVE",
    "copy": "COPY",
    "mkcol": "MKCOL",
    "proppatch": "PROPPATCH",
    "propfind": "PROPFIND",
}


class Runner:
    """Runs validated operations for one request, one at a time."""

    def __init__(self, services: Services, req: Request, guard: Guard) -> None:
        self.services = services
        self.req = req
        self.guard = guard
        self.base = req.path

    def relative(self, path: str) -> str:
        if self.base == paths.ROOT:
            return path.lstrip("/")
        return path[len(self.base) + 1 :]

    def run(self, op: Operation) -> ItemResult:
        href = self.req.href(op.target or self.base, op.path.endswith("/"))
        result = ItemResult(op.index, op.op, op.path, href, 200)
        try:
            if op.escapes:
                raise Forbidden("the path leaves the collection the batch was sent to")
            self._authorize(op)
            self._execute(op, result)
        except DavError as exc:
            result.status = exc.status
            result.error = exc.condition or _code(exc.status)
            result.error_hrefs = self._hrefs(exc.hrefs)
            result.message = exc.message
            if exc.status == 412 and op.op in ("move", "copy"):
                # Say it in the batch's own terms, not the Overwrite header's.
                result.message = f"{op.destination} exists and overwrite is false"
        return result

    def _hrefs(self, named: tuple[str, ...]) -> list[str]:
        """The hrefs of the resources a condition names, as a WebDAV method's <D:error> writes
        them: under the prefix, a collection's with its trailing slash (RFC 4918 16)."""
        is_collection = collection_test(self.services)
        return [self.req.href(path, is_collection(path)) for path in named]

    def require_login(self, operations: list[Operation]) -> None:
        """401 with the challenge for the whole batch, before anything runs, when an anonymous
        client sent an item that needs more than anonymous users get.

        That is what a plain request gets, and the one answer a client can act on: it logs in
        and sends the batch again. A 401 inside a 207 carries no challenge, and resending a
        batch that ran in part would run its other items twice."""
        if self.req.user is not None or self.services.authenticator is None:
            return
        for op in operations:
            if not op.escapes:
                self._authorize(op)

    def _authorize(self, op: Operation) -> None:
        assert op.target is not None
        method = _METHOD[op.op]
        destination: Callable[[], str] = lambda: op.dest_target or ""  # noqa: E731
        services = self.services
        needs = auth.needs(method, op.target, destination)
        auth.require(services.policy, services.authenticator, self.req.user, needs)

    def _execute(self, op: Operation, result: ItemResult) -> None:
        services, guard, target = self.services, self.guard, op.target
        assert target is not None
        if op.op == "delete":
            self._members(result, delete_resource(services, guard, target), 204, (target,))
        elif op.op in ("move", "copy"):
            assert op.dest_target is not None
            status, failures = transfer(
                services,
                guard,
                Transfer(target, op.dest_target, op.op == "move", op.depth, op.overwrite),
            )
            self._members(result, failures, status, (target, op.dest_target))
        elif op.op == "mkcol":
            make_collection(services, guard, target)
            result.status = 201
        elif op.op == "proppatch":
            changes = [xmlin.PropChange(n, xmlout.element(n, xmlout.escape(v))) for n, v in op.set]
            changes += [xmlin.PropChange(n, None) for n in op.remove]
            response = apply_changes(services, guard, target, changes)
            statuses = {name: ps.status for ps in response.propstats for name, _ in ps.props}
            failed = [s for s in statuses.values() if s != 200]
            result.status = next((s for s in failed if s != 424), 200)
            if failed:
                result.propstat = statuses
                result.error = _code(result.status)
        else:
            self._propfind(op, target, result)

    def _members(
        self,
        result: ItemResult,
        failures: list[MemberStatus],
        ok: int,
        targets: tuple[str, ...],
    ) -> None:
        """Record a tree operation's outcome as the WebDAV method would answer it."""
        if not failures:
            result.status = ok
            return
        if len(failures) == 1 and failures[0].path in targets:
            raise member_error(failures[0])
        result.status = 207
        result.error = "partial-failure"
        for member in failures:
            entry: dict[str, Any] = {
                "path": self.relative(member.path) + ("/" if member.is_collection else ""),
                "href": self.req.href(member.path, member.is_collection),
                "status": member.status,
            }
            if member.condition:
                entry["error"] = member.condition
            if member.condition_paths:
                entry["error_hrefs"] = self._hrefs(member.condition_paths)
            if member.message:
                entry["message"] = member.message
            result.members.append(entry)

    def _propfind(self, op: Operation, target: str, result: ItemResult) -> None:
        services = self.services
        resource = services.provider.stat(target)
        now = services.clock()
        live = LiveContext(
            self.req.prefix,
            services.locks.covering(target, now),
            now,
            content_type,
            services.provider.quota,
        )
        request = (
            xmlin.Propfind("prop", op.props)
            if op.props is not None
            else (xmlin.Propfind("allprop"))
        )
        response = collect(
            request, resource, live, DeadProperties(services.props, target), minimal=False
        )
        result.props = {}
        result.missing = []
        for propstat in response.propstats:
            for name, xml in propstat.props:
                if propstat.status == 200 and xml is not None:
                    result.props[name] = xmlin.value_of(xml)
                else:
                    result.missing.append(name)
        result.href = self.req.href(target, resource.is_collection)


def _code(status: int) -> str:
    return {
        400: "bad-request",
        403: "forbidden",
        404: "not-found",
        405: "method-not-allowed",
        409: "conflict",
        412: "precondition-failed",
        413: "too-large",
        415: "unsupported-media-type",
        423: "locked",
        424: "failed-dependency",
        502: "bad-gateway",
        507: "insufficient-storage",
        508: "loop-detected",
    }.get(status, "error")


# -- the handler -------------------------------------------------------------------------------


def is_batch(req: Request) -> bool:
    """Whether a request is a JSON batch (the only POST served)."""
    media = (req.header("Content-Type") or "").split(";")[0].strip().lower()
    return req.method == "POST" and media == JSON_TYPE


def post(services: Services, req: Request, guard: Guard) -> Response:
    """POST: a JSON batch on a collection; any other POST is not supported (405)."""
    if not is_batch(req):
        raise MethodNotAllowed("POST takes a JSON batch", headers=[("Allow", DAV_METHODS)])
    resource = services.provider.stat(req.path)
    if not resource.is_collection:
        raise MethodNotAllowed("a batch is sent to a collection", headers=[("Allow", DAV_METHODS)])
    # The target's conditional headers hold or nothing runs (RFC 9110 13.2.1: evaluated before
    # the content is processed); its If header was evaluated before the handler (app.py).
    check_preconditions(req, resource)
    config = services.config
    try:
        body = req.read_body(config.max_batch_body)
    except PayloadTooLarge as exc:
        return _bad(BatchError("too-large", exc.message), 413)
    try:
        operations, stop_on_error, tokens = parse_batch(body, req.path, config.max_batch_operations)
    except BatchError as exc:
        return _bad(exc, 400)
    if config.readonly and any(op.op not in READ_OPS for op in operations):
        raise Forbidden("this share is read-only: a batch here may only hold propfind items")
    guard.tokens = guard.tokens | frozenset(tokens)
    runner = Runner(services, req, guard)
    runner.require_login(operations)
    tally = Tally(len(operations))
    results = _results(runner, operations, stop_on_error, tally)
    accept = (req.header("Accept") or "").lower()
    if "application/xml" in accept or "text/xml" in accept:
        content_type = 'application/xml; charset="utf-8"'
        chunks = xmlout.multistatus(_xml_item(r) for r in results)
    else:
        content_type = JSON_TYPE
        chunks = _json_stream(results)
    # Every item runs here, before the answer starts: a client that stops reading cannot stop
    # the batch halfway (only the spool's size grows with the batch, not the memory). The
    # batch holds one claim on all its items' paths, taken at once: it runs as one unit among
    # other requests, and each item inside it takes no claim of its own.
    exclusive, shared, intents = _claims(operations)
    with claimed(services, exclusive, shared, {"op": "batch", "items": intents}):
        spool = Spool(chunks)
    return Response(
        207,
        [("Content-Type", content_type), ("Content-Length", str(spool.size))],
        spool,
        log_note=tally.note(),
    )


def _claims(
    operations: list[Operation],
) -> tuple[list[str], list[str], list[dict[str, object]]]:
    """The paths a batch changes and reads, and what recovery needs to know of its items."""
    changed: set[str] = set()
    read: set[str] = set()
    intents: list[dict[str, object]] = []
    for op in operations:
        if op.target is None or op.op in READ_OPS:
            continue  # refused or read-only: nothing to hold
        if op.op == "copy":
            read.add(op.target)
        else:
            changed.add(op.target)
        if op.op in ("move", "copy") and op.dest_target is not None:
            changed.add(op.dest_target)
        if op.op == "delete":
            intents.append({"op": "delete", "path": op.target})
    exclusive = _outermost(changed)
    shared = [p for p in _outermost(read) if not paths.within_any(p, changed)]
    return exclusive, shared, intents


def _outermost(found: set[str]) -> list[str]:
    """The paths not under another one of them (a claim on a folder holds its members)."""
    return sorted(p for p in found if not paths.inside_any(p, found))


def _bad(error: BatchError, status: int) -> Response:
    body = error.json()
    return Response(
        status, [("Content-Type", JSON_TYPE), ("Content-Length", str(len(body)))], [body]
    )


@dataclass(slots=True)
class Tally:
    """How many of a batch's items ran, and how many of those failed (for the access log)."""

    items: int
    ran: int = 0
    failed: int = 0

    def note(self) -> str:
        return f"items={self.items} ran={self.ran} failed={self.failed}"


def _results(
    runner: Runner, operations: list[Operation], stop: bool, tally: Tally
) -> Iterator[ItemResult]:
    for op in operations:
        if stop and tally.failed:
            href = runner.req.href(op.target or runner.base, op.path.endswith("/"))
            yield ItemResult(
                op.index,
                op.op,
                op.path,
                href,
                424,
                "failed-dependency",
                "not run: an earlier operation failed",
            )
            continue
        result = runner.run(op)
        tally.ran += 1
        tally.failed += not result.succeeded
        yield result


class Spool:
    """An answer made in full before it is sent: the chunks, kept in memory up to
    SPOOL_IN_MEMORY bytes and in a temporary file beyond; iterated in pieces of about
    xmlout.CHUNK bytes. The WSGI server closes it, which removes the file."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        # Not a `with`: the file outlives this call, until the server closes the answer.
        self.file = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
        try:
            for chunk in chunks:
                self.file.write(chunk)
        except BaseException:
            self.file.close()
            raise
        self.size = self.file.tell()
        self.file.seek(0)

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.file.read(xmlout.CHUNK):
            yield chunk

    def close(self) -> None:
        self.file.close()


_encode = json.JSONEncoder(ensure_ascii=False).encode


def _json_stream(results: Iterator[ItemResult]) -> Iterator[bytes]:
    def parts() -> Iterator[str]:
        total = succeeded = 0
        yield '{"results": ['
        for result in results:
            yield ("," if total else "") + _encode(result.as_json())
            total += 1
            succeeded += result.succeeded
        summary = {"total": total, "succeeded": succeeded, "failed": total - succeeded}
        yield '], "summary": ' + json.dumps(summary) + "}\n"

    return xmlout.chunked(parts())


def _xml_item(result: ItemResult) -> str:
    description = result.message
    if result.members:
        listed = ", ".join(f"{m['path']} ({m['status']})" for m in result.members)
        description = f"{len(result.members)} members failed: {listed}"
    # RFC 4918 condition names go into <D:error>; our own short codes stay in the text.
    condition = result.error if result.error in RFC_CONDITIONS else None
    return xmlout.response(result.href, result.status, condition, result.error_hrefs, description)


RFC_CONDITIONS = frozenset(
    {
        "lock-token-submitted",
        "no-conflicting-lock",
        "lock-token-matches-request-uri",
        "cannot-modify-protected-property",
        "propfind-finite-depth",
    }
)
