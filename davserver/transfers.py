"""COPY and MOVE as steps that a failure or a crash can never leave half done.

A COPY or MOVE onto an existing resource replaces it, but the replaced resource is only set
aside (with its dead properties) until the new one is in place: if the copy or move then
fails, it is put back, and the request changed nothing. Each step is recorded in the claim that
orders the change (`davserver.ordering`), so that after a crash `recover` can tell how far it
came and finish it (the source has moved: carry its facts along) or undo it (put the replaced
resource back).

The steps, for a destination that exists:
1. its properties move to a key no client can name, and the resource is set aside whole;
2. the source is renamed (one step), or copied member by member;
3. "done" is recorded; for a MOVE the source's properties follow it, or for a MOVE done as a
   copy, the source is deleted member by member; locks on the source and on the replaced
   resource are dropped (RFC 4918 7.6: locks do not move or copy);
4. what was set aside is dropped.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from . import failpoints
from .errors import DavError, NotFound
from .model import MemberStatus, Resource
from .ordering import Held
from .provider.base import AsideKeeper
from .services import Services
from .tree import MemberCheck, allow_all, copy_tree, delete_tree

ASIDE_ROWS = "/.davserver-tmp-aside-"  # no client can name it: reserved, and at the root


@dataclass(frozen=True, slots=True)
class Plan:
    """What one COPY or MOVE does, as recorded in its claim."""

    src: str
    dst: str
    move: bool
    depth: str
    key: str | None  # set when the destination exists and is kept aside under this key

    def intent(self, phase: str) -> dict[str, object]:
        return {
            "op": "transfer",
            "src": self.src,
            "dst": self.dst,
            "move": self.move,
            "depth": self.depth,
            "key": self.key,
            "phase": phase,
        }

    @staticmethod
    def from_intent(intent: dict[str, object]) -> Plan:
        key = intent.get("key")
        return Plan(
            str(intent["src"]),
            str(intent["dst"]),
            bool(intent["move"]),
            str(intent.get("depth", "infinity")),
            None if key is None else str(key),
        )

    @property
    def rows_aside(self) -> str:
        """The store key the replaced resource's properties wait under."""
        return ASIDE_ROWS + str(self.key)


def plan(services: Services, src: str, dst: str, move: bool, depth: str, replaces: bool) -> Plan:
    """The plan for a transfer; `replaces` says the destination exists now."""
    keeps_aside = replaces and isinstance(services.provider, AsideKeeper)
    return Plan(src, dst, move, depth, uuid.uuid4().hex if keeps_aside else None)


def run(
    services: Services,
    held: Held,
    steps: Plan,
    source: Resource,
    replaced: Resource | None,
    source_check: MemberCheck = allow_all,
) -> list[MemberStatus]:
    """Carry out `steps` (whose intent `held` records); the members that failed.

    Whole-request checks (locks, Overwrite, parents) are the caller's, made before. When the
    provider cannot keep a resource aside, the replaced one is deleted first, as RFC 4918
    9.8.4 describes (what failed to go is reported and the transfer does not happen).
    """
    held.note(**steps.intent("started"))
    keeper = services.provider if isinstance(services.provider, AsideKeeper) else None
    if replaced is not None:
        if keeper is None or steps.key is None:
            failures = delete_tree(services, replaced)
            if failures:
                return failures
        else:
            services.props.move(steps.dst, steps.rows_aside)
            failpoints.hit("transfer.rows-aside")
            try:
                keeper.set_aside(steps.dst, steps.key)
            except DavError:
                _rows_back(services, steps)
                raise
            failpoints.hit("transfer.set-aside")
    try:
        failures = _transfer(services, steps, source)
    except DavError:
        _undo(services, steps)
        raise
    failpoints.hit("transfer.transferred")
    if failures and (steps.move or any(f.path == steps.dst for f in failures)):
        # A MOVE that could not take everything, or a COPY whose destination could not even
        # be made, changes nothing: what did arrive goes, and the replaced resource returns.
        _undo(services, steps)
        return failures
    held.note(**steps.intent("done"))
    failpoints.hit("transfer.done")
    return failures + _finish(services, steps, source_check)


def _transfer(services: Services, steps: Plan, source: Resource) -> list[MemberStatus]:
    if steps.move and services.provider.move(steps.src, steps.dst):
        return []
    return copy_tree(services, source, steps.dst, steps.depth, keep_times=steps.move)


def _finish(
    services: Services,
    steps: Plan,
    source_check: MemberCheck = allow_all,
    *,
    again: bool = False,
) -> list[MemberStatus]:
    """Steps 3 and 4: every fact follows the transfer, and what was replaced goes; the
    members of a MOVE's source that could not be deleted. With `again` (recovery), parts a
    crash may already have done are skipped."""
    provider = services.provider
    failures: list[MemberStatus] = []
    if steps.move:
        source = _stat(services, steps.src)
        if source is None:
            # Renamed: the properties follow. Run again, none left at the source means they
            # already did (moving nothing would wipe them at the destination).
            if not again or services.props.described(steps.src, limit=1):
                services.props.move(steps.src, steps.dst)
                failpoints.hit("transfer.props-moved")
        else:
            # Moved as a copy: the source goes member by member, each with its facts.
            failures = delete_tree(services, source, source_check)
        services.locks.delete([steps.src], recursive=True)
    services.locks.delete([steps.dst], recursive=True)
    if steps.key is not None:
        services.props.delete([steps.rows_aside], recursive=True)
        failpoints.hit("transfer.aside-forgotten")
        if isinstance(provider, AsideKeeper):
            provider.discard(steps.dst, steps.key)
    return failures


def _undo(services: Services, steps: Plan) -> None:
    """Put the destination back as it was: drop what arrived there, restore what was set
    aside with its properties. Safe to run again."""
    provider = services.provider
    aside = (
        steps.key is not None
        and isinstance(provider, AsideKeeper)
        and provider.has_aside(steps.dst, steps.key)
    )
    arrived = _stat(services, steps.dst)
    if arrived is not None and (steps.key is None or aside):
        # Whatever is at the destination now came with this transfer: before it, there was
        # nothing there (no key), or it was set aside.
        delete_tree(services, arrived)
    if steps.key is not None and isinstance(provider, AsideKeeper):
        if aside:
            provider.restore(steps.dst, steps.key)
        else:
            # Where setting aside takes several steps (an object store copies, then deletes),
            # a crash may have cut it short: the resource is still in place, and the part of
            # its copy already made goes.
            provider.discard(steps.dst, steps.key)
    _rows_back(services, steps)


def _rows_back(services: Services, steps: Plan) -> None:
    if steps.key is not None and services.props.described(steps.rows_aside, limit=1):
        services.props.move(steps.rows_aside, steps.dst)


def recover(services: Services, intent: dict[str, object]) -> None:
    """Finish or undo a transfer whose process died, from the phase it recorded."""
    steps = Plan.from_intent(intent)
    phase = intent.get("phase")
    if phase == "done":
        _finish(services, steps, again=True)
        return
    renamed = (
        steps.move and _stat(services, steps.src) is None and _stat(services, steps.dst) is not None
    )
    if renamed:
        # The rename happened (it is one step); only its facts had not followed yet.
        _finish(services, steps, again=True)
        return
    _undo(services, steps)


def _stat(services: Services, path: str) -> Resource | None:
    try:
        return services.provider.stat(path)
    except NotFound:
        return None
