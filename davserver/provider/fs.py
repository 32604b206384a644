"""The filesystem provider: a directory tree on local disk, mapped safely.

Safety: provider paths arrive with checked segments (no `..`, `/`, `\\`, NUL), so joining them
cannot climb out of the root by spelling; a symlink could, so any path whose real location is
outside the root is reported as not found, and such links are left out of listings. Links that
stay inside the root are followed. A path checked, then used by name, would follow a folder
swapped for a link to outside in between (a local user racing the server): every read and
change is made from the folder's descriptor, each folder on the way opened from the one before
without following a link (`_folder_beneath`), and a link met there checked before it is followed.
Left by name: figures (`count`, `quota`), `canonical`, and the startup sweep of davserver's own
leftovers (`sweep_temp_files`, which removes only names it reserves).

Durability: every write goes to a temporary file in the target's own directory, is fsynced, then
renamed over the target, so a cut-off upload or a crash leaves the old content.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import stat as st
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import BinaryIO, NoReturn, TypeVar

from .. import owners, paths
from ..errors import (
    Conflict,
    DavError,
    Forbidden,
    InsufficientStorage,
    MethodNotAllowed,
    NotFound,
)
from ..model import Resource
from .base import ReadStream, Staged
from .trash import Trash

log = logging.getLogger(__name__)
_T = TypeVar("_T")

# Uploads in progress and the trash folder; left out of listings, and swept at startup if a
# crash left something behind.
TEMP_PREFIX = ".davserver-tmp-"
TRASH_NAME = TEMP_PREFIX + "trash"
# A resource replaced by a MOVE or COPY waits under this name until the change succeeded.
ASIDE_PREFIX = TEMP_PREFIX + "aside-"
UPLOAD_PREFIX = TEMP_PREFIX + "up+"
STALE_UPLOAD_SECONDS = 3600.0
_PIECE = 1 << 20
# Non-blocking: opening a FIFO would otherwise wait for a writer (it is refused after the open).
_OPEN_FLAGS = os.O_CLOEXEC | os.O_NONBLOCK
_READ_FLAGS = os.O_RDONLY | _OPEN_FLAGS
# A folder to list, not through a link.
_LISTING_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# A folder on the way to a file, held only to open the next step from it.
_FOLDER_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class FilesystemProvider:
    """Shares the directory `root` (created when missing)."""

    local_lookups = True

    def __init__(self, root: str) -> None:
        os.makedirs(root, exist_ok=True)
        self.root = os.path.realpath(root)
        # How the root's members are named by path (see `_at`); a root of "/" must not make
        # "//a".
        self._prefix = self.root.rstrip("/") + "/"
        # The process umask, read once: new files get the mode a plain open() would give them,
        # not mkstemp's 0600.
        mask = os.umask(0)
        os.umask(mask)
        self._file_mode = 0o666 & ~mask
        self.trash = Trash(os.path.join(self.root, TRASH_NAME))
        self._new_identity()

    def _new_identity(self) -> None:
        """A new owner name, and the upload prefix made of it: uploads in progress are named
        after their owner, so a sweep knows whose they are."""
        self.owner = owners.new_owner()
        self.upload_prefix = UPLOAD_PREFIX + owners.file_tag(self.owner) + "+"

    # -- mapping -------------------------------------------------------------------------

    def local_path(self, path: str) -> str:
        """The on-disk path for a provider path; raises NotFound if it resolves outside, and
        Forbidden for the names reserved for uploads in progress. Checked, but a folder on
        it may be swapped for a link right after: what reads or changes the tree goes
        through `_folder_beneath` instead."""
        segments = self._segments(path)
        return self._walk(path, segments)[0] if segments else self.root

    def _segments(self, path: str) -> list[str]:
        segments = paths.split(path)
        if TEMP_PREFIX in path.casefold() and any(reserved(s) for s in segments):
            raise Forbidden(f"names starting with {TEMP_PREFIX} are reserved")
        return segments

    def _walk(self, path: str, segments: list[str]) -> tuple[str, os.stat_result | None, bool]:
        """The local path of `segments`, each checked; the lstat of the last one (None when
        it does not exist, or when there is none: then the root, without its last "/"); and
        whether a link was on the way."""
        # Only a symlink can lead outside, so look for one component by component (one lstat
        # each) and resolve just those; realpath() on every request cost a dozen lstats of
        # the root's own ancestors and half the time of a small GET.
        local = self.root.rstrip("/")  # a root of "/" must not make "//a"
        info: os.stat_result | None = None
        linked = False
        for segment in segments:
            local = f"{local}/{segment}"  # segments hold no "/": os.path.join's checks are moot
            try:
                info = os.lstat(local)
            except OSError:
                # Nothing there (yet): no link below it either. The rest is joined unchecked.
                return os.path.join(self.root, *segments), None, linked
            if st.S_ISLNK(info.st_mode):
                if not self._inside(local):
                    raise NotFound(f"{path} is outside the shared folder")
                linked = True
        return local, info, linked

    def _inside(self, local: str) -> bool:
        """Whether a link leads somewhere in the share."""
        return self._real(local) is not None

    def _real(self, local: str) -> str | None:
        """Where a link leads, if that is in the share: inside the root, and not into
        davserver's own files (the trash, an upload in progress); else None."""
        try:
            real = os.path.realpath(local)
        except OSError:
            # A link replaced or removed while realpath() read it (EINVAL, ENOENT): it led
            # nowhere that was checked.
            return None
        if real == self.root:
            return real
        base = self.root.rstrip(os.sep) + os.sep
        if not real.startswith(base):
            return None
        if any(reserved(part) for part in real[len(base) :].split(os.sep)):
            return None
        return real

    # -- reading ---------------------------------------------------------------------------

    def stat(self, path: str) -> Resource:
        # Looked at in its folder, opened beneath the root as GET opens it: an lstat walk
        # followed a folder swapped for a link to outside meanwhile, and told the size and
        # date of an outside file.
        segments = self._segments(path)
        info = self._lstat_beneath(path, segments, True)
        link = st.S_ISLNK(info.st_mode)
        if link:
            info = self._lstat_beneath(path, self._real_segments(path, segments), False)
            if st.S_ISLNK(info.st_mode):
                raise NotFound(f"{path} changed while it was looked at")  # swapped in since
        if _is_special(info):
            # As GET refuses it: HEAD, PROPFIND, COPY or a PUT of a range must not take it
            # for an empty file (and open it, which waits for a FIFO's other end forever).
            raise _special_file(path)
        return _resource(path, info, is_link=link)

    def children(self, path: str) -> Iterator[Resource]:
        # The folder is opened beneath the root and its members looked at from its
        # descriptor (fstatat, which also saves walking the path again for each): listed by
        # name, a folder swapped for a link to outside meanwhile showed outside's members.
        folder = self._open_file(path, _READ_FLAGS)
        try:
            try:
                entries = os.scandir(folder)  # its entries' stat() use `folder`: kept open
            except OSError as exc:
                _raise(exc, path)
            with entries:
                for entry in entries:
                    name = entry.name
                    if not _listed(name):
                        continue
                    child = paths.child(path, name)
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue  # vanished: not a member any more
                    if st.S_ISLNK(info.st_mode):
                        try:
                            # Where it leads, checked and looked at as by stat.
                            resource = self.stat(child)
                        except DavError:
                            continue  # out of the share, leading nowhere, or not a file
                        yield resource
                    elif not _is_special(info):  # a FIFO, socket or device: as stat says
                        yield _resource(child, info)
        finally:
            os.close(folder)

    def canonical(self, path: str) -> str:
        segments = self._segments(path)
        if not segments:
            return paths.ROOT
        local, _info, linked = self._walk(path, segments)
        if not linked:
            # The root is real, and nothing on the way leads elsewhere: the path is its own.
            # (Every change's claim asks: realpath() cost an lstat per level from "/".)
            return paths.join(segments)
        real = os.path.realpath(local)
        relative = os.path.relpath(real, self.root)
        if relative == ".":
            return paths.ROOT
        return "/" + relative.replace(os.sep, "/")

    def copy_link(self, src: str, dst: str) -> None:
        with (
            self._in_parent(src, parent_missing=False) as (source, src_name, _src_info),
            self._in_parent(dst, parent_missing=True) as (target, dst_name, _dst_info),
        ):
            try:
                written = os.readlink(self._at(source, src_name), dir_fd=source)
                os.symlink(written, self._at(target, dst_name), dir_fd=target)
            except OSError as exc:
                _raise(exc, dst, parent_missing=True)

    def count(self, path: str, limit: int) -> int:
        """The resources in the tree at `path` (itself included), stopping once past `limit`:
        from directory entries alone, without a stat per member, and not through links, as
        walks go."""
        found = 1
        pending = [self.local_path(path)]
        while pending:
            try:
                entries = os.scandir(pending.pop())
            except OSError:
                continue
            with entries:
                for entry in entries:
                    if not _listed(entry.name):
                        continue
                    found += 1
                    if found > limit:
                        return found
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
        return found

    def open_read(self, path: str) -> tuple[Resource, ReadStream]:
        fd = self._open_file(path, _READ_FLAGS)
        try:
            info = os.fstat(fd)
        except OSError as exc:
            os.close(fd)
            _raise(exc, path)
        if not st.S_ISREG(info.st_mode):
            os.close(fd)
            if st.S_ISDIR(info.st_mode):
                raise MethodNotAllowed(f"{path} is a collection")
            # A FIFO would block the reader forever, a device could be endless.
            raise _special_file(path)
        return _resource(path, info), FileReader(fd)

    def _open_file(self, path: str, flags: int) -> int:
        """Open the file (or folder) at `path` with `flags`, beneath the root as
        `_open_beneath` does, following the links in the share and no other."""
        segments = self._segments(path)
        if not segments:
            return _open(self.root, path, flags)
        return self._open_beneath(path, segments, True, flags)

    def _open_beneath(self, path: str, segments: list[str], resolve: bool, flags: int) -> int:
        """Open the file at `segments`, each folder on the way opened from the one before,
        none of them nor the file through a link: a path checked, then opened by name, would
        follow a folder or file swapped for a link to outside in between (a local user could
        read or write any file the server can). A link on the way is resolved and checked as
        everywhere when `resolve`, and what it leads to opened the same way: a link met
        there is one swapped in since, and is not followed (404).

        The file costs what it did after an lstat walk (one open); each folder on the way
        an open and a close where it cost an lstat."""
        # A file in the root (the commonest GET) has no folder to open on its way.
        folder = self._folder_beneath(path, segments, resolve) if len(segments) > 1 else None
        try:
            return self._open_at(folder, segments[-1], flags | os.O_NOFOLLOW)
        except OSError as exc:
            if exc.errno != errno.ELOOP or not resolve:
                _raise(exc, path)
            return self._open_link(path, segments, flags)
        finally:
            if folder is not None:
                os.close(folder)

    def _folder_beneath(
        self, path: str, segments: list[str], resolve: bool, parent_missing: bool = False
    ) -> int | None:
        """The folder holding the last of `segments`, opened as `_open_beneath` opens the
        folders on its way (a link in the share resolved when `resolve`); None for the root,
        whose path is fixed (the caller then names its members by their whole path: see
        `_at`). A missing folder, or a link swapped in, raises NotFound, or with
        `parent_missing` Conflict (the parent collection is not there)."""
        folder: int | None = None
        try:
            for segment in segments[:-1]:
                try:
                    inner = self._open_at(folder, segment, _FOLDER_FLAGS)
                except OSError as exc:
                    if exc.errno != errno.ENOTDIR or not resolve:  # a link, or a file
                        _raise(exc, path, parent_missing)
                    return self._real_folder(path, segments, parent_missing)
                if folder is not None:
                    os.close(folder)
                folder = inner
            found, folder = folder, None
            return found
        finally:
            if folder is not None:
                os.close(folder)

    def _real_folder(self, path: str, segments: list[str], parent_missing: bool) -> int | None:
        """The folder holding the last of `segments` when a link is on the way to it: the
        links checked, then where they lead opened without following any."""
        real = self._real_segments(path, segments[:-1])
        return self._folder_beneath(path, [*real, segments[-1]], False, parent_missing)

    def _real_segments(self, path: str, segments: list[str]) -> list[str]:
        """Where `segments` lead, each link on the way checked as everywhere (NotFound when
        one leads out of the share or into davserver's own files): segments with no link."""
        local, _info, _linked = self._walk(path, segments)
        real = self._real(local)
        if real is None:
            raise NotFound(f"{path} is outside the shared folder")
        if real == self.root:
            return []
        return real[len(self.root.rstrip("/")) + 1 :].split("/")

    def _lstat_beneath(self, path: str, segments: list[str], resolve: bool) -> os.stat_result:
        """The lstat of the last of `segments`, taken in its folder opened beneath the root
        (`_folder_beneath`); the root's own for none."""
        return self._in_folder(
            path,
            segments,
            resolve,
            lambda name, folder: os.stat(name, dir_fd=folder, follow_symlinks=False),
        )

    def _in_folder(
        self,
        path: str,
        segments: list[str],
        resolve: bool,
        action: Callable[[str, int | None], _T],
    ) -> _T:
        """`action(name, folder)` on the last of `segments` in its folder opened beneath the
        root (`_folder_beneath`), never through a link there (the name as `_at` gives it,
        the folder a `dir_fd`); on the root itself for none. Its OSError is translated."""
        if not segments:
            try:
                return action(self.root, None)
            except OSError as exc:
                _raise(exc, path)
        folder = self._folder_beneath(path, segments, resolve)
        try:
            return action(self._at(folder, segments[-1]), folder)
        except OSError as exc:
            _raise(exc, path)
        finally:
            if folder is not None:
                os.close(folder)

    def _at(self, folder: int | None, name: str) -> str:
        """How to name `name` in `folder` (from `_folder_beneath`) to a call given
        `dir_fd=folder`: as it is, or in the root by its whole path."""
        if folder is None:
            # The root by its path, which saves opening it and closing it on every GET: it
            # is resolved, and no client's to change.
            return self._prefix + name
        return name

    def _open_at(self, folder: int | None, name: str, flags: int) -> int:
        # `_at` written out: this is every GET's way.
        if folder is None:
            return os.open(self._prefix + name, flags)
        return os.open(name, flags, dir_fd=folder)

    def _open_link(self, path: str, segments: list[str], flags: int) -> int:
        """Open what a path with a link in it leads to, if that is in the share."""
        real = self._real_segments(path, segments)
        if not real:
            return _open(self.root, path, flags)
        return self._open_beneath(path, real, False, flags)

    def _parent(
        self, path: str, parent_missing: bool
    ) -> tuple[int | None, str, os.stat_result | None]:
        """For a change at `path` (not the root): the folder holding it, opened beneath the
        root (`_folder_beneath`), its name there, and the lstat of what has that name now.
        The path is checked first as by `local_path` (NotFound through a link out of the
        share, the last one included; Forbidden for reserved names); the change is then made
        in that folder by name, so a folder swapped for a link since cannot take it out."""
        segments = self._segments(path)
        if not segments:
            raise Forbidden("the shared root cannot be replaced")
        # The folders on the way are checked as they are opened (`_folder_beneath`); only the
        # last name is looked at here, in its folder: an lstat walk first looked at each
        # folder twice.
        folder = self._folder_beneath(path, segments, True, parent_missing)
        name = segments[-1]
        try:
            info: os.stat_result | None = os.stat(
                self._at(folder, name), dir_fd=folder, follow_symlinks=False
            )
        except OSError:
            info = None  # nothing there (yet), as the change will find
        linked = info is not None and st.S_ISLNK(info.st_mode)
        if linked and not self._inside(self._prefix + "/".join(segments)):
            if folder is not None:
                os.close(folder)
            raise NotFound(f"{path} is outside the shared folder")
        return folder, name, info

    def _same_folder(self, one: int | None, other: int | None) -> bool:
        """Whether two folders from `_folder_beneath` are one."""
        if one is None and other is None:
            return True
        return os.path.samestat(self._folder_stat(one), self._folder_stat(other))

    def _folder_stat(self, folder: int | None) -> os.stat_result:
        return os.stat(self.root) if folder is None else os.fstat(folder)

    @contextlib.contextmanager
    def _in_parent(
        self, path: str, parent_missing: bool
    ) -> Iterator[tuple[int | None, str, os.stat_result | None]]:
        """`_parent`, its folder closed at the end."""
        folder, name, info = self._parent(path, parent_missing)
        try:
            yield folder, name, info
        finally:
            if folder is not None:
                os.close(folder)

    def _holds_collection(self, folder: int | None, name: str) -> bool:
        """Whether `name` in `folder` is a folder, or a link to one: a PUT over it is
        refused as before, when os.path.isdir() told (only the answer follows the link;
        the file is never written through it)."""
        try:
            return st.S_ISDIR(os.stat(self._at(folder, name), dir_fd=folder).st_mode)
        except OSError:
            return False

    def quota(self, path: str) -> tuple[int, int] | None:
        # The filesystem's figures, as Finder and Explorer expect; summing a tree's sizes on
        # every request would make a PROPFIND on the root cost a full walk.
        try:
            usage = shutil.disk_usage(self.local_path(path))
        except OSError:
            return None
        return usage.total - usage.free, usage.free

    # -- writing ---------------------------------------------------------------------------

    def write(self, path: str, chunks: Iterable[bytes], *, create: bool = False) -> Resource:
        staged = self.stage(path, chunks)
        try:
            return staged.commit(create=create)
        finally:
            staged.discard()

    def stage(self, path: str, chunks: Iterable[bytes]) -> StagedFile:
        staged = self._staged_file(path)
        try:
            staged.fill(lambda out: _write_chunks(out, chunks))
        except BaseException:
            staged.discard()
            raise
        return staged

    def _staged_file(self, path: str) -> StagedFile:
        """A new, empty StagedFile for `path` (MethodNotAllowed where a folder is)."""
        if path == paths.ROOT:
            raise MethodNotAllowed(f"{path} is a collection")
        folder, name, _info = self._parent(path, parent_missing=True)
        if self._holds_collection(folder, name):
            if folder is not None:
                os.close(folder)
            raise MethodNotAllowed(f"{path} is a collection")
        return StagedFile(self, path, folder, name)

    def make_collection(self, path: str) -> None:
        if path == paths.ROOT:
            raise MethodNotAllowed(f"{path} already exists")
        with self._in_parent(path, parent_missing=True) as (folder, name, _info):
            try:
                os.mkdir(self._at(folder, name), dir_fd=folder)
            except FileExistsError:
                raise MethodNotAllowed(f"{path} already exists") from None
            except OSError as exc:
                _raise(exc, path, parent_missing=True)

    def delete(self, path: str) -> None:
        if path == paths.ROOT:
            raise Forbidden("the shared root cannot be deleted")
        # The path check already lstat()ed the last component: no second look.
        with self._in_parent(path, parent_missing=False) as (folder, name, info):
            if info is None:
                raise NotFound(f"{path} does not exist")
            try:
                if st.S_ISDIR(info.st_mode):
                    _rmdir(self._at(folder, name), folder)
                else:
                    # A file, or a link (never what it points to).
                    self.trash.discard(self._at(folder, name), folder)
            except OSError as exc:
                _raise(exc, path)

    def copy(self, src: str, dst: str) -> None:
        # Read as GET reads, from the file opened beneath the root.
        fd = self._open_file(src, _READ_FLAGS)
        try:
            is_dir = st.S_ISDIR(os.fstat(fd).st_mode)
        except OSError as exc:
            os.close(fd)
            _raise(exc, src)
        if is_dir:
            os.close(fd)
            self.make_collection(dst)
            return
        with open(fd, "rb") as source:
            staged = self._staged_file(dst)
            try:
                staged.fill(lambda out: _copy_file(source, out))
                staged.commit()
            finally:
                staged.discard()

    def move(self, src: str, dst: str) -> bool:
        if src == paths.ROOT:
            raise Forbidden("the shared root cannot be moved")
        # The caller has seen the source, so a missing folder is the destination's parent.
        with (
            self._in_parent(src, parent_missing=True) as (source, src_name, _src_info),
            self._in_parent(dst, parent_missing=True) as (target, dst_name, _dst_info),
        ):
            try:
                os.rename(
                    self._at(source, src_name),
                    self._at(target, dst_name),
                    src_dir_fd=source,
                    dst_dir_fd=target,
                )
            except OSError as exc:
                if exc.errno == errno.EXDEV:
                    return False
                _raise(exc, dst, parent_missing=True)
            _fsync_dir(self._at(target, "."), target)
        return True

    def write_range(
        self, path: str, offset: int, piece: Staged, *, create: bool = False
    ) -> Resource:
        if not isinstance(piece, StagedFile):
            raise TypeError("a piece staged by this provider is needed")
        if create:
            return piece.commit(create=True)
        fd, access = self._open_piece_target(path)
        try:
            info = os.fstat(fd)
            if not st.S_ISREG(info.st_mode):
                raise _special_file(path)  # (a folder is refused by the open: EISDIR)
            if offset >= info.st_size:
                # An append: the bytes a reader can see stay as they are.
                if access == os.O_RDONLY:
                    raise Forbidden(f"permission denied on {path}")
                piece.copy_to(fd, offset)
                os.fsync(fd)
                return self.stat(path)
            # Bytes a reader can see change: a whole new file with the piece in, renamed over
            # the old one, so that a GET meanwhile reads the old content or the new, never a
            # mix. Like a whole PUT, it needs leave to read the file, not to write it.
            if access == os.O_WRONLY:
                raise Forbidden(f"permission denied on {path}")
            whole = self._staged_file(path)
            try:
                with os.fdopen(os.dup(fd), "rb") as source:
                    whole.fill(lambda out: _copy_file(source, out))
                piece.copy_to(whole.fd, offset)
                os.fsync(whole.fd)
                return whole.commit()
            finally:
                whole.discard()
        except OSError as exc:
            _raise(exc, path)
        finally:
            os.close(fd)

    def _open_piece_target(self, path: str) -> tuple[int, int]:
        """The file a piece goes into, opened to read and write if it may be, else to write
        only (an append), else to read only (a rewrite, renamed over it); with that access
        mode. Only once open does its size tell which is wanted, and a file the server may
        not read (0200) or not write (0444) took each as before, the open of each by name."""
        for access in (os.O_RDWR, os.O_WRONLY):
            try:
                return self._open_file(path, access | _OPEN_FLAGS), access
            except Forbidden:
                continue
        return self._open_file(path, _READ_FLAGS), os.O_RDONLY

    def truncate(self, path: str, size: int) -> Resource:
        fd = self._open_file(path, os.O_WRONLY | _OPEN_FLAGS)
        try:
            os.ftruncate(fd, size)
        except OSError as exc:
            _raise(exc, path)
        finally:
            os.close(fd)
        return self.stat(path)

    def set_mtime(self, path: str, mtime: float) -> None:
        # Set by name in its folder, not through the file opened: an open needs leave to
        # read or write the file, where utime(2) lets its owner set the time of one that
        # is neither (a PROPPATCH of Win32LastModifiedTime on a 0200 or 0000 file was 403).
        # The name is taken as stat takes it: a link in the share followed, checked first.
        segments = self._segments(path)
        resolve = True
        if segments and st.S_ISLNK(self._lstat_beneath(path, segments, True).st_mode):
            segments, resolve = self._real_segments(path, segments), False

        def utime(name: str, folder: int | None) -> None:
            # Not through a link swapped in since the look: at worst the link's own time.
            os.utime(name, (mtime, mtime), dir_fd=folder, follow_symlinks=False)

        self._in_folder(path, segments, resolve, utime)

    def sweep_temp_files(self, older_than: float = STALE_UPLOAD_SECONDS) -> int:
        """Remove what a crash left behind, uploads and the trash; returns how many files.

        An upload's file is named after the process writing it: it goes as soon as that
        process is gone, and never while it runs (another worker sharing the folder keeps
        writing to its own). Files named otherwise (by older versions) go once untouched for
        `older_than` seconds. Folders set aside by a MOVE or COPY are left to recovery, which
        knows whether to put them back.
        """
        removed = self.trash.empty()
        limit = time.time() - older_than
        for directory, dirs, files in os.walk(self.root):
            if directory == self.root and TRASH_NAME in dirs:
                dirs.remove(TRASH_NAME)
            dirs[:] = [d for d in dirs if not d.startswith(ASIDE_PREFIX)]
            for name in files:
                if not name.startswith(TEMP_PREFIX) or name.startswith(ASIDE_PREFIX):
                    continue  # a resource set aside is recovery's to put back or drop
                temp = os.path.join(directory, name)
                with contextlib.suppress(OSError):
                    tag = _upload_owner(name)
                    stale = (
                        not owners.tag_alive(tag)
                        if tag is not None
                        else os.stat(temp).st_mtime < limit
                    )
                    if stale:
                        os.unlink(temp)
                        removed += 1
        return removed

    # -- keeping a replaced resource aside -------------------------------------------------

    def set_aside(self, path: str, key: str) -> None:
        """Take the resource at `path` (and all under it) out of the tree, keeping it whole
        until `restore` or `discard`: beside it, under a reserved name, so that moving it
        there and back is a rename within one folder. Raises NotFound, Forbidden."""
        with self._in_parent(path, parent_missing=False) as (folder, name, info):
            if info is None:
                raise NotFound(f"{path} does not exist")
            try:
                os.rename(
                    self._at(folder, name),
                    self._at(folder, ASIDE_PREFIX + key),
                    src_dir_fd=folder,
                    dst_dir_fd=folder,
                )
            except OSError as exc:
                _raise(exc, path)
            _fsync_dir(self._at(folder, "."), folder)

    def has_aside(self, path: str, key: str) -> bool:
        try:
            with self._in_parent(path, parent_missing=True) as (folder, _name, _info):
                return _lexists(self._at(folder, ASIDE_PREFIX + key), folder)
        except Conflict:
            return False  # no folder: nothing in it

    def restore(self, path: str, key: str) -> None:
        """Put back what `set_aside` kept, at `path` (where nothing may be now)."""
        with self._in_parent(path, parent_missing=False) as (folder, name, _info):
            target = self._at(folder, name)
            try:
                if _lexists(target, folder):
                    raise FileExistsError(errno.EEXIST, "restore over an existing resource", path)
                aside = self._at(folder, ASIDE_PREFIX + key)
                os.rename(aside, target, src_dir_fd=folder, dst_dir_fd=folder)
            except OSError as exc:
                _raise(exc, path)
            _fsync_dir(self._at(folder, "."), folder)

    def discard(self, path: str, key: str) -> None:
        """Remove for good what `set_aside` kept (the replaced resource is no longer
        wanted). What cannot be removed stays hidden and is logged."""
        try:
            with self._in_parent(path, parent_missing=True) as (folder, _name, _info):
                self._remove(folder, ASIDE_PREFIX + key)
        except Conflict:
            return  # no folder: nothing in it

    def _remove(self, folder: int | None, name: str) -> None:
        """Remove `name` in `folder`, and all in it: each folder opened from the one holding
        it without following a link (a folder swapped for a link meanwhile is removed as
        the link, and nothing it leads to). What cannot be removed is logged."""
        try:
            inner = os.open(self._at(folder, name), _LISTING_FLAGS, dir_fd=folder)
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.ENOTDIR:  # not a folder (or a link to one): a file
                log.warning("could not remove %s, replaced by a MOVE or COPY: %s", name, exc)
                return
            with contextlib.suppress(FileNotFoundError):
                self.trash.discard(self._at(folder, name), folder)
            return
        try:
            with os.scandir(inner) as entries:
                members = [entry.name for entry in entries]
            for member in members:
                self._remove(inner, member)
        except OSError as exc:
            log.warning("could not remove %s, replaced by a MOVE or COPY: %s", name, exc)
        finally:
            os.close(inner)
        try:
            os.rmdir(self._at(folder, name), dir_fd=folder)
        except OSError as exc:
            log.warning("could not remove %s, replaced by a MOVE or COPY: %s", name, exc)

    def close(self) -> None:
        """Finish the background work: unlink the files still waiting in the trash. Uploads
        left by this provider are then a dead process's; used again, it gets a new name."""
        self.trash.close()
        owners.retire(self.owner)
        self._new_identity()


class StagedFile:
    """New content for one file, written and synced to disk but not yet in the tree.

    It is a hidden file beside its target, named after this process (`sweep_temp_files`
    removes it once the process is gone, however it ended). Every step is taken in its
    folder, held open from the start (opened beneath the root: a folder swapped for a link
    to outside cannot take the file, or its name, out of the share). If a MOVE carries the
    folder off while the body arrives, the commit fails (the path's folder is no longer the
    one the file was written in) and the file is removed from the folder held.
    """

    def __init__(
        self, provider: FilesystemProvider, path: str, folder: int | None, name: str
    ) -> None:
        """Make the file in `folder` (from `FilesystemProvider._parent`, closed by `discard`)
        beside `name`, the target's name there."""
        self.provider = provider
        self.path = path
        self.folder = folder
        self.name = name
        self.fd = -1
        self.temp: str | None = None
        temp = provider.upload_prefix + uuid.uuid4().hex
        try:
            self.fd = os.open(
                provider._at(folder, temp), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=folder
            )
        except OSError as exc:
            self.discard()
            _raise(exc, path, parent_missing=True)
        self.temp = temp

    def fill(self, fill: Callable[[BinaryIO], object]) -> None:
        """Write the content with `fill` and make it durable."""
        try:
            with os.fdopen(os.dup(self.fd), "wb") as out:
                fill(out)
                out.flush()
                os.fchmod(out.fileno(), self.provider._file_mode)
                os.fsync(out.fileno())
        except OSError as exc:
            self._failed(exc)

    def commit(self, *, create: bool = False, mtime: float | None = None) -> Resource:
        """Give the content its name, replacing what is there (or, with `create`, only where
        nothing is: MethodNotAllowed otherwise), with `mtime` as its modification time.

        A link with the name is replaced, not written through: the file is renamed over it
        (a link on the way to the folder is followed, as everywhere)."""
        path = self.path
        provider = self.provider
        # Where the path leads now must be the folder the file was written in.
        folder, name, _info = provider._parent(path, parent_missing=True)
        try:
            if self.temp is None or not provider._same_folder(folder, self.folder):
                raise Conflict(f"the collection of {path} changed while the content arrived")
            if provider._holds_collection(folder, name):
                raise MethodNotAllowed(f"{path} is a collection")
            temp = provider._at(folder, self.temp)
            target = provider._at(folder, name)
            try:
                if mtime is not None:
                    os.utime(self.fd, (mtime, mtime))
                if create:
                    _link_new(temp, target, folder, path)
                else:
                    os.replace(temp, target, src_dir_fd=folder, dst_dir_fd=folder)
                self.temp = None
            except OSError as exc:
                if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                    raise Conflict(
                        f"the collection of {path} moved while the content arrived"
                    ) from exc
                self._failed(exc)
            _fsync_dir(provider._at(folder, "."), folder)
        finally:
            if folder is not None:
                os.close(folder)
        return provider.stat(path)

    def copy_to(self, fd: int, offset: int) -> None:
        """Write the content into the open file `fd` at `offset` (a piece of a file)."""
        done = 0
        while chunk := os.pread(self.fd, _PIECE, done):
            os.pwrite(fd, chunk, offset + done)
            done += len(chunk)

    def discard(self) -> None:
        """Drop the content if it was not committed (always safe to call). The folder is
        the one it was written in wherever a MOVE carried it meanwhile: it is found there."""
        if self.temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.provider._at(self.folder, self.temp), dir_fd=self.folder)
            self.temp = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self.folder is not None:
            os.close(self.folder)
            self.folder = None

    def _failed(self, exc: OSError) -> NoReturn:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            self.provider.trash.empty()  # the space that deleted files hold: a retry may fit
        _raise(exc, self.path)


def _upload_owner(name: str) -> str | None:
    """The process tag in an upload's file name, or None for a name of another form."""
    if not name.startswith(UPLOAD_PREFIX):
        return None
    tag, _, _random = name[len(UPLOAD_PREFIX) :].rpartition("+")
    return tag or None


def reserved(name: str) -> bool:
    """Whether `name` is one of davserver's own, in any case: a case-folding filesystem
    would otherwise let `.DAVSERVER-TMP-TRASH` name the trash, and Linux's (ext4 or f2fs
    casefold folders) folds with Unicode's full case folding, where U+017F (long s) is `s`:
    lower() leaves it as it is, casefold() does not."""
    return name.casefold().startswith(TEMP_PREFIX)


def _listed(name: str) -> bool:
    """Whether a directory entry is a member clients see."""
    if name[:1] == "." and reserved(name):
        return False
    return _addressable(name)


def _addressable(name: str) -> bool:
    # Names that no URL can reach (undecodable bytes, backslashes) are not shown.
    if "\\" in name:
        return False
    if name.isascii():
        return True
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _resource(path: str, info: os.stat_result, is_link: bool = False) -> Resource:
    is_dir = st.S_ISDIR(info.st_mode)
    size = 0 if is_dir else info.st_size
    # The inode changes with every atomic replace, but the kernel hands a freed inode number
    # to the next new file at once, and the mtime is whatever a client asked for
    # (X-OC-Mtime): neither tells two contents apart. The ctime does: nobody can set it, and
    # every write, rename and utime moves it on (in nanoseconds, where the kernel keeps
    # fine-grained timestamps, as Linux 6.13+ does on ext4, xfs, btrfs and tmpfs).
    etag = f"{info.st_ino:x}-{info.st_ctime_ns:x}-{info.st_mtime_ns:x}-{size:x}"
    created = getattr(info, "st_birthtime", None) or min(info.st_ctime, info.st_mtime)
    return Resource(path, is_dir, size, info.st_mtime, created, etag, None, is_link)


def _rmdir(name: str, folder: int | None) -> None:
    """Remove the empty directory `name` in `folder` (a `dir_fd`). Unfinished uploads are
    not members (listings leave them out), so they do not keep a collection from being
    deleted: they go with it."""
    try:
        os.rmdir(name, dir_fd=folder)
    except OSError as exc:
        if exc.errno != errno.ENOTEMPTY:
            raise
        inner = os.open(name, _LISTING_FLAGS, dir_fd=folder)
        try:
            with os.scandir(inner) as entries:
                leftovers = [e.name for e in entries if e.name.startswith(TEMP_PREFIX)]
            for leftover in leftovers:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(leftover, dir_fd=inner)
        finally:
            os.close(inner)
        os.rmdir(name, dir_fd=folder)


def _link_new(temp: str, target: str, folder: int | None, path: str) -> None:
    """Give the finished temporary file, `temp` in `folder`, the name `target` there only if
    nothing has it yet: link() fails where rename() would silently replace."""
    try:
        os.link(temp, target, src_dir_fd=folder, dst_dir_fd=folder)
    except FileExistsError:
        raise MethodNotAllowed(f"{path} already exists") from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EMLINK):
            raise
        # No hard links on this filesystem: claim the name first, then replace it.
        try:
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, dir_fd=folder))
        except FileExistsError:
            raise MethodNotAllowed(f"{path} already exists") from None
        os.replace(temp, target, src_dir_fd=folder, dst_dir_fd=folder)
        return
    os.unlink(temp, dir_fd=folder)


def _copy_file(source: BinaryIO, out: BinaryIO) -> None:
    """Copy in the kernel where it can (copy_file_range: no round trip through Python, and
    reflinks on filesystems that share extents); fall back to a buffered copy."""
    size = os.fstat(source.fileno()).st_size
    copied = 0
    try:
        while copied < size:
            sent = os.copy_file_range(source.fileno(), out.fileno(), size - copied)
            if sent == 0:
                break
            copied += sent
    except OSError:
        source.seek(copied)
        out.seek(copied)
        shutil.copyfileobj(source, out, 1024 * 1024)


def _write_chunks(out: BinaryIO, chunks: Iterable[bytes]) -> None:
    for chunk in chunks:
        out.write(chunk)


def _fsync_dir(directory: str, folder: int | None = None) -> None:
    # The rename is durable only once the directory entry is on disk.
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC, dir_fd=folder)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _lexists(name: str, folder: int | None) -> bool:
    """Whether something (a link included) has the name `name` in `folder` (a `dir_fd`)."""
    try:
        os.stat(name, dir_fd=folder, follow_symlinks=False)
    except OSError:
        return False
    return True


def _open(local: str, path: str, flags: int) -> int:
    try:
        return os.open(local, flags)
    except OSError as exc:
        _raise(exc, path)


class FileReader:
    """A file's content read straight from its descriptor, which it owns. Python's own file
    object costs a second fstat (to refuse a directory, already refused here) and more per
    GET; this is all a GET needs, and the descriptor lets a server send the file itself."""

    __slots__ = ("_fd",)

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def fileno(self) -> int:
        if self._fd < 0:
            raise ValueError("I/O operation on a closed file")
        return self._fd

    def read(self, size: int = -1, /) -> bytes:
        if size >= 0:
            return os.read(self.fileno(), size)
        pieces = []
        while piece := os.read(self.fileno(), _PIECE):
            pieces.append(piece)
        return b"".join(pieces)

    def seek(self, offset: int, whence: int = os.SEEK_SET, /) -> int:
        return os.lseek(self.fileno(), offset, whence)

    def tell(self) -> int:
        return os.lseek(self.fileno(), 0, os.SEEK_CUR)

    def close(self) -> None:
        fd = self._fd
        if fd >= 0:
            # Marked closed first: a descriptor number is reused at once, and a second
            # close (from __del__) must not close another file's.
            self._fd = -1
            os.close(fd)

    def __enter__(self) -> FileReader:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
        /,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        # A reader dropped unclosed (an error on the way) must not keep its descriptor.
        self.close()


def _is_special(info: os.stat_result) -> bool:
    """Whether a file is a FIFO, socket or device: neither content nor a collection."""
    return not (st.S_ISREG(info.st_mode) or st.S_ISDIR(info.st_mode))


def _special_file(path: str) -> Forbidden:
    """The refusal of a FIFO, socket or device: it has no content to serve."""
    return Forbidden(f"{path} is not a regular file")


def _raise(exc: OSError, path: str, parent_missing: bool = False) -> NoReturn:
    """Translate an OSError into the DavError its errno means for a WebDAV client."""
    code = exc.errno
    if code in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
        if parent_missing:
            raise Conflict(f"the parent collection of {path} does not exist") from exc
        raise NotFound(f"{path} does not exist") from exc
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        raise Forbidden(f"permission denied on {path}") from exc
    if code in (errno.ENOSPC, errno.EDQUOT):
        raise InsufficientStorage(f"no space left to store {path}") from exc
    if code == errno.EISDIR:
        raise MethodNotAllowed(f"{path} is a collection") from exc
    if code == errno.ENOTEMPTY:
        raise Conflict(f"{path} is not empty") from exc
    if code == errno.EEXIST:
        raise MethodNotAllowed(f"{path} already exists") from exc
    if code in (errno.ENXIO, errno.ENODEV):
        # Opening a socket, or a device without its driver: as any special file, refused.
        raise _special_file(path) from exc
    if code == errno.ENAMETOOLONG:
        raise DavError(f"the name {path} is too long", status=414) from exc
    raise exc
