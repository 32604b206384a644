"""What sync clients ask for beyond RFC 4918: modification times and checksums.

ownCloud's protocol, which rclone (`--webdav-vendor owncloud`/`nextcloud`), Cyberduck and the
ownCloud/Nextcloud clients speak, sends `X-OC-Mtime: <unix seconds>` with PUT, COPY and MOVE to
keep a file's date, sets it with a PROPPATCH of `{DAV:}lastmodified`, and sends
`OC-Checksum: SHA1:<hex>` with a PUT. Windows Explorer sets `Win32LastModifiedTime`. The pieces
here are pure; the methods call them.

Checksums are checked against the body as it is written (a mismatch is a 400 and the old file
stays), then kept as the dead property `{http://owncloud.org/ns}checksums`, so they travel with
COPY and MOVE like any property; a PUT without a checksum drops the stale value.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .errors import BadRequest
from .headers import parse_http_date
from .xmlin import text_of

OC_NS = "http://owncloud.org/ns"
CHECKSUMS = "{" + OC_NS + "}checksums"
MS_NS = "urn:schemas-microsoft-com:"
WIN32_MTIME = "{" + MS_NS + "}Win32LastModifiedTime"
DAV_LASTMODIFIED = "{DAV:}lastmodified"

_ALGORITHMS = {"SHA1": "sha1", "MD5": "md5", "SHA256": "sha256"}
# Reported for every checked upload, in this order (rclone reads SHA1 and MD5).
_REPORTED = ("SHA1", "MD5")


def parse_mtime(value: str) -> float:
    """Unix seconds (`1700000000` or `1700000000.5`); 400 for anything else."""
    try:
        seconds = float(value.strip())
    except ValueError:
        raise BadRequest(f"X-OC-Mtime {value!r} is not a number of seconds") from None
    if not 0 <= seconds < 2**37:
        raise BadRequest(f"X-OC-Mtime {value!r} is out of range")
    return seconds


def property_mtime(name: str, value_xml: str) -> float | None:
    """The modification time a PROPPATCH value asks for, for the properties that set it:
    `{DAV:}lastmodified` (unix seconds) and `Win32LastModifiedTime` (an HTTP date);
    None for other properties. Raises BadRequest for a value that is not a time."""
    if name == DAV_LASTMODIFIED:
        return parse_mtime(text_of(value_xml))
    if name == WIN32_MTIME:
        parsed = parse_http_date(text_of(value_xml))
        if parsed is None:
            raise BadRequest("Win32LastModifiedTime is not an HTTP date")
        return parsed
    return None


def stored_only_as_effect(name: str) -> bool:
    """`{DAV:}lastmodified` is an instruction, not a property: it is applied, not kept."""
    return name == DAV_LASTMODIFIED


@dataclass(slots=True)
class ChecksumCheck:
    """Hashes an upload as it streams past and compares with the `OC-Checksum` header."""

    algorithm: str
    expected: str
    _hashes: dict[str, hashlib._Hash] = field(default_factory=dict)

    @classmethod
    def from_header(cls, value: str | None) -> ChecksumCheck | None:
        """None without a header or for an algorithm we do not know (then nothing is kept)."""
        if not value:
            return None
        algorithm, _, digest = value.strip().partition(":")
        algorithm = algorithm.strip().upper()
        if algorithm not in _ALGORITHMS or not digest.strip():
            return None
        check = cls(algorithm, digest.strip().lower())
        for name in {*_REPORTED, algorithm}:
            check._hashes[name] = hashlib.new(_ALGORITHMS[name])
        return check

    def stream(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """The chunks, unchanged; raises BadRequest at the end on a mismatch, which makes the
        provider discard the upload."""
        hashes = list(self._hashes.values())
        for chunk in chunks:
            for h in hashes:
                h.update(chunk)
            yield chunk
        actual = self._hashes[self.algorithm].hexdigest()
        if actual != self.expected:
            raise BadRequest(
                f"OC-Checksum mismatch: the body's {self.algorithm} is {actual}, "
                f"the header says {self.expected}; nothing was stored"
            )

    def property_xml(self) -> str:
        """The `oc:checksums` property as ownCloud writes it: `SHA1:<hex> MD5:<hex>`."""
        names = [*_REPORTED, *(n for n in self._hashes if n not in _REPORTED)]
        value = " ".join(f"{n}:{self._hashes[n].hexdigest()}" for n in names)
        return f'<oc:checksums xmlns:oc="{OC_NS}"><oc:checksum>{value}</oc:checksum></oc:checksums>'
