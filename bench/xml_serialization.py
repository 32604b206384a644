"""Writing a PROPFIND multistatus: davserver's escaped fragments against lxml's xmlfile.

    .venv/bin/python bench/xml_serialization.py [--responses 10000] [--rounds 5]

Both build the same document (five live properties per file, as a Depth 1 listing does) and
the output of each is parsed back with lxml to check it holds the same responses. Prints the
median time of each and the ratio. This is the measurement behind davserver/xmlout.py writing
XML from fragments rather than with lxml.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable

from lxml import etree

from davserver import paths, xmlout
from davserver.model import PropResponse, PropStat

D = "{DAV:}"
DATE = "Thu, 26 Nov 2026 12:57:28 GMT"


def with_fragments(rows: list[tuple[str, int]]) -> bytes:
    responses = []
    for path, size in rows:
        name = xmlout.escape(paths.name(path))
        props: list[tuple[str, str | None]] = [
            (D + "displayname", f"<D:displayname>{name}</D:displayname>"),
            (D + "getcontentlength", f"<D:getcontentlength>{size}</D:getcontentlength>"),
            (D + "getetag", f'<D:getetag>"abc-{size}"</D:getetag>'),
            (D + "getlastmodified", f"<D:getlastmodified>{DATE}</D:getlastmodified>"),
            (D + "resourcetype", "<D:resourcetype/>"),
        ]
        response = PropResponse(path, False, [PropStat(200, props)])
        responses.append(xmlout.prop_response("", response))
    return b"".join(xmlout.multistatus(responses))


def with_lxml(rows: list[tuple[str, int]]) -> bytes:
    buffer = io.BytesIO()
    with (
        etree.xmlfile(buffer, encoding="utf-8") as xf,
        xf.element(D + "multistatus", nsmap={"D": "DAV:"}),
    ):
        for path, size in rows:
            response = etree.Element(D + "response")
            etree.SubElement(response, D + "href").text = paths.href("", path, False)
            propstat = etree.SubElement(response, D + "propstat")
            prop = etree.SubElement(propstat, D + "prop")
            etree.SubElement(prop, D + "displayname").text = paths.name(path)
            etree.SubElement(prop, D + "getcontentlength").text = str(size)
            etree.SubElement(prop, D + "getetag").text = f'"abc-{size}"'
            etree.SubElement(prop, D + "getlastmodified").text = DATE
            etree.SubElement(prop, D + "resourcetype")
            etree.SubElement(propstat, D + "status").text = "HTTP/1.1 200 OK"
            xf.write(response)
    return buffer.getvalue()


def median_ms(
    build: Callable[[list[tuple[str, int]]], bytes], rows: list[tuple[str, int]], rounds: int
) -> tuple[float, bytes]:
    times, output = [], b""
    for _ in range(rounds):
        started = time.perf_counter()
        output = build(rows)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--responses", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rows = [(f"/big/file {i:05d} & <x>.txt", i) for i in range(args.responses)]
    results = {}
    for label, build in (("fragments", with_fragments), ("lxml xmlfile", with_lxml)):
        ms, output = median_ms(build, rows, args.rounds)
        hrefs = [e.text for e in etree.fromstring(output).iter(D + "href")]
        assert hrefs == [paths.href("", p, False) for p, _ in rows], label
        results[label] = ms
        print(f"{label:13} {ms:8.1f} ms (median of {args.rounds})")
    print(f"lxml / fragments: {results['lxml xmlfile'] / results['fragments']:.2f}")


if __name__ == "__main__":
    main()
