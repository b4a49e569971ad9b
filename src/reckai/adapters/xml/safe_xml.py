"""XML parsed only through defusedxml: no DTD, no entity expansion, no external entities, ever.

A DOCTYPE is refused outright (statement formats never need one), which also stops "billion laughs"
and XXE before any expansion. Element line numbers are recorded for the error report.
"""

from __future__ import annotations

import functools
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast
from xml.parsers import expat

from defusedxml import DefusedXmlException, DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import DefusedXMLParser

from reckai.domain.ingestion.errors import EmptyFile, ForbiddenXmlConstruct, MalformedXml


class _LineTrackingBuilder(ET.TreeBuilder):
    def __init__(self) -> None:
        super().__init__()
        self.parser: DefusedXMLParser | None = None
        self.lines: dict[int, int] = {}

    def start(self, tag: str, attrs: dict[str, str]) -> ET.Element:
        element = super().start(tag, attrs)
        if self.parser is not None:
            self.lines[id(element)] = self.parser.parser.CurrentLineNumber
        return element


@dataclass
class XmlDocument:
    root: ET.Element
    lines: dict[int, int]  # id(element) -> 1-based line where it starts

    def line_of(self, element: ET.Element) -> int | None:
        return self.lines.get(id(element))


@functools.lru_cache(maxsize=4096)  # a streamed document asks for the same few tags millions of times
def local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if tag.startswith("{") else tag


def parse_xml(data: bytes) -> XmlDocument:
    """Parse XML bytes safely; raise MalformedXml or ForbiddenXmlConstruct with the position."""
    if not data.strip():
        raise EmptyFile("the XML file is empty")
    builder = _LineTrackingBuilder()
    parser = DefusedXMLParser(target=builder, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    builder.parser = parser
    try:
        parser.feed(data)
        root = parser.close()
    except DTDForbidden as exc:
        raise ForbiddenXmlConstruct("the XML declares a DOCTYPE/DTD, which is refused (it can hide entity "
                                    "bombs and external entities); export the file without it") from exc
    except EntitiesForbidden as exc:
        raise ForbiddenXmlConstruct(f"the XML declares entity {exc.name!r}; entity declarations are refused "
                                    "(entity bombs, external entities)", entity=exc.name) from exc
    except ExternalReferenceForbidden as exc:
        raise ForbiddenXmlConstruct("the XML references an external resource, which is refused",
                                    system_id=exc.sysid) from exc
    except DefusedXmlException as exc:
        raise ForbiddenXmlConstruct(f"the XML uses a refused construct ({exc})") from exc
    except (ET.ParseError, expat.ExpatError) as exc:
        line, column = getattr(exc, "position", (None, None))
        raise MalformedXml(f"the XML is not well-formed at line {line}, column {column} ({exc})",
                           line=line, column=column) from exc
    return XmlDocument(root=root, lines=builder.lines)


_CHUNK_BYTES = 1024 * 1024
_DECLARATIONS = re.compile(rb"<!DOCTYPE|<!ENTITY", re.IGNORECASE)
_NOT_BLANK = re.compile(rb"\S")


def plain_document(data: bytes) -> bool:
    """True when the document is ASCII-compatible and declares no DOCTYPE or ENTITY anywhere (a
    DTD may only stand in the prolog, but a comment can make the prolog hard to find; a document
    that merely mentions `<!DOCTYPE` in a comment or CDATA just takes the slower path). Such a
    document cannot define an entity, so expat's C parser may read it directly (10x faster than the
    defusedxml parser's Python callbacks); anything else goes through defusedxml."""
    head = data[:4096]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in head:
        return False
    return _DECLARATIONS.search(data) is None


def iter_xml(data: bytes) -> Iterator[tuple[str, ET.Element]]:
    """Stream ("start" | "end", element) events, in bounded memory when the caller clears each
    element it is done with (a 1M-entry camt.053 is never one tree). Errors as in `parse_xml`:
    a DOCTYPE or entity declaration is refused through defusedxml."""
    if not data.strip():
        raise EmptyFile("the XML file is empty")
    if not plain_document(data):
        yield from _walk(parse_xml(data).root)  # raises ForbiddenXmlConstruct for the declarations
        return
    pull: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("start", "end"))
    try:
        for offset in range(0, len(data), _CHUNK_BYTES):
            pull.feed(data[offset:offset + _CHUNK_BYTES])
            yield from cast(Iterator[tuple[str, ET.Element]], pull.read_events())
        pull.close()
        yield from cast(Iterator[tuple[str, ET.Element]], pull.read_events())
    except ET.ParseError as exc:
        line, column = exc.position
        raise MalformedXml(f"the XML is not well-formed at line {line}, column {column} ({exc})",
                           line=line, column=column) from exc


def _walk(element: ET.Element) -> Iterator[tuple[str, ET.Element]]:
    yield "start", element
    for child in element:
        yield from _walk(child)
    yield "end", element


def start_tag_lines(data: bytes, name: str) -> list[int]:
    """1-based lines of the start tags of elements named `name` (any namespace prefix), in
    document order: where the streaming parser cannot say."""
    lines: list[int] = []
    line, position = 1, 0
    for match in re.finditer(rb"<(?:[A-Za-z_][\w.-]*:)?" + re.escape(name.encode()) + rb"[\s>/]", data):
        line += data.count(b"\n", position, match.start())
        position = match.start()
        lines.append(line)
    return lines


def iter_ended(data: bytes, prune: frozenset[str] | None = None) -> Iterator[ET.Element]:
    """Each element once it has ended (children complete); after the caller is done with it, it is
    removed from its parent when its local name is in `prune` (None: every element), so memory
    stays bounded however many entries the document holds."""
    stack: list[ET.Element] = []
    for event, element in iter_xml(data):
        if event == "start":
            stack.append(element)
            continue
        stack.pop()
        yield element
        if stack and (prune is None or local_name(element.tag) in prune):
            stack[-1].remove(element)


class _NoTree:
    """An XMLParser target without handlers: expat checks the document in C and builds nothing."""

    def close(self) -> None:
        return None


def check_xml(data: bytes) -> None:
    """Well-formedness and the refused constructs, without keeping the tree.

    A plain document goes through a bare expat parser with namespace processing and no handler at
    all (half the time of ElementTree's parser, whose C handlers still make every tag and text);
    when it finds an error, ElementTree's parser reads the document again for the message and
    position the error report has always given."""
    if _NOT_BLANK.search(data) is None:  # not data.strip(): no copy of the file
        raise EmptyFile("the XML file is empty")
    if not plain_document(data):
        parse_xml(data)  # defusedxml: refuses the declarations
        return
    bare = expat.ParserCreate(namespace_separator="}")
    try:
        for offset in range(0, len(data), _CHUNK_BYTES):
            bare.Parse(data[offset:offset + _CHUNK_BYTES], False)
        bare.Parse(b"", True)
        return
    except expat.ExpatError:
        pass
    parser = ET.XMLParser(target=_NoTree())
    try:
        for offset in range(0, len(data), _CHUNK_BYTES):
            parser.feed(data[offset:offset + _CHUNK_BYTES])
        parser.close()
    except ET.ParseError as exc:
        line, column = exc.position
        raise MalformedXml(f"the XML is not well-formed at line {line}, column {column} ({exc})",
                           line=line, column=column) from exc
    raise MalformedXml("the XML is not well-formed")  # expat refused it: never reached in practice
