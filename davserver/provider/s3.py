"""The S3 provider: a bucket (or a prefix in one) of any S3-compatible store as the shared tree.

Mapping: the file `/a/b.txt` is the object `<prefix>a/b.txt`; the collection `/a` is the
prefix `<prefix>a/`, marked by an empty object of that name so that an empty collection
exists. A prefix without a marker (objects written by other S3 tools) is a collection too.

Atomicity comes from the store: a PUT or a completed multipart upload replaces an object whole,
and an unfinished multipart upload is invisible, so a cut-off upload leaves the old object.
There are no in-place writes (no RangeWriter: a Content-Range PUT is refused with 501) and no
renames (`move` declines, and davserver.tree copies and deletes member by member); a resource
an overwriting COPY or MOVE replaces is set aside as a server-side copy under a reserved name
(`set_aside`), so a failure or a crash puts it back.

The client is boto3 (see bench/RESULTS.md, "S3 client"); credentials come from the standard
AWS variables and files, through boto3's own chain, and are never logged.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NoReturn, TypeVar

from .. import failpoints, owners, paths, syncmeta
from ..errors import (
    BadRequest,
    Conflict,
    DavError,
    Forbidden,
    InsufficientStorage,
    MethodNotAllowed,
    NotFound,
)
from ..model import Resource
from .base import ReadStream
from .fs import ASIDE_PREFIX, TEMP_PREFIX, reserved

log = logging.getLogger(__name__)

SCHEME = "s3://"
# Bodies up to this size are sent in one PUT; larger ones in parts of this size (S3 wants
# parts of at least 5 MiB), so an upload holds one part in memory whatever its size.
PART_SIZE = 8 * 1024 * 1024
# CopyObject copies at most 5 GiB; larger objects are copied part by part, server-side.
COPY_LIMIT = 5 * 1024**3
COPY_PART = 512 * 1024 * 1024
# The modification time a client asked for (X-OC-Mtime), as user metadata (x-amz-meta-mtime,
# the name rclone uses too).
MTIME_KEY = "mtime"
# S3 keys are at most 1,024 bytes; a collection's marker adds a "/".
MAX_KEY_BYTES = 1024
# Each multipart upload in progress is noted by an empty object under this folder at the root,
# named after the process writing it, so that a start can abort those of dead processes at once.
# Like every name starting with TEMP_PREFIX, it is the server's own: never listed, never served.
UPLOADS_FOLDER = TEMP_PREFIX + "uploads"
# Requests in flight at once for one request: HEADs while listing (the listing lacks user
# metadata), copies and deletes while a replaced resource is set aside.
POOL_WORKERS = 8
RETRY_AFTER_SECONDS = "5"
# Multipart uploads older than this, under the root, are a crashed server's (see
# sweep_temp_files).
STALE_UPLOAD_SECONDS = 86400.0
# The lifecycle rule that aborts a root's unfinished uploads: this, and a hash of the prefix.
LIFECYCLE_RULE_PREFIX = "davserver-abort-uploads-"
# The object that says a resource set aside was copied whole (see set_aside).
KEPT = "kept"
# Objects copied or deleted per round of POOL_WORKERS requests while setting aside.
EACH_BATCH = 256
# Keys per ListObjectsV2 page while setting aside (the most S3 gives).
LIST_PAGE = 1000

T = TypeVar("T")

_MISSING = frozenset(
    {"404", "NoSuchKey", "NotFound", "NoSuchUpload", "NoSuchLifecycleConfiguration"}
)
_DENIED = frozenset({"403", "AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId"})
_FULL = frozenset({"EntityTooLarge", "QuotaExceeded", "StorageFull", "XMinioStorageFull"})


def is_s3_root(root: str) -> bool:
    """Whether a configured root names a bucket rather than a folder."""
    return root.startswith(SCHEME)


def parse_root(root: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` -> `("bucket", "some/prefix/")` (the prefix "" or ending
    in "/"); raises ValueError for a root without a bucket."""
    bucket, _, prefix = root[len(SCHEME) :].partition("/")
    if not bucket:
        raise ValueError("expected s3://bucket or s3://bucket/prefix")
    prefix = "/".join(part for part in prefix.split("/") if part)
    return bucket, prefix + "/" if prefix else ""


class Unavailable(DavError):
    """The store cannot be reached or answers with its own failure: try again later."""

    status = 503


class S3Provider:
    """Shares the bucket and prefix of `root` (`s3://bucket/prefix`)."""

    local_lookups = False

    def __init__(self, root: str, endpoint: str = "", region: str = "") -> None:
        import boto3
        from botocore.config import Config as BotoConfig

        self.bucket, self.prefix = parse_root(root)
        options: dict[str, Any] = {
            # Checksums on every request cost several times a small PUT (bench/RESULTS.md);
            # TCP already guards the bytes and ETags name the content.
            "request_checksum_calculation": "when_required",
            "response_checksum_validation": "when_required",
            "retries": {"max_attempts": 3, "mode": "standard"},
            "max_pool_connections": 64,
        }
        if endpoint:
            # Self-hosted stores (MinIO, SeaweedFS, Ceph) serve buckets as paths.
            options["s3"] = {"addressing_style": "path"}
        self.client: Any = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint or None,
            region_name=region or None,
            config=BotoConfig(**options),
        )
        self._pool = ThreadPoolExecutor(POOL_WORKERS, thread_name_prefix="s3")
        self.owner = owners.new_owner()

    # -- mapping ---------------------------------------------------------------------------

    def key(self, path: str) -> str:
        """The object key of the file at `path`; 414 past the longest key S3 takes, 403 for
        the server's own names."""
        segments = paths.split(path)
        if any(reserved(segment) for segment in segments):
            raise Forbidden(f"names starting with {TEMP_PREFIX} are reserved")
        key = self.prefix + "/".join(segments)
        if len(key.encode("utf-8", "surrogateescape")) >= MAX_KEY_BYTES:
            raise DavError(f"the name {path} is too long", status=414)
        return key

    def folder(self, path: str) -> str:
        """The key prefix of the collection at `path` (its marker's key)."""
        return self.prefix if path == paths.ROOT else self.key(path) + "/"

    # -- reading ---------------------------------------------------------------------------

    def stat(self, path: str) -> Resource:
        if path == paths.ROOT:
            return Resource(path, True, 0, 0.0, 0.0, "root")
        head = self._head(self.key(path), path)
        if head is not None:
            return _file(path, head)
        return self._collection(path)

    def _collection(self, path: str) -> Resource:
        """The collection at `path` (not the root): its marker, or objects under it."""
        marker = self.folder(path)
        head = self._head(marker, path)
        if head is not None:
            modified = head["LastModified"].timestamp()
            mtime = _mtime(head.get("Metadata"), modified)
            return Resource(path, True, 0, mtime, modified, _etag(head["ETag"]))
        with _mapped(path):
            listed = self.client.list_objects_v2(Bucket=self.bucket, Prefix=marker, MaxKeys=1)
        if listed.get("KeyCount", 0) == 0:
            raise NotFound(f"{path} does not exist")
        return Resource(path, True, 0, 0.0, 0.0, "prefix")

    def _head(self, key: str, path: str) -> dict[str, Any] | None:
        """HeadObject, or None when there is no such object."""
        try:
            with _mapped(path):
                return dict(self.client.head_object(Bucket=self.bucket, Key=key))
        except NotFound:
            return None

    def _is_collection(self, path: str) -> bool:
        try:
            return self.stat(path).is_collection
        except NotFound:
            return False

    def children(self, path: str) -> Iterator[Resource]:
        if not self.stat(path).is_collection:
            raise NotFound(f"{path} is not a collection")
        return self._members(path)

    def _members(self, path: str) -> Iterator[Resource]:
        folder = self.folder(path)
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=folder, Delimiter="/"
        )
        with _mapped(path):
            for page in pages:
                files: list[str] = []
                for item in page.get("Contents", ()):
                    name = item["Key"][len(folder) :]
                    if _addressable(name):
                        files.append(name)
                # The listing lacks user metadata (the mtime a client set): one HEAD per file,
                # a few at once. A member that vanished meanwhile is left out.
                for member in self._pool.map(self._member_file, [path] * len(files), files):
                    if member is not None:
                        yield member
                for common in page.get("CommonPrefixes", ()):
                    name = common["Prefix"][len(folder) : -1]
                    if _addressable(name) and name not in files:
                        yield self._collection_member(paths.child(path, name))

    def _member_file(self, parent: str, name: str) -> Resource | None:
        child = paths.child(parent, name)
        head = self._head(self.key(child), child)
        return None if head is None else _file(child, head)

    def _collection_member(self, path: str) -> Resource:
        try:
            return self._collection(path)
        except NotFound:
            # Its objects went while listing: report it as the listing saw it.
            return Resource(path, True, 0, 0.0, 0.0, "prefix")

    def count(self, path: str, limit: int) -> int:
        """Resources under `path` (itself included) from a flat listing, stopping past
        `limit`; collections without a marker are counted once each."""
        folder = self.folder(path)
        seen: set[str] = set()
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=folder
        )
        with _mapped(path):
            for page in pages:
                for item in page.get("Contents", ()):
                    rest = item["Key"][len(folder) :].rstrip("/")
                    parts = rest.split("/") if rest else []
                    if parts and reserved(parts[0]):
                        continue
                    for depth in range(1, len(parts) + 1):
                        seen.add("/".join(parts[:depth]))
                    if len(seen) + 1 > limit:
                        return len(seen) + 1
        return len(seen) + 1

    def open_read(self, path: str) -> tuple[Resource, ReadStream]:
        resource = self.stat(path)
        if resource.is_collection:
            raise MethodNotAllowed(f"{path} is a collection")
        reader = RangedReader(self, path, resource)
        return resource, io.BufferedReader(reader, buffer_size=256 * 1024)

    def quota(self, path: str) -> tuple[int, int] | None:
        return None  # an object store has no fixed size to report

    # -- writing ---------------------------------------------------------------------------

    def write(self, path: str, chunks: Iterable[bytes], *, create: bool = False) -> Resource:
        staged = self.stage(path, chunks)
        try:
            return staged.commit(create=create)
        finally:
            staged.discard()

    def stage(self, path: str, chunks: Iterable[bytes]) -> StagedObject:
        self._check_writable(path)
        staged = StagedObject(self, path)
        try:
            staged.fill(chunks)
        except BaseException:
            staged.discard()
            raise
        return staged

    def _check_writable(self, path: str) -> None:
        """A file may be written at `path`: its parent is a collection, and it is not one."""
        if path == paths.ROOT:
            raise MethodNotAllowed("the root is a collection")
        if not self._is_collection(paths.parent(path)):
            raise Conflict(f"the parent collection of {path} does not exist")
        with contextlib.suppress(NotFound):
            if self._collection(path).is_collection:
                raise MethodNotAllowed(f"{path} is a collection")

    def make_collection(self, path: str) -> None:
        if path == paths.ROOT:
            raise MethodNotAllowed("the root exists")
        with contextlib.suppress(NotFound):
            self.stat(path)
            raise MethodNotAllowed(f"{path} already exists")
        if not self._is_collection(paths.parent(path)):
            raise Conflict(f"the parent collection of {path} does not exist")
        self._put(path, self.folder(path), b"", create=True)

    def _put(
        self, path: str, key: str, body: bytes, *, create: bool = False, mtime: float | None = None
    ) -> None:
        extra: dict[str, Any] = {}
        if create:
            extra["IfNoneMatch"] = "*"
        if mtime is not None:
            extra["Metadata"] = {MTIME_KEY: repr(mtime)}
        with _mapped(path, created=create):
            self.client.put_object(Bucket=self.bucket, Key=key, Body=body, **extra)

    def delete(self, path: str) -> None:
        if path == paths.ROOT:
            raise Forbidden("the shared root cannot be deleted")
        resource = self.stat(path)
        if not resource.is_collection:
            with _mapped(path):
                self.client.delete_object(Bucket=self.bucket, Key=self.key(path))
            return
        marker = self.folder(path)
        with _mapped(path):
            listed = self.client.list_objects_v2(Bucket=self.bucket, Prefix=marker, MaxKeys=2)
        if any(item["Key"] != marker for item in listed.get("Contents", ())):
            raise Conflict(f"{path} is not empty")
        with _mapped(path):
            self.client.delete_object(Bucket=self.bucket, Key=marker)

    def copy(self, src: str, dst: str) -> None:
        source = self.stat(src)
        if source.is_collection:
            self.make_collection(dst)
            return
        if not self._is_collection(paths.parent(dst)):
            raise Conflict(f"the parent collection of {dst} does not exist")
        self._copy_key(self.key(src), self.key(dst), source.size, src)

    def _copy_key(
        self, source: str, target: str, size: int, path: str, head: dict[str, Any] | None = None
    ) -> None:
        """A server-side copy of one object, its user metadata and content type with it; with
        `head` (the source's HeadObject), those are written as given there."""
        if head is None and not 0 < size <= COPY_LIMIT:
            # Only CopyObject carries the metadata along by itself.
            head = self._head(source, path)
            if head is None:
                raise NotFound(f"{path} does not exist")
        extra: dict[str, Any] = {}
        if head is not None:
            extra = {"Metadata": head.get("Metadata") or {}}
            if head.get("ContentType"):
                extra["ContentType"] = head["ContentType"]
        origin = {"Bucket": self.bucket, "Key": source}
        with _mapped(path):
            if size == 0:
                # An empty object is written anew: as cheap, and SeaweedFS cannot CopyObject
                # a collection's marker ("name/").
                self.client.put_object(Bucket=self.bucket, Key=target, Body=b"", **extra)
            elif size <= COPY_LIMIT:
                directive = "COPY" if head is None else "REPLACE"
                self.client.copy_object(
                    Bucket=self.bucket,
                    Key=target,
                    CopySource=origin,
                    MetadataDirective=directive,
                    **extra,
                )
            else:
                self._copy_parts(origin, target, size, path, extra)

    def _copy_parts(
        self, origin: dict[str, str], key: str, size: int, dst: str, extra: dict[str, Any]
    ) -> None:
        """A server-side copy past CopyObject's 5 GiB: UploadPartCopy, range by range."""
        started = self.client.create_multipart_upload(Bucket=self.bucket, Key=key, **extra)
        upload = started["UploadId"]
        try:
            parts = []
            for number, first in enumerate(range(0, size, COPY_PART), 1):
                last = min(first + COPY_PART, size) - 1
                done = self.client.upload_part_copy(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload,
                    PartNumber=number,
                    CopySource=origin,
                    CopySourceRange=f"bytes={first}-{last}",
                )
                parts.append({"PartNumber": number, "ETag": done["CopyPartResult"]["ETag"]})
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            self._abort(key, upload, dst)
            raise

    def _abort(self, key: str, upload: str, path: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload)
        except Exception as exc:  # the upload stays until the bucket's lifecycle rule ends it
            log.warning("could not abort the upload of %s: %s", path, exc)

    def move(self, src: str, dst: str) -> bool:
        return False  # no rename in S3: davserver.tree copies and deletes member by member

    def set_mtime(self, path: str, mtime: float) -> None:
        resource = self.stat(path)
        if path == paths.ROOT:
            return  # the bucket has no date of its own to set
        if resource.is_collection:
            # A new marker (empty, so rewriting it is cheap) holds the date; a prefix without
            # one gets one.
            self._put(path, self.folder(path), b"", mtime=mtime)
            return
        key = self.key(path)
        with _mapped(path):
            self.client.copy_object(
                Bucket=self.bucket,
                Key=key,
                CopySource={"Bucket": self.bucket, "Key": key},
                Metadata={MTIME_KEY: repr(mtime)},
                MetadataDirective="REPLACE",
            )

    # -- keeping a replaced resource aside (AsideKeeper) ------------------------------------
    #
    # S3 has no rename, so setting a resource aside takes several steps: each of its objects
    # is copied, server-side, under ASIDE_PREFIX<key>/ at the root (a name no client can
    # use); then the object KEPT there says the copy is whole; only then do the originals go.
    # `has_aside` holds only while KEPT exists, and `restore` and `discard` delete it before
    # anything else, so whatever instant a crash picks, recovery (davserver.transfers) finds
    # either the resource whole in place, perhaps beside a partial copy that `discard` drops,
    # or a whole copy, perhaps beside a part of the original that it deletes before
    # `restore`.

    def _aside_area(self, key: str) -> str:
        return f"{self.prefix}{ASIDE_PREFIX}{key}/"

    def set_aside(self, path: str, key: str) -> None:
        """Take the resource at `path` (and all under it) out of the tree, keeping a whole
        copy of it until `restore` or `discard`. Raises NotFound, Forbidden."""
        if path == paths.ROOT:
            raise Forbidden("the shared root cannot be replaced")
        self.stat(path)
        base, area = self.key(path), self._aside_area(key)

        def keep(found: tuple[str, int]) -> None:
            head = self._head(found[0], path)
            if head is None:
                return  # gone meanwhile (another S3 tool): nothing to keep
            metadata = dict(head.get("Metadata") or {})
            # The copy is written now: the date the resource had goes with it, so that one
            # put back has the date it had (sync clients compare dates).
            metadata.setdefault(MTIME_KEY, repr(head["LastModified"].timestamp()))
            kept = {**head, "Metadata": metadata}
            self._copy_key(found[0], area + "o" + found[0][len(base) :], found[1], path, kept)
            failpoints.hit("s3.aside-copied")

        try:
            self._each(self._objects_of(path), keep)
            self._put(path, area + KEPT, b"")
        except DavError:
            with contextlib.suppress(DavError):
                self.discard(path, key)
            raise
        failpoints.hit("s3.aside-kept")
        try:
            # Only what was copied goes: the copy's own listing names it.
            copied = (base + found[len(area) + 1 :] for found, _ in self._listed(area + "o", path))
            self._delete_keys(copied, path, "s3.aside-deleted")
        except DavError:
            with contextlib.suppress(DavError):
                self.restore(path, key)
            raise

    def has_aside(self, path: str, key: str) -> bool:
        return self._head(self._aside_area(key) + KEPT, path) is not None

    def restore(self, path: str, key: str) -> None:
        """Put back what `set_aside` kept, at `path` (over any part of it still there)."""
        base, area = self.key(path), self._aside_area(key)

        def put_back(found: tuple[str, int]) -> None:
            self._copy_key(found[0], base + found[0][len(area) + 1 :], found[1], path)
            failpoints.hit("s3.restored")

        self._each(self._listed(area + "o", path), put_back)
        self.discard(path, key)

    def discard(self, path: str, key: str) -> None:
        """Remove for good what `set_aside` kept, or the part a crash left of its copy."""
        area = self._aside_area(key)
        # First: a copy partly removed must never pass for a whole one.
        self._delete_key(area + KEPT, path)
        self._delete_keys((found for found, _ in self._listed(area, path)), path, "s3.discarded")

    def _objects_of(self, path: str) -> Iterator[tuple[str, int]]:
        """(key, size) of each object the resource at `path` is made of: its own object (a
        file) and everything under its prefix (a collection's marker and members)."""
        base = self.key(path)
        head = self._head(base, path)
        if head is not None:
            yield base, int(head["ContentLength"])
        yield from self._listed(base + "/", path)

    def _listed(self, prefix: str, path: str) -> Iterator[tuple[str, int]]:
        """(key, size) of every object whose key starts with `prefix`, page by page."""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix, PaginationConfig={"PageSize": LIST_PAGE}
        )
        with _mapped(path):
            for page in pages:
                for item in page.get("Contents", ()):
                    yield item["Key"], int(item["Size"])

    def _delete_key(self, key: str, path: str) -> None:
        with _mapped(path):
            self.client.delete_object(Bucket=self.bucket, Key=key)

    def _delete_keys(self, keys: Iterable[str], path: str, point: str) -> None:
        """Delete every object of `keys`: files a few at once, then collections' markers,
        the deepest first. SeaweedFS keeps a folder whose marker went before its members as
        one no listing shows but HEAD still finds (a collection that would not go away), so
        the markers (as many as there are collections) wait for the files."""
        markers: list[str] = []

        def files() -> Iterator[str]:
            for key in keys:
                if key.endswith("/"):
                    markers.append(key)
                else:
                    yield key

        def drop(key: str) -> None:
            self._delete_key(key, path)
            failpoints.hit(point)

        self._each(files(), drop)
        # A key under a marker sorts after it: in reverse order, members come first.
        for key in sorted(markers, reverse=True):
            drop(key)

    def _each(self, found: Iterable[T], action: Callable[[T], None]) -> None:
        """`action` on every item, POOL_WORKERS at once, reading `found` a batch at a time
        (memory stays flat whatever the tree holds); the first failure is raised."""
        items = iter(found)
        while batch := list(itertools.islice(items, EACH_BATCH)):
            for _done in self._pool.map(action, batch):
                pass

    def note_upload(self, key: str, upload: str) -> str:
        """Record that this process is writing the multipart upload `upload` of `key`;
        returns the note's key, for `forget_upload`."""
        note = f"{self.prefix}{UPLOADS_FOLDER}/{owners.file_tag(self.owner)}/{upload}"
        with _mapped(paths.ROOT):
            self.client.put_object(Bucket=self.bucket, Key=note, Body=key.encode())
        return note

    def forget_upload(self, note: str) -> None:
        try:
            with _mapped(paths.ROOT):
                self.client.delete_object(Bucket=self.bucket, Key=note)
        except DavError as exc:  # a stale note only costs the next start a lookup
            log.warning("could not remove the note of an upload: %s", exc)

    def sweep_temp_files(self, older_than: float = STALE_UPLOAD_SECONDS) -> int:
        """Abort what crashes left: the multipart uploads noted by processes that are gone
        (they are invisible, but the store keeps and bills their parts), and any upload
        under the root begun more than `older_than` seconds ago (a live server completes or
        aborts its own within a request). Returns how many; a store that cannot be reached
        is logged, not raised (this runs in the background)."""
        aborted = 0
        try:
            self.keep_lifecycle_rule()
        except DavError as exc:  # a store without lifecycle rules, or a key not allowed to
            log.warning("could not set the rule that ends unfinished uploads: %s", exc)
        try:
            aborted += self._abort_dead_owners()
            aborted += self._abort_older_than(time.time() - older_than)
        except DavError as exc:
            log.warning("could not look for unfinished uploads: %s", exc)
        return aborted

    def keep_lifecycle_rule(self) -> None:
        """Have the store itself abort multipart uploads under the root a day after they
        began (a rule of the bucket's lifecycle), so that none outlives a crash even when no
        server starts again. The bucket's other rules are kept; the rule is added once."""
        rule_id = LIFECYCLE_RULE_PREFIX + hashlib.sha256(self.prefix.encode()).hexdigest()[:16]
        try:
            with _mapped(paths.ROOT):
                got = self.client.get_bucket_lifecycle_configuration(Bucket=self.bucket)
            rules = list(got.get("Rules", ()))
        except NotFound:  # NoSuchLifecycleConfiguration: the bucket has no rule yet
            rules = []
        if any(rule.get("ID") == rule_id for rule in rules):
            return
        rules.append(
            {
                "ID": rule_id,
                "Filter": {"Prefix": self.prefix},
                "Status": "Enabled",
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
            }
        )
        with _mapped(paths.ROOT):
            self.client.put_bucket_lifecycle_configuration(
                Bucket=self.bucket, LifecycleConfiguration={"Rules": rules}
            )

    def _abort_dead_owners(self) -> int:
        aborted = 0
        folder = f"{self.prefix}{UPLOADS_FOLDER}/"
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=folder
        )
        with _mapped(paths.ROOT):
            for page in pages:
                for item in page.get("Contents", ()):
                    tag, _, upload = item["Key"][len(folder) :].partition("/")
                    if owners.tag_alive(tag):
                        continue
                    got = self.client.get_object(Bucket=self.bucket, Key=item["Key"])
                    key = got["Body"].read().decode()
                    self._abort(key, upload, key)
                    self.client.delete_object(Bucket=self.bucket, Key=item["Key"])
                    aborted += 1
        return aborted

    def _abort_older_than(self, limit: float) -> int:
        aborted = 0
        pages = self.client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        with _mapped(paths.ROOT):
            for page in pages:
                for upload in page.get("Uploads", ()):
                    if upload["Initiated"].timestamp() < limit:
                        self._abort(upload["Key"], upload["UploadId"], upload["Key"])
                        aborted += 1
        return aborted

    def close(self) -> None:
        """Stop the listing helpers; uploads noted after this are a dead process's."""
        self._pool.shutdown(wait=False)
        owners.retire(self.owner)


class StagedObject:
    """New content for one object: held in memory up to PART_SIZE, past it sent as the parts
    of a multipart upload that becomes the object only when completed at the commit (an
    upload never completed is invisible, and aborted on discard)."""

    def __init__(self, provider: S3Provider, path: str) -> None:
        self.provider = provider
        self.path = path
        self.key = provider.key(path)
        self.buffer = bytearray()
        self.upload: str | None = None
        self.note: str | None = None
        self.parts: list[dict[str, Any]] = []

    def fill(self, chunks: Iterable[bytes]) -> None:
        for chunk in chunks:
            self.buffer += chunk
            while len(self.buffer) >= PART_SIZE:
                self._send_part(bytes(self.buffer[:PART_SIZE]))
                del self.buffer[:PART_SIZE]

    def _send_part(self, data: bytes) -> None:
        client = self.provider.client
        bucket = self.provider.bucket
        with _mapped(self.path):
            if self.upload is None:
                started = client.create_multipart_upload(Bucket=bucket, Key=self.key)
                self.upload = str(started["UploadId"])
                self.note = self.provider.note_upload(self.key, self.upload)
            number = len(self.parts) + 1
            sent = client.upload_part(
                Bucket=bucket, Key=self.key, UploadId=self.upload, PartNumber=number, Body=data
            )
        self.parts.append({"PartNumber": number, "ETag": sent["ETag"]})

    def commit(self, *, create: bool = False, mtime: float | None = None) -> Resource:
        provider = self.provider
        provider._check_writable(self.path)
        if self.upload is None:
            provider._put(self.path, self.key, bytes(self.buffer), create=create, mtime=mtime)
        else:
            if self.buffer:
                self._send_part(bytes(self.buffer))
                self.buffer.clear()
            extra: dict[str, Any] = {"IfNoneMatch": "*"} if create else {}
            with _mapped(self.path, created=create):
                provider.client.complete_multipart_upload(
                    Bucket=provider.bucket,
                    Key=self.key,
                    UploadId=self.upload,
                    MultipartUpload={"Parts": self.parts},
                    **extra,
                )
            self.upload = None
            self._forget()
            if mtime is not None:
                provider.set_mtime(self.path, mtime)
        return provider.stat(self.path)

    def discard(self) -> None:
        if self.upload is not None:
            self.provider._abort(self.key, self.upload, self.path)
            self.upload = None
        self._forget()
        self.buffer = bytearray()

    def _forget(self) -> None:
        if self.note is not None:
            self.provider.forget_upload(self.note)
            self.note = None


class RangedReader(io.RawIOBase):
    """A seekable stream over one version of an object: each read continues one ranged GET,
    and a seek elsewhere starts another. Every GET asks for the ETag first seen (If-Match),
    so the bytes always belong to the version described; a replaced object ends the read
    with NotFound."""

    def __init__(self, provider: S3Provider, path: str, resource: Resource) -> None:
        self.provider = provider
        self.path = path
        self.resource = resource
        self.position = 0
        self.body: Any = None
        self.body_position = -1

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            offset += self.position
        elif whence == io.SEEK_END:
            offset += self.resource.size
        self.position = max(0, offset)
        return self.position

    def readinto(self, buffer: Any) -> int:
        if self.position >= self.resource.size:
            return 0
        if self.body is None or self.body_position != self.position:
            self._open()
        with _mapped(self.path):
            data = self.body.read(len(buffer))
        if not data:
            raise NotFound("the object changed while it was being read")
        buffer[: len(data)] = data
        self.position += len(data)
        self.body_position = self.position
        return len(data)

    def _open(self) -> None:
        self._close_body()
        provider = self.provider
        try:
            with _mapped(self.path):
                got = provider.client.get_object(
                    Bucket=provider.bucket,
                    Key=provider.key(self.path),
                    Range=f"bytes={self.position}-",
                    IfMatch='"' + self.resource.etag + '"',
                )
        except DavError as exc:
            if exc.status == 412:
                raise NotFound("the object changed while it was being read") from exc
            raise
        self.body = got["Body"]
        self.body_position = self.position

    def _close_body(self) -> None:
        if self.body is not None:
            self.body.close()
            self.body = None

    def close(self) -> None:
        self._close_body()
        super().close()


def _file(path: str, head: dict[str, Any]) -> Resource:
    modified = head["LastModified"].timestamp()
    return Resource(
        path,
        False,
        int(head["ContentLength"]),
        _mtime(head.get("Metadata"), modified),
        modified,
        _etag(head["ETag"]),
    )


def _mtime(metadata: dict[str, str] | None, default: float) -> float:
    """The date a client set, held to the range a client may set (X-OC-Mtime): the metadata
    is any S3 tool's to write, and a date of `inf` or `nan` broke every listing of its
    folder. Anything else is the store's own date, `default`."""
    try:
        return syncmeta.parse_mtime((metadata or {})[MTIME_KEY])
    except (KeyError, BadRequest):
        return default


def _etag(quoted: str) -> str:
    return quoted.strip('"')


def _addressable(name: str) -> bool:
    # Keys other tools wrote may hold what no provider path can: an empty segment ("a//b"),
    # a backslash, ".." (never a member, as on a disk). The server's own names are hidden.
    return bool(name) and "\\" not in name and name not in (".", "..") and not reserved(name)


@contextlib.contextmanager
def _mapped(path: str, *, created: bool = False) -> Iterator[None]:
    """Turn the store's failures into the DavError each means for a WebDAV client."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        _raise_client_error(exc, path, created)
    except BotoCoreError as exc:
        # Unreachable, timed out, cut off: the store is away, not the request wrong.
        raise Unavailable(
            f"the storage is unavailable: {type(exc).__name__}",
            headers=[("Retry-After", RETRY_AFTER_SECONDS)],
        ) from exc


def _raise_client_error(exc: Any, path: str, created: bool) -> NoReturn:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if code in _MISSING or status == 404:
        raise NotFound(f"{path} does not exist") from exc
    if code in _DENIED or status == 403:
        raise Forbidden(f"the storage refused access to {path}") from exc
    if code in _FULL:
        raise InsufficientStorage(f"no space left to store {path}") from exc
    if code == "PreconditionFailed" or status == 412:
        if created:
            raise MethodNotAllowed(f"{path} already exists") from exc
        raise DavError(f"{path} changed meanwhile", status=412) from exc
    if status >= 500 or code in ("SlowDown", "ServiceUnavailable", "InternalError"):
        raise Unavailable(
            f"the storage is unavailable ({code or status})",
            headers=[("Retry-After", RETRY_AFTER_SECONDS)],
        ) from exc
    raise Forbidden(f"the storage refused the request for {path} ({code or status})") from exc
