"""XML parsed only through defusedxml: no DTD, no entity expansion, no external entities, ever.

A DOCTYPE is refused outright (statement formats never need one), which also stops "billion laughs"
and XXE before any expansion. Element line numbers are recorded for the error report.
"""

from __future__ import annotations

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


def iter_xml(data: bytes) -> Iterator[tuple[str, ET.Element, int]]:
    """Stream ("start" | "end", element, line) events through defusedxml, in bounded memory when
    the caller clears each element it is done with (a 1M-entry camt.053 is never one tree).
    Errors as in `parse_xml`."""
    if not data.strip():
        raise EmptyFile("the XML file is empty")
    builder = _LineTrackingBuilder()
    parser = DefusedXMLParser(target=builder, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    builder.parser = parser
    # XMLPullParser takes the (defused) expat parser it should drive through `_parser`.
    pull = ET.XMLPullParser(events=("start", "end"), _parser=parser)

    def events() -> Iterator[tuple[str, ET.Element, int]]:
        for item in pull.read_events():
            event, element = cast(tuple[str, ET.Element], item)
            lines = builder.lines
            yield event, element, lines.get(id(element), 0) if event == "start" else lines.pop(id(element), 0)

    try:
        for offset in range(0, len(data), _CHUNK_BYTES):
            pull.feed(data[offset:offset + _CHUNK_BYTES])
            yield from events()
        pull.close()
        yield from events()
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


def check_xml(data: bytes) -> None:
    """Well-formedness and the refused constructs, without keeping the tree."""
    for event, element, _ in iter_xml(data):
        if event == "end":
            element.clear()
