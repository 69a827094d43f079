"""SUMO XML files written through :mod:`xml.etree.ElementTree`, never by pasting strings together.

Every file citybrain writes for SUMO (additional files, data files, configurations) is built as an
element tree and turned into text by :func:`render`, so ids, lane names and file paths are escaped
whatever they hold (``&``, ``<``, ``"``). The text is deterministic and in one layout: the XML
declaration, an optional leading comment, then one element per line, indented, attributes in the
order they were given, empty elements as ``<x a="1"/>``, ending in a newline.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping

HEADER = '<?xml version="1.0" encoding="UTF-8"?>'


def element(parent: ET.Element | None, tag: str, attributes: Mapping[str, str | int]) -> ET.Element:
    """A new element (a child of ``parent`` if given) with ``attributes`` in their order, as text."""
    attrib = {name: str(value) for name, value in attributes.items()}
    return ET.Element(tag, attrib) if parent is None else ET.SubElement(parent, tag, attrib)


def render(root: ET.Element, *, comment: str | None = None, indent: str = "    ") -> str:
    """``root`` as the text of an XML file (see the module's doc); ``root`` is indented in place.

    ``comment`` becomes the line after the declaration; it must be legal inside an XML comment
    (no ``--``, no line break). Comments and processing instructions inside the tree are refused.
    """
    for node in root.iter():
        if not isinstance(node.tag, str):
            raise ValueError("render writes elements only; put the comment in `comment`")
    lines = [HEADER]
    if comment is not None:
        if "--" in comment or "\n" in comment or "\r" in comment:
            raise ValueError(f"not legal inside an XML comment: {comment!r}")
        lines.append(f"<!-- {comment} -->")
    ET.indent(root, space=indent)
    if len(root) == 0 and not root.text:
        root.text = "\n"  # an empty file keeps its root open and closed on two lines
    body = ET.tostring(root, encoding="unicode")
    # ElementTree closes an empty element with " />". A literal " />" appears nowhere else: it
    # escapes ">" in attribute values and text, and the tree holds no comment or instruction.
    lines.append(body.replace(" />", "/>"))
    return "\n".join(lines) + "\n"
