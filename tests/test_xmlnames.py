"""Tests for davserver.xmlnames: which property names XML can carry.

The oracle is lxml, which checks element names by the XML 1.0 fifth edition productions
(libxml2's xmlValidateNameValue) and refuses ':' in a local name: every answer of ours must
agree with it, for every character of the Basic Multilingual Plane and for random strings.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from davserver import xmlout
from davserver.xmlnames import XML_NS, XMLNS_NS, is_ncname, property_name_problem


def lxml_accepts(local: str) -> bool:
    try:
        etree.Element("{urn:x}" + local)
    except ValueError:
        return False
    return True


def test_every_bmp_character_as_first_and_as_later_character_agrees_with_lxml() -> None:
    disagree = [
        text
        for code in range(0x10000)
        if not 0xD800 <= code <= 0xDFFF
        for text in (chr(code), "a" + chr(code))
        if is_ncname(text) != lxml_accepts(text)
    ]
    assert disagree == []


# Characters from the edges of the productions' ranges, astral ones included, and anything else.
edge_characters = st.sampled_from(
    "aZ_:-.09\xb7\xb2\xaa\xbf\xc0\xd7\xf7\u02ff\u0300\u036f\u0370\u037e\u037f\u1fff"
    "\u200b\u200c\u200d\u203f\u2040\u206f\u2070\u218f\u2190\u2bff\u2c00\u2fef\u3000"
    "\u3001\ud7ff\ue000\uf8ff\uf900\ufdcf\ufdd0\ufdef\ufdf0\ufffd\ufffe\U00010000"
    "\U000effff\U000f0000\U0010fffd"
)
name_text = st.text(
    alphabet=st.one_of(edge_characters, st.characters(exclude_categories=("Cs",))), max_size=8
)


@settings(max_examples=500, deadline=None)
@given(name_text)
def test_local_names_agree_with_lxml(local: str) -> None:
    assert is_ncname(local) == lxml_accepts(local)


namespaces = st.one_of(
    st.sampled_from(["", "DAV:", "urn:x", XML_NS, XMLNS_NS, "urn:{x}", "a b", "\t\n", "x\x01"]),
    st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=12),
    # Mostly URI characters, so that many are accepted and their structure is what is tested.
    st.text(alphabet=st.sampled_from("aZ09:/?#[]@!$&'()*+,;=-._~% \\{}\xe4"), max_size=16),
)


@settings(max_examples=500, deadline=None)
@given(namespaces, name_text)
def test_every_accepted_name_is_written_as_xml_that_reads_back_as_itself(
    namespace: str, local: str
) -> None:
    name = "{" + namespace + "}" + local
    if property_name_problem(name) is not None:
        return
    document = '<D:prop xmlns:D="DAV:">' + xmlout.element(name, "v") + "</D:prop>"
    (el,) = etree.fromstring(document.encode())
    assert el.tag == (name if namespace else local)
    assert el.text == "v"


@pytest.mark.parametrize(
    "name",
    [
        "{urn:x}a\xb7b",  # MIDDLE DOT: a NameChar
        "{urn:x}ae\u0301",  # a combining mark
        "{urn:x}\u037f",
        "{urn:x}a\U00010000",
        "{}plain",
        "{DAV:}mine",
        "{urn:x}xmlish",  # reserved for standards, but a valid name
    ],
)
def test_valid_names_are_accepted(name: str) -> None:
    assert property_name_problem(name) is None


@pytest.mark.parametrize(
    "name",
    [
        "{urn:x}a\xb2",  # SUPERSCRIPT TWO: a digit to Python, no NameChar to XML
        "{urn:x}\xaab",  # FEMININE ORDINAL: a letter to Python, no NameStartChar to XML
        "{urn:x}1a",
        "{urn:x}a:b",
        "{urn:x}",
        "{urn:x}a b",
        "{urn:x}\u0301a",
        "{" + XML_NS + "}a",
        "{" + XMLNS_NS + "}a",
        "{urn:{x}a",
        "{urn:x}}a",
        "{urn:\x01}a",
        "plain",
        "",
    ],
)
def test_invalid_names_are_refused(name: str) -> None:
    assert property_name_problem(name) is not None
