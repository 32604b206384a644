"""davserver.origin (issue 10): the public scheme, host and prefix of a request, pure functions.

Covers Site.create (public_url, prefix, prefix modes, trusted proxies), encode_prefix,
normalize_host, parse_forwarded (RFC 7239), resolve (trusted and untrusted peers, Forwarded and
X-Forwarded-*, the client address for the log), same_origin, strip_prefix, and the two request
methods built on them (Request.own_path and Request.destination).
"""

from __future__ import annotations

import ipaddress
import tracemalloc
from typing import Any
from urllib.parse import quote, unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from davserver import origin as origin_module
from davserver.errors import BadGateway, BadRequest, DavError
from davserver.origin import (
    Origin,
    Site,
    encode_prefix,
    normalize_host,
    parse_forwarded,
    resolve,
    same_origin,
    strip_prefix,
)
from davserver.request import Request


def site(
    public_url: str = "",
    prefix: str = "",
    mode: str = "strip",
    trusted: tuple[str, ...] = (),
) -> Site:
    return Site.create(public_url, prefix, mode, trusted)


def environ(
    peer: str = "127.0.0.1",
    host: str | None = "backend:8080",
    scheme: str = "http",
    **headers: str,
) -> dict[str, Any]:
    """A WSGI environ; keyword arguments are headers (`X_Forwarded_Proto="https"`)."""
    env: dict[str, Any] = {
        "REMOTE_ADDR": peer,
        "wsgi.url_scheme": scheme,
        "SERVER_NAME": "backend",
        "SERVER_PORT": "8080",
        "REQUEST_METHOD": "GET",
    }
    if host is not None:
        env["HTTP_HOST"] = host
    for name, value in headers.items():
        env["HTTP_" + name.upper()] = value
    return env


PROXY = ("10.0.0.0/8", "::1")


# -- Site.create: public_url ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "scheme", "host", "prefix"),
    [
        ("https://files.example.com/dav/", "https", "files.example.com", "/dav"),
        ("https://files.example.com/dav", "https", "files.example.com", "/dav"),
        ("https://files.example.com", "https", "files.example.com", ""),
        ("https://files.example.com/", "https", "files.example.com", ""),
        ("http://files.example.com:80/", "http", "files.example.com", ""),
        ("https://files.example.com:443/x/", "https", "files.example.com", "/x"),
        ("https://files.example.com:8443/dav/", "https", "files.example.com:8443", "/dav"),
        ("http://files.example.com:8080/", "http", "files.example.com:8080", ""),
        # A default port of the other scheme is not a default port here.
        ("https://files.example.com:80/", "https", "files.example.com:80", ""),
        ("http://files.example.com:443/", "http", "files.example.com:443", ""),
        ("HTTPS://Files.EXAMPLE.com/", "https", "files.example.com", ""),
        ("http://[2001:db8::1]:8080/dav/", "http", "[2001:db8::1]:8080", "/dav"),
        ("https://[2001:DB8::1]:443/", "https", "[2001:db8::1]", ""),
        ("https://a.example/one/two/", "https", "a.example", "/one/two"),
    ],
)
def test_public_url_gives_scheme_host_and_prefix(
    url: str, scheme: str, host: str, prefix: str
) -> None:
    s = site(url)
    assert (s.public_scheme, s.public_host, s.prefix) == (scheme, host, prefix)


def test_public_url_path_is_the_prefix_only_when_none_is_given() -> None:
    assert site("https://h.example/dav/").prefix == "/dav"
    assert site("https://h.example/dav/", prefix="/files").prefix == "/files"
    assert site("https://h.example/", prefix="/files").prefix == "/files"


@pytest.mark.parametrize(
    ("url", "prefix"),
    [
        ("https://h.example/my%20files/", "/my%20files"),
        ("https://h.example/d%C3%A5v/", "/d%C3%A5v"),
        ("https://h.example/d%c3%a5v/", "/d%C3%A5v"),
        ("https://h.example/%7Euser/", "/~user"),
        ("https://h.example/a%26b/", "/a%26b"),
    ],
)
def test_public_url_prefix_is_encoded_once_in_canonical_form(url: str, prefix: str) -> None:
    assert site(url).prefix == prefix


@pytest.mark.parametrize(
    ("given", "encoded"),
    [
        ("/my files", "/my%20files"),
        ("/dåv/", "/d%C3%A5v"),
        ("/日本", "/%E6%97%A5%E6%9C%AC"),
        ("dav", "/dav"),
    ],
)
def test_configured_prefix_is_plain_text_and_gets_encoded(given: str, encoded: str) -> None:
    assert site(prefix=given).prefix == encoded
    assert site("https://h.example/other/", prefix=given).prefix == encoded


@pytest.mark.parametrize(
    "url",
    [
        "ftp://h.example/",
        "files.example.com/dav",
        "/dav/",
        "https:///dav/",
        "https://h.example/dav/?x=1",
        "https://h.example/dav/#top",
    ],
)
def test_bad_public_url_is_refused(url: str) -> None:
    with pytest.raises(ValueError):
        site(url)


def test_without_public_url_nothing_is_fixed() -> None:
    s = site()
    assert (s.public_scheme, s.public_host, s.prefix, s.mode, s.trusted) == (
        "",
        "",
        "",
        "strip",
        (),
    )


@pytest.mark.parametrize("mode", ["strip", "keep"])
def test_prefix_modes_accepted(mode: str) -> None:
    assert site(prefix="/dav", mode=mode).mode == mode


@pytest.mark.parametrize("mode", ["", "Strip", "rewrite", "keep "])
def test_unknown_prefix_mode_is_refused(mode: str) -> None:
    with pytest.raises(ValueError):
        site(prefix="/dav", mode=mode)


@pytest.mark.parametrize("prefix", ["/..", "/dav/../x", "/./dav", "..", "/a/./b"])
def test_prefix_with_dot_segments_is_refused(prefix: str) -> None:
    with pytest.raises(ValueError):
        site(prefix=prefix)


def test_trusted_proxies_become_networks() -> None:
    s = site(trusted=("127.0.0.1", "10.1.2.3/8", " 192.168.0.0/16 ", "::1", "fd00::/8"))
    assert s.trusted == (
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.168.0.0/16"),
        ipaddress.ip_network("::1/128"),
        ipaddress.ip_network("fd00::/8"),
    )


@pytest.mark.parametrize("bad", ["localhost", "10.0.0.0/33", "300.1.1.1", "", "::g"])
def test_bad_trusted_proxy_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        site(trusted=(bad,))


# -- encode_prefix ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("plain", "encoded"),
    [
        ("", ""),
        ("/", ""),
        ("///", ""),
        ("/dav", "/dav"),
        ("/dav/", "/dav"),
        ("dav", "/dav"),
        ("//a//b/", "/a/b"),
        ("/my files", "/my%20files"),
        ("/100%", "/100%25"),
        ("/a#b?c", "/a%23b%3Fc"),
        ("/~u-1_2.3", "/~u-1_2.3"),
        ("/dåv", "/d%C3%A5v"),
    ],
)
def test_encode_prefix(plain: str, encoded: str) -> None:
    assert encode_prefix(plain) == encoded


@pytest.mark.parametrize("plain", ["/.", "/..", "/a/../b", "./a"])
def test_encode_prefix_refuses_dot_segments(plain: str) -> None:
    with pytest.raises(ValueError):
        encode_prefix(plain)


# -- normalize_host --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("netloc", "scheme", "expected"),
    [
        ("example.com", "http", "example.com"),
        ("Example.COM", "https", "example.com"),
        ("example.com:80", "http", "example.com"),
        ("example.com:443", "https", "example.com"),
        ("example.com:80", "HTTP", "example.com"),
        ("example.com:443", "http", "example.com:443"),
        ("example.com:80", "https", "example.com:80"),
        ("example.com:8080", "http", "example.com:8080"),
        ("example.com:", "http", "example.com"),
        ("user:pw@example.com:80", "http", "example.com"),
        ("user@example.com:8080", "http", "example.com:8080"),
        ("[::1]", "http", "[::1]"),
        ("[::1]:80", "http", "[::1]"),
        ("[::1]:8080", "http", "[::1]:8080"),
        ("[2001:DB8::1]:443", "https", "[2001:db8::1]"),
        ("127.0.0.1:8443", "https", "127.0.0.1:8443"),
        (" example.com ", "http", "example.com"),
    ],
)
def test_normalize_host(netloc: str, scheme: str, expected: str) -> None:
    assert normalize_host(netloc, scheme) == expected


_label = st.from_regex(r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,10}[a-zA-Z0-9])?", fullmatch=True)
_hostname = st.lists(_label, min_size=1, max_size=4).map(".".join)
_ipv6 = st.ip_addresses(v=6).map(lambda a: f"[{a}]")
_port = st.one_of(st.just(""), st.integers(1, 65535).map(str))
_netloc = st.builds(lambda h, p: f"{h}:{p}" if p else h, st.one_of(_hostname, _ipv6), _port)


@given(_netloc, st.sampled_from(["http", "https"]))
def test_normalize_host_is_idempotent(netloc: str, scheme: str) -> None:
    once = normalize_host(netloc, scheme)
    assert normalize_host(once, scheme) == once
    assert once == once.lower()


@given(st.one_of(_hostname, _ipv6), st.sampled_from(["http", "https"]))
def test_normalize_host_default_port_is_the_same_as_none(host: str, scheme: str) -> None:
    default = {"http": "80", "https": "443"}[scheme]
    assert normalize_host(f"{host}:{default}", scheme) == normalize_host(host, scheme)


# -- parse_forwarded (RFC 7239 4) ------------------------------------------------------------


def test_forwarded_one_hop() -> None:
    assert parse_forwarded("for=192.0.2.60;proto=https;by=203.0.113.43;host=example.com") == [
        {"for": "192.0.2.60", "proto": "https", "by": "203.0.113.43", "host": "example.com"}
    ]


def test_forwarded_several_hops_in_order() -> None:
    assert parse_forwarded("for=192.0.2.43, for=198.51.100.17;proto=http, for=unknown") == [
        {"for": "192.0.2.43"},
        {"for": "198.51.100.17", "proto": "http"},
        {"for": "unknown"},
    ]


def test_forwarded_quoted_ipv6_with_port() -> None:
    assert parse_forwarded('For="[2001:db8:cafe::17]:4711"') == [
        {"for": "[2001:db8:cafe::17]:4711"}
    ]


def test_forwarded_keys_are_case_insensitive_values_kept() -> None:
    assert parse_forwarded("FOR=192.0.2.1;Proto=HTTPS;HOST=Example.com") == [
        {"for": "192.0.2.1", "proto": "HTTPS", "host": "Example.com"}
    ]


def test_forwarded_separators_inside_quotes_are_data() -> None:
    assert parse_forwarded('for="_a,b";host="h.example:8443";ext="x;y=z", for=192.0.2.9') == [
        {"for": "_a,b", "host": "h.example:8443", "ext": "x;y=z"},
        {"for": "192.0.2.9"},
    ]


def test_forwarded_whitespace_around_elements_and_pairs() -> None:
    assert parse_forwarded(" for=192.0.2.1 ; proto=https ,for=10.0.0.1 ") == [
        {"for": "192.0.2.1", "proto": "https"},
        {"for": "10.0.0.1"},
    ]


def test_forwarded_quoted_pair_inside_a_quoted_string() -> None:
    # RFC 7239 4 uses RFC 7230's quoted-string, which allows quoted-pair (`\"`): an escaped
    # quote must neither end the string nor swallow the parameters after it.
    assert parse_forwarded(r'ext="a\"b";proto=https, for=192.0.2.1') == [
        {"ext": 'a"b', "proto": "https"},
        {"for": "192.0.2.1"},
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", []),
        (" ", []),
        (",,;;", []),
        ("garbage", []),
        ("for=192.0.2.1;;junk;proto=https,,", [{"for": "192.0.2.1", "proto": "https"}]),
        ("junk, for=192.0.2.2", [{"for": "192.0.2.2"}]),
        ('for=""', [{"for": ""}]),
    ],
)
def test_forwarded_garbage_is_tolerated(value: str, expected: list[dict[str, str]]) -> None:
    assert parse_forwarded(value) == expected


@given(st.text(max_size=80))
def test_forwarded_never_raises_and_keys_are_lower_case(value: str) -> None:
    for hop in parse_forwarded(value):
        assert hop
        assert all(key == key.lower() for key in hop)


# -- resolve: no proxy configuration ---------------------------------------------------------


def test_plain_request_uses_its_own_scheme_and_host() -> None:
    origin = resolve(site(), environ(peer="192.0.2.7", host="Files.Example:8080"))
    assert origin == Origin("http", "files.example:8080", "", "192.0.2.7")


def test_plain_request_drops_the_default_port() -> None:
    assert resolve(site(), environ(host="h.example:443", scheme="https")).host == "h.example"
    assert resolve(site(), environ(host="h.example:80")).host == "h.example"


def test_plain_request_without_host_uses_server_name_and_port() -> None:
    origin = resolve(site(), environ(host=None))
    assert (origin.scheme, origin.host) == ("http", "backend:8080")


def test_configured_prefix_without_proxy_headers() -> None:
    assert resolve(site(prefix="/dav"), environ()).prefix == "/dav"


# -- resolve: untrusted peers ----------------------------------------------------------------

FORGED = {
    "X_Forwarded_Proto": "https",
    "X_Forwarded_Host": "evil.example",
    "X_Forwarded_Port": "4443",
    "X_Forwarded_Prefix": "/evil",
    "X_Forwarded_For": "198.51.100.66",
    "Forwarded": 'for=198.51.100.66;proto=https;host="evil.example:4443"',
}


@pytest.mark.parametrize(
    ("trusted", "peer"),
    [
        ((), "127.0.0.1"),
        (("127.0.0.1",), "127.0.0.2"),
        (("10.0.0.0/8",), "11.0.0.1"),
        (("10.0.0.0/8",), "192.168.1.1"),
        (("::1",), "::2"),
        (("fd00::/8",), "fe80::1"),
        (("127.0.0.1",), "::1"),
        (("127.0.0.1",), ""),
        (("127.0.0.1",), "not-an-address"),
    ],
)
def test_forwarded_headers_from_untrusted_peer_are_ignored(
    trusted: tuple[str, ...], peer: str
) -> None:
    origin = resolve(site(trusted=trusted), environ(peer=peer, **FORGED))
    assert origin == Origin("http", "backend:8080", "", peer)


@pytest.mark.parametrize("header", sorted(FORGED))
def test_each_forwarded_header_alone_from_untrusted_peer_is_ignored(header: str) -> None:
    s = site(trusted=("10.0.0.0/8",))
    origin = resolve(s, environ(peer="192.0.2.1", **{header: FORGED[header]}))
    assert origin == Origin("http", "backend:8080", "", "192.0.2.1")


@pytest.mark.parametrize(
    ("trusted", "peer"),
    [
        (("127.0.0.1",), "127.0.0.1"),
        (("10.0.0.0/8",), "10.255.0.3"),
        (("10.1.2.3/8",), "10.9.9.9"),
        (("192.0.2.0/24", "198.51.100.0/24"), "198.51.100.200"),
        (("::1",), "::1"),
        (("fd00::/8",), "fd12:3456::1"),
        (("2001:db8::/32",), "2001:db8:ffff::9"),
    ],
)
def test_forwarded_headers_from_trusted_peer_set_the_origin(
    trusted: tuple[str, ...], peer: str
) -> None:
    headers = {k: v for k, v in FORGED.items() if k != "Forwarded"}
    origin = resolve(site(trusted=trusted), environ(peer=peer, **headers))
    assert origin == Origin("https", "evil.example:4443", "/evil", "198.51.100.66")


# -- resolve: public_url wins ----------------------------------------------------------------


def test_public_url_ignores_forwarded_headers_even_from_trusted_peer() -> None:
    s = site("https://files.example.com/dav/", trusted=("127.0.0.1",))
    origin = resolve(s, environ(**FORGED))
    assert (origin.scheme, origin.host, origin.prefix) == ("https", "files.example.com", "/dav")


def test_public_url_ignores_the_request_host_and_scheme() -> None:
    s = site("http://files.example.com:8080/")
    origin = resolve(s, environ(host="127.0.0.1:5000", scheme="https", peer="192.0.2.1"))
    assert origin == Origin("http", "files.example.com:8080", "", "192.0.2.1")


def test_public_url_still_logs_the_client_a_trusted_proxy_names() -> None:
    # public_url fixes the URLs; X-Forwarded-For from a trusted proxy only names the client
    # for the access log (issue 10: "The access log shows the client's address from a trusted
    # proxy's Forwarded/X-Forwarded-For"), so it should still be read.
    s = site("https://files.example.com/dav/", trusted=("127.0.0.1",))
    assert resolve(s, environ(X_Forwarded_For="198.51.100.66")).client == "198.51.100.66"
    forwarded = environ(Forwarded="for=198.51.100.67")
    assert resolve(s, forwarded).client == "198.51.100.67"


def test_public_url_with_untrusted_peer_logs_the_peer() -> None:
    s = site("https://files.example.com/dav/", trusted=("10.0.0.0/8",))
    assert resolve(s, environ(peer="192.0.2.5", X_Forwarded_For="1.2.3.4")).client == "192.0.2.5"


# -- resolve: X-Forwarded-* from a trusted peer ----------------------------------------------

TRUSTED = site(trusted=PROXY)


@pytest.mark.parametrize(
    ("headers", "scheme", "host"),
    [
        ({}, "http", "backend:8080"),
        ({"X_Forwarded_Proto": "https"}, "https", "backend:8080"),
        ({"X_Forwarded_Proto": "HTTPS"}, "https", "backend:8080"),
        ({"X_Forwarded_Proto": "https, http"}, "https", "backend:8080"),
        ({"X_Forwarded_Host": "pub.example"}, "http", "pub.example"),
        ({"X_Forwarded_Host": "Pub.Example:80"}, "http", "pub.example"),
        ({"X_Forwarded_Host": "pub.example, inner.example"}, "http", "pub.example"),
        ({"X_Forwarded_Proto": "https", "X_Forwarded_Host": "pub.example"}, "https", "pub.example"),
        (
            {"X_Forwarded_Proto": "https", "X_Forwarded_Host": "pub.example:443"},
            "https",
            "pub.example",
        ),
        (
            {"X_Forwarded_Proto": "https", "X_Forwarded_Host": "pub.example:8443"},
            "https",
            "pub.example:8443",
        ),
        ({"X_Forwarded_Port": "9000"}, "http", "backend:9000"),
        ({"X_Forwarded_Port": "80"}, "http", "backend"),
        (
            {"X_Forwarded_Host": "pub.example", "X_Forwarded_Port": "8443"},
            "http",
            "pub.example:8443",
        ),
        (
            {"X_Forwarded_Host": "pub.example:1111", "X_Forwarded_Port": "2222"},
            "http",
            "pub.example:2222",
        ),
        (
            {
                "X_Forwarded_Proto": "https",
                "X_Forwarded_Host": "pub.example:8443",
                "X_Forwarded_Port": "443",
            },
            "https",
            "pub.example",
        ),
        (
            {"X_Forwarded_Host": "[2001:db8::5]", "X_Forwarded_Port": "9000"},
            "http",
            "[2001:db8::5]:9000",
        ),
        (
            {"X_Forwarded_Host": "[2001:db8::5]:1111", "X_Forwarded_Port": "9000"},
            "http",
            "[2001:db8::5]:9000",
        ),
        # A proto other than http or https is not a scheme the server can name.
        ({"X_Forwarded_Proto": "gopher"}, "http", "backend:8080"),
    ],
)
def test_x_forwarded_combinations(headers: dict[str, str], scheme: str, host: str) -> None:
    origin = resolve(TRUSTED, environ(peer="10.0.0.1", **headers))
    assert (origin.scheme, origin.host) == (scheme, host)


def test_x_forwarded_proto_https_drops_port_443_from_host() -> None:
    env = environ(peer="::1", host="127.0.0.1:443", X_Forwarded_Proto="https")
    assert resolve(TRUSTED, env).host == "127.0.0.1"


@pytest.mark.parametrize(
    ("value", "prefix"),
    [
        ("/dav", "/dav"),
        ("/dav/", "/dav"),
        ("dav", "/dav"),
        ("/a/b/", "/a/b"),
        ("/my%20files", "/my%20files"),
        ("/my files", "/my%20files"),
        ("/d%C3%A5v", "/d%C3%A5v"),
        ("/dav, /inner", "/dav"),
        ("/", ""),
        ("/../etc", ""),
        ("/dav/./x", ""),
    ],
)
def test_x_forwarded_prefix(value: str, prefix: str) -> None:
    origin = resolve(TRUSTED, environ(peer="10.0.0.1", X_Forwarded_Prefix=value))
    assert origin.prefix == prefix


def test_configured_prefix_wins_over_x_forwarded_prefix() -> None:
    s = site(prefix="/files", trusted=PROXY)
    assert resolve(s, environ(peer="10.0.0.1", X_Forwarded_Prefix="/dav")).prefix == "/files"


def test_x_forwarded_prefix_also_read_with_rfc7239_forwarded() -> None:
    env = environ(peer="10.0.0.1", Forwarded="proto=https", X_Forwarded_Prefix="/dav")
    assert resolve(TRUSTED, env).prefix == "/dav"


# -- resolve: RFC 7239 Forwarded from a trusted peer -----------------------------------------


@pytest.mark.parametrize(
    ("value", "scheme", "host"),
    [
        ("proto=https", "https", "backend:8080"),
        ('host="pub.example"', "http", "pub.example"),
        ("host=pub.example:80", "http", "pub.example"),
        ("proto=https;host=pub.example:443", "https", "pub.example"),
        ('proto=https;host="pub.example:8443"', "https", "pub.example:8443"),
        ("PROTO=HTTPS;HOST=Pub.Example", "https", "pub.example"),
        ('host="[2001:db8::1]:8443";proto=https', "https", "[2001:db8::1]:8443"),
        # The first element is the one the client-facing proxy wrote.
        (
            "for=192.0.2.1;proto=https;host=pub.example, for=10.0.0.9;proto=http;host=inner:81",
            "https",
            "pub.example",
        ),
        ("for=192.0.2.1", "http", "backend:8080"),
        ("garbage", "http", "backend:8080"),
    ],
)
def test_forwarded_sets_scheme_and_host(value: str, scheme: str, host: str) -> None:
    origin = resolve(TRUSTED, environ(peer="10.0.0.1", Forwarded=value))
    assert (origin.scheme, origin.host) == (scheme, host)


def test_forwarded_takes_precedence_over_x_forwarded() -> None:
    env = environ(
        peer="10.0.0.1",
        Forwarded='for=192.0.2.1;proto=https;host="pub.example"',
        X_Forwarded_Proto="http",
        X_Forwarded_Host="other.example",
        X_Forwarded_Port="9999",
        X_Forwarded_For="198.51.100.1",
    )
    origin = resolve(TRUSTED, env)
    assert origin == Origin("https", "pub.example", "", "192.0.2.1")


def test_forwarded_from_untrusted_peer_is_ignored_even_with_trusted_list() -> None:
    env = environ(peer="192.0.2.99", Forwarded='for=10.0.0.1;proto=https;host="pub.example"')
    assert resolve(TRUSTED, env) == Origin("http", "backend:8080", "", "192.0.2.99")


# -- resolve: the client address (nearest untrusted hop) -------------------------------------


@pytest.mark.parametrize(
    ("xff", "peer", "client"),
    [
        ("198.51.100.7", "10.0.0.1", "198.51.100.7"),
        ("198.51.100.7, 10.0.0.2", "10.0.0.1", "198.51.100.7"),
        # Whatever the client wrote before the first untrusted hop is not believed.
        ("203.0.113.1, 198.51.100.7, 10.0.0.2", "10.0.0.1", "198.51.100.7"),
        ("203.0.113.1,198.51.100.7,10.0.0.2,10.0.0.3", "10.0.0.1", "198.51.100.7"),
        ("2001:db8::7", "::1", "2001:db8::7"),
        ("2001:db8::7, ::1", "::1", "2001:db8::7"),
        # All hops are ours: the farthest one is the client.
        ("10.0.0.5, 10.0.0.2", "10.0.0.1", "10.0.0.5"),
        ("", "10.0.0.1", "10.0.0.1"),
    ],
)
def test_client_from_x_forwarded_for(xff: str, peer: str, client: str) -> None:
    env = environ(peer=peer, X_Forwarded_For=xff) if xff else environ(peer=peer)
    assert resolve(TRUSTED, env).client == client


@pytest.mark.parametrize(
    ("value", "client"),
    [
        ("for=198.51.100.7", "198.51.100.7"),
        ('for="198.51.100.7:4711"', "198.51.100.7"),
        ('for="[2001:db8::1]:4711"', "2001:db8::1"),
        ('for="[2001:db8::1]"', "2001:db8::1"),
        ("for=198.51.100.7, for=10.0.0.2", "198.51.100.7"),
        ("for=203.0.113.1, for=198.51.100.7, for=10.0.0.2", "198.51.100.7"),
        ('for=203.0.113.1, for="[2001:db8::1]:1", for="[::1]"', "2001:db8::1"),
        ("for=10.0.0.3;proto=https, for=10.0.0.2", "10.0.0.3"),
        ("proto=https", "10.0.0.1"),
        ("For=198.51.100.8", "198.51.100.8"),
    ],
)
def test_client_from_forwarded(value: str, client: str) -> None:
    assert resolve(TRUSTED, environ(peer="10.0.0.1", Forwarded=value)).client == client


def test_client_from_untrusted_peer_is_the_peer() -> None:
    env = environ(peer="192.0.2.50", X_Forwarded_For="198.51.100.7")
    assert resolve(TRUSTED, env).client == "192.0.2.50"


# -- same_origin -----------------------------------------------------------------------------

HTTPS_ORIGIN = Origin("https", "files.example.com", "/dav", "")
PORT_ORIGIN = Origin("http", "127.0.0.1:8080", "", "")


@pytest.mark.parametrize(
    ("scheme", "netloc", "origin", "same"),
    [
        ("https", "files.example.com", HTTPS_ORIGIN, True),
        ("https", "files.example.com:443", HTTPS_ORIGIN, True),
        ("HTTPS", "FILES.example.com:443", HTTPS_ORIGIN, True),
        ("https", "user@files.example.com", HTTPS_ORIGIN, True),
        ("http", "files.example.com", HTTPS_ORIGIN, False),
        ("http", "files.example.com:443", HTTPS_ORIGIN, False),
        ("https", "files.example.com:8443", HTTPS_ORIGIN, False),
        ("https", "other.example.com", HTTPS_ORIGIN, False),
        ("https", "files.example.com.evil", HTTPS_ORIGIN, False),
        ("ftp", "files.example.com", HTTPS_ORIGIN, False),
        ("http", "127.0.0.1:8080", PORT_ORIGIN, True),
        ("http", "127.0.0.1", PORT_ORIGIN, False),
        ("http", "127.0.0.1:80", PORT_ORIGIN, False),
        ("http", "localhost:8080", PORT_ORIGIN, False),
        ("https", "127.0.0.1:8080", PORT_ORIGIN, False),
        ("http", "[::1]:80", Origin("http", "[::1]", "", ""), True),
    ],
)
def test_same_origin(scheme: str, netloc: str, origin: Origin, same: bool) -> None:
    assert same_origin(scheme, netloc, origin) is same


# -- strip_prefix ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "prefix", "rest"),
    [
        ("/a.txt", "", "/a.txt"),
        ("/", "", "/"),
        ("/dav/a.txt", "/dav", "/a.txt"),
        ("/dav/", "/dav", "/"),
        ("/dav", "/dav", "/"),
        ("/dav/sub/dir/", "/dav", "/sub/dir/"),
        ("/dav/a%20b.txt", "/dav", "/a%20b.txt"),
        ("/a/b/c", "/a/b", "/c"),
        # Encoded and decoded spellings of the same prefix.
        ("/my%20files/x", "/my%20files", "/x"),
        ("/my files/x", "/my%20files", "/x"),
        ("/d%C3%A5v/x", "/d%C3%A5v", "/x"),
        ("/d%c3%a5v/x", "/d%C3%A5v", "/x"),
        ("/dåv/x", "/d%C3%A5v", "/x"),
        ("/%64%61%76/x", "/dav", "/x"),
        ("/%7Euser/x", "/~user", "/x"),
        ("/~user/x", "/%7Euser", "/x"),
    ],
)
def test_strip_prefix(raw: str, prefix: str, rest: str) -> None:
    assert strip_prefix(raw, prefix) == rest


@pytest.mark.parametrize(
    ("raw", "prefix"),
    [
        ("/", "/dav"),
        ("/a.txt", "/dav"),
        ("/davx/a.txt", "/dav"),
        ("/da/v", "/dav"),
        ("/DAV/a.txt", "/dav"),
        ("/other/dav/a.txt", "/dav"),
        ("/a/c/b", "/a/b"),
        ("/a", "/a/b"),
        ("/my%2520files/x", "/my%20files"),
    ],
)
def test_strip_prefix_outside(raw: str, prefix: str) -> None:
    assert strip_prefix(raw, prefix) is None


_segment = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"),
    min_size=1,
    max_size=8,
).filter(lambda s: s not in (".", ".."))


@given(
    st.lists(_segment, min_size=1, max_size=3),
    st.lists(_segment, max_size=4),
    st.booleans(),
)
def test_strip_prefix_of_prefix_plus_path_is_the_path(
    prefix_segments: list[str], path_segments: list[str], trailing: bool
) -> None:
    prefix = encode_prefix("/" + "/".join(prefix_segments))
    path = "/" + "/".join(quote(s, safe="") for s in path_segments)
    if trailing and path_segments:
        path += "/"
    assert strip_prefix(prefix + path, prefix) == path
    # The same prefix as a client may spell it: decoded (where that spelling is unambiguous).
    if not any("%" in s for s in prefix_segments):
        decoded = "/" + "/".join(prefix_segments)
        assert strip_prefix(decoded + path, prefix) == path


@given(st.lists(_segment, min_size=1, max_size=3))
def test_encode_prefix_round_trips_through_decoding(segments: list[str]) -> None:
    encoded = encode_prefix("/" + "/".join(segments))
    assert [unquote(s) for s in encoded.split("/")[1:]] == segments
    assert encode_prefix(unquote(encoded)) == encoded
    assert strip_prefix(encoded, encoded) == "/"


# -- Request.own_path and Request.destination ------------------------------------------------


def request(origin: Origin, destination: str | None = None) -> Request:
    env = environ()
    if destination is not None:
        env["HTTP_DESTINATION"] = destination
    return Request(env, "COPY", "/a.txt", origin)


PUBLIC = Origin("https", "files.example.com", "/dav", "198.51.100.1")
ROOTED = Origin("http", "127.0.0.1:8080", "", "127.0.0.1")


@pytest.mark.parametrize(
    ("origin", "uri", "path"),
    [
        (PUBLIC, "https://files.example.com/dav/b.txt", "/b.txt"),
        (PUBLIC, "https://files.example.com:443/dav/b.txt", "/b.txt"),
        (PUBLIC, "HTTPS://Files.Example.Com/dav/b.txt", "/b.txt"),
        (PUBLIC, "https://files.example.com/dav/", "/"),
        (PUBLIC, "https://files.example.com/dav", "/"),
        (PUBLIC, "https://files.example.com/dav/sub/c%20d.txt", "/sub/c d.txt"),
        (PUBLIC, "https://files.example.com/dav/d%C3%A5.txt", "/då.txt"),
        (PUBLIC, "https://files.example.com/dav/x?query=1", "/x"),
        (PUBLIC, "/dav/b.txt", "/b.txt"),
        (PUBLIC, "/%64av/b.txt", "/b.txt"),
        (ROOTED, "http://127.0.0.1:8080/b.txt", "/b.txt"),
        (ROOTED, "/b.txt", "/b.txt"),
        (ROOTED, "/", "/"),
    ],
)
def test_own_path_of_our_uris(origin: Origin, uri: str, path: str) -> None:
    assert request(origin).own_path(uri) == path
    assert request(origin, uri).destination() == path


@pytest.mark.parametrize(
    ("origin", "uri"),
    [
        (PUBLIC, "http://files.example.com/dav/b.txt"),
        (PUBLIC, "https://files.example.com:8443/dav/b.txt"),
        (PUBLIC, "https://other.example.com/dav/b.txt"),
        (PUBLIC, "https://127.0.0.1:8080/dav/b.txt"),
        (PUBLIC, "https://files.example.com/b.txt"),
        (PUBLIC, "https://files.example.com/davx/b.txt"),
        (PUBLIC, "https://files.example.com/"),
        (PUBLIC, "/b.txt"),
        (PUBLIC, "/other/dav/b.txt"),
        (PUBLIC, "//other.example.com/dav/b.txt"),
        (ROOTED, "http://127.0.0.1:9090/b.txt"),
        (ROOTED, "http://localhost:8080/b.txt"),
        (ROOTED, "https://127.0.0.1:8080/b.txt"),
        (ROOTED, "ftp://127.0.0.1:8080/b.txt"),
    ],
)
def test_foreign_uris_are_not_ours_and_destination_is_502(origin: Origin, uri: str) -> None:
    assert request(origin).own_path(uri) is None
    with pytest.raises(BadGateway) as info:
        request(origin, uri).destination()
    assert info.value.status == 502


def test_missing_destination_is_400() -> None:
    with pytest.raises(BadRequest):
        request(PUBLIC).destination()


@pytest.mark.parametrize("uri", ["b.txt", "dav/b.txt"])
def test_relative_destination_is_400(uri: str) -> None:
    with pytest.raises(BadRequest):
        request(PUBLIC, uri).destination()


@pytest.mark.parametrize(
    "uri", ["https://files.example.com/dav/../etc/passwd", "/dav/%2e%2e/x", "/dav/a%2Fb"]
)
def test_destination_escaping_the_root_is_refused_not_mapped(uri: str) -> None:
    # A `..` or an encoded slash is a segment no path may hold (403, paths.check_segment).
    with pytest.raises(DavError) as info:
        request(PUBLIC, uri).destination()
    assert info.value.status == 403


def test_forwarded_host_comes_from_the_hop_our_proxy_wrote() -> None:
    # A client may send its own Forwarded element; a proxy that appends puts its element
    # after it. Only the element written by our outermost trusted proxy names the origin.
    forwarded = 'for=6.6.6.6;host=evil.example;proto=http, for=203.0.113.9;host="files.example"'
    origin = resolve(TRUSTED, environ(peer="10.0.0.1", Forwarded=forwarded + ";proto=https"))
    assert (origin.scheme, origin.host) == ("https", "files.example")
    assert origin.client == "203.0.113.9"


def test_hostile_host_headers_are_not_remembered_whole() -> None:
    """The direct origins are remembered (origin._remembered_direct); Host is the client's to
    choose and may be nearly 64 KiB long. 300 such hosts from one peer leave little held."""
    here = site()
    origin_module._remembered_direct.cache_clear()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for number in range(300):
            host = f"h{number}" + "x" * 60_000
            assert resolve(here, environ(host=host)) == Origin("http", host, "", "127.0.0.1")
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
        origin_module._remembered_direct.cache_clear()
    assert held < 1_000_000
    # An ordinary host is still resolved from what is remembered.
    assert resolve(here, environ(host="Files.Example:80")) is resolve(
        here, environ(host="Files.Example:80")
    )
