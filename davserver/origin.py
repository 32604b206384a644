"""The public face of the server: the scheme, host and path prefix clients see.

Behind a reverse proxy the server's own address is not what clients use, yet WebDAV carries
URLs inside messages (Destination, every href, tagged If lists). Every URL the server reads or
writes is therefore built from one `Origin`, resolved per request as pure functions of the
configuration (`Site`) and the WSGI environ:

- `public_url` set: it is the origin, and forwarded headers cannot change it (a trusted
  proxy's `for=` / X-Forwarded-For still names the client for the log);
- otherwise, from a peer listed in `trusted_proxies`: RFC 7239 `Forwarded` or the
  `X-Forwarded-Proto/-Host/-Port/-Prefix` headers;
- otherwise the request's own scheme and Host.

The prefix is where the share appears in the public URL space. In `strip` mode the proxy
removes it before passing a request on; in `keep` mode requests still carry it.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, unquote, urlsplit

DEFAULT_PORTS = {"http": "80", "https": "443"}

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Site:
    """How the server is reached, from the configuration."""

    public_scheme: str = ""
    public_host: str = ""
    prefix: str = ""
    mode: Literal["strip", "keep"] = "strip"
    trusted: tuple[Network, ...] = ()

    @classmethod
    def create(
        cls, public_url: str, prefix: str, mode: str, trusted_proxies: Iterable[str]
    ) -> Site:
        """Raises ValueError with a reason for a bad URL, prefix or address."""
        scheme = host = ""
        if public_url:
            parts = urlsplit(public_url)
            if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
                raise ValueError(f"{public_url!r} is not an http:// or https:// URL")
            if parts.query or parts.fragment:
                raise ValueError(f"{public_url!r} may not have a query or fragment")
            scheme = parts.scheme
            host = normalize_host(parts.netloc, scheme)
            if not prefix:
                prefix = unquote(parts.path)
        networks = tuple(ipaddress.ip_network(a.strip(), strict=False) for a in trusted_proxies)
        if mode not in ("strip", "keep"):
            raise ValueError(f"prefix mode {mode!r} is neither strip nor keep")
        return cls(scheme, host, encode_prefix(prefix), mode, networks)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Origin:
    """One request's public origin: scheme, host[:port] (default port left out), the encoded
    path prefix (`""` or `/dav`), and the client's address for the log."""

    scheme: str
    host: str
    prefix: str
    client: str


def encode_prefix(prefix: str) -> str:
    """A plain prefix (`/dav/`, `dav`, `/my files`) as an encoded path without trailing slash."""
    segments = [s for s in prefix.split("/") if s]
    if any(s in (".", "..") for s in segments):
        raise ValueError(f"the prefix {prefix!r} may not contain . or ..")
    return "".join("/" + quote(s, safe="-._~!$()*,=:@") for s in segments)


def normalize_host(netloc: str, scheme: str) -> str:
    """`Host:Port` lower-cased, without user info and without the scheme's default port."""
    netloc = netloc.rpartition("@")[2].strip().lower()
    if netloc.startswith("["):
        host, _, rest = netloc.partition("]")
        host += "]"
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = netloc.partition(":")
    if port and port != DEFAULT_PORTS.get(scheme.lower()):
        return f"{host}:{port}"
    return host


def parse_forwarded(value: str) -> list[dict[str, str]]:
    """RFC 7239 4: `for=a;proto=https, for="[::1]:80"` -> one dict per hop, keys lower-cased."""
    elements: list[dict[str, str]] = []
    for element in _split_outside_quotes(value, ","):
        pairs: dict[str, str] = {}
        for pair in _split_outside_quotes(element, ";"):
            key, sep, raw = pair.partition("=")
            if not sep:
                continue
            raw = raw.strip()
            if len(raw) >= 2 and raw[0] == raw[-1] == '"':
                raw = raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            pairs[key.strip().lower()] = raw
        if pairs:
            elements.append(pairs)
    return elements


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True  # a quoted-pair: the next character is literal, even a quote
        elif char == '"':
            quoted = not quoted
        if char == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def _address(node: str) -> str:
    """The IP of a `for=` node (`"[2001:db8::1]:4711"`, `192.0.2.1:80`), as written."""
    node = node.strip()
    if node.startswith("["):
        return node[1:].partition("]")[0]
    if node.count(":") == 1:
        return node.partition(":")[0]
    return node


def _trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def _client(chain: list[str], peer: str, trusted: tuple[Network, ...]) -> str:
    """The nearest address that is not one of our proxies, walking back from the peer."""
    for address in reversed([*chain, peer]):
        if not _trusted(address, trusted):
            return address
    return chain[0] if chain else peer


def _direct(scheme: str, netloc: str, prefix: str, peer: str) -> Origin:
    """The origin of a request that no trusted proxy forwarded: what the client asked for."""
    host = normalize_host(netloc, scheme)
    return Origin(scheme if scheme in DEFAULT_PORTS else "http", host, prefix, peer)


# The Host header is the client's to choose, up to nearly 64 KiB: only hosts a name can have
# (253 characters for DNS, RFC 1035 2.3.4, with user info and port beside) are remembered.
_REMEMBERED_HOST = 300
_remembered_direct = functools.lru_cache(maxsize=256)(_direct)


def resolve(site: Site, environ: Mapping[str, Any]) -> Origin:
    """The public origin of one request."""
    peer = str(environ.get("REMOTE_ADDR", ""))
    scheme = str(environ.get("wsgi.url_scheme", "http")).lower()
    netloc = str(environ.get("HTTP_HOST") or _server_host(environ))
    if not site.trusted and not site.public_host:
        if len(netloc) <= _REMEMBERED_HOST:
            return _remembered_direct(scheme, netloc, site.prefix, peer)
        return _direct(scheme, netloc, site.prefix, peer)
    host = normalize_host(netloc, scheme)
    prefix = site.prefix
    client = peer
    trusted = bool(site.trusted) and _trusted(peer, site.trusted)
    if site.public_host:
        # The URL is fixed; a trusted proxy still says who the client is, for the log.
        client = _forwarded_client(environ, peer, site) if trusted else peer
        return Origin(site.public_scheme, site.public_host, prefix, client)
    if trusted:
        forwarded = environ.get("HTTP_FORWARDED")
        if forwarded:
            hop = _edge_hop(parse_forwarded(str(forwarded)), site.trusted)
            scheme = hop.get("proto", scheme).lower()
            host = normalize_host(hop.get("host", host), scheme)
            client = _forwarded_client(environ, peer, site)
        else:
            # Chained proxies append: the first value is what the client-facing one saw. (A
            # client can only ever misname the server to itself this way.)
            scheme = _first(environ.get("HTTP_X_FORWARDED_PROTO"), scheme).lower()
            fwd_host = _first(environ.get("HTTP_X_FORWARDED_HOST"), "")
            port = _first(environ.get("HTTP_X_FORWARDED_PORT"), "")
            if fwd_host:
                host = fwd_host
            if port:
                host = host.rpartition(":")[0] if _has_port(host) else host
                host = f"{host}:{port}"
            host = normalize_host(host, scheme)
            client = _forwarded_client(environ, peer, site)
        forwarded_prefix = environ.get("HTTP_X_FORWARDED_PREFIX")
        if forwarded_prefix and not site.prefix:
            try:
                prefix = encode_prefix(unquote(_first(forwarded_prefix, "")))
            except ValueError:
                prefix = ""
    return Origin(scheme if scheme in DEFAULT_PORTS else "http", host, prefix, client)


def _forwarded_client(environ: Mapping[str, Any], peer: str, site: Site) -> str:
    """The client a trusted proxy names: from Forwarded `for=`, else X-Forwarded-For."""
    forwarded = environ.get("HTTP_FORWARDED")
    if forwarded:
        hops = parse_forwarded(str(forwarded))
        chain = [_address(h["for"]) for h in hops if "for" in h]
    else:
        listed = str(environ.get("HTTP_X_FORWARDED_FOR", "")).split(",")
        chain = [a.strip() for a in listed if a.strip()]
    return _client(chain, peer, site.trusted)


def _edge_hop(hops: list[dict[str, str]], trusted: tuple[Network, ...]) -> dict[str, str]:
    """The Forwarded element our outermost trusted proxy wrote: walking back from the one our
    peer wrote, past those whose `for=` is one of our proxies. Elements further left came
    from the client (or its side) and prove nothing."""
    for hop in reversed(hops):
        if not _trusted(_address(hop.get("for", "")), trusted):
            return hop
    return hops[0] if hops else {}


def _first(value: Any, default: str) -> str:
    if not value:
        return default
    return str(value).split(",")[0].strip() or default


def _has_port(host: str) -> bool:
    return host.rfind(":") > host.rfind("]")


def _server_host(environ: Mapping[str, Any]) -> str:
    return f"{environ.get('SERVER_NAME', 'localhost')}:{environ.get('SERVER_PORT', '80')}"


def same_origin(uri_scheme: str, uri_netloc: str, origin: Origin) -> bool:
    """Whether an absolute URI's scheme and authority are this origin's."""
    scheme = uri_scheme.lower()
    return scheme == origin.scheme and normalize_host(uri_netloc, scheme) == origin.host


def foreign(origin_header: str | None, origin: Origin) -> bool:
    """Whether a request's `Origin` header (RFC 6454 7) names a site other than ours. Browsers
    send it on every cross-site request that could change something; clients that are not
    browsers send none. `null` (a sandboxed document, such as a user's HTML file served with
    `Content-Security-Policy: sandbox`) is foreign."""
    if origin_header is None:
        return False
    parts = urlsplit(origin_header.strip())
    if not parts.scheme or not parts.netloc:
        return True
    return not same_origin(parts.scheme, parts.netloc, origin)


def strip_prefix(raw_path: str, prefix: str) -> str | None:
    """`raw_path` without the encoded `prefix`, or None when it lies outside it.

    Segments are compared decoded: a client may encode `~` or a space differently from us.
    """
    if not prefix:
        return raw_path
    wanted = [unquote(s) for s in prefix.split("/")[1:]]
    parts = raw_path.split("/")[1:]
    if [unquote(p) for p in parts[: len(wanted)]] != wanted:
        return None
    return "/" + "/".join(parts[len(wanted) :])
