"""YAML with line numbers, and the small value parsers a PDF layout uses (lengths, colours).

Loading keeps each mapping's and string's source line (``Node.line``) so a template error
says where in the file it is. Only used when a template is compiled, never per render.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from reportlab.lib import colors
from reportlab.lib.units import cm, inch, mm

from dispatch.errors import TemplateError


class LStr(str):
    """A string remembering the line it came from."""

    line: int = 0


class LDict(dict[str, Any]):
    line: int = 0


class LList(list[Any]):
    line: int = 0


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_CONSTRUCTOR = yaml.constructor.SafeConstructor()


def _convert(node: yaml.Node) -> Any:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        mapping = LDict()
        mapping.line = line
        for key_node, value_node in node.value:
            key = _convert(key_node)
            if not isinstance(key, str):
                raise _LineError(key_node.start_mark.line + 1, f"key {key!r} must be text")
            mapping[str(key)] = _convert(value_node)
        return mapping
    if isinstance(node, yaml.SequenceNode):
        seq = LList(_convert(item) for item in node.value)
        seq.line = line
        return seq
    value = _CONSTRUCTOR.construct_object(node, deep=True)
    if isinstance(value, str):
        text = LStr(value)
        text.line = line
        return text
    return value


class _LineError(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


def load_with_lines(text: str, label: str) -> Any:
    """Parse YAML ``text``; strings and mappings carry ``.line``.

    Raises:
        TemplateError: naming ``label`` and the line of the syntax error.
    """
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}" if mark is not None else "?"
        raise TemplateError(f"{label} {where}: YAML syntax error: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise TemplateError(f"{label}: YAML error: {exc}") from None
    if node is None:
        raise TemplateError(f"{label}: the file is empty")
    try:
        return _convert(node)
    except _LineError as exc:
        raise TemplateError(f"{label} line {exc.line}: {exc}") from None
    except yaml.YAMLError as exc:
        raise TemplateError(f"{label}: YAML error: {exc}") from None


def line_of(value: Any, default: int = 0) -> int:
    return getattr(value, "line", default)


_LENGTH = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(mm|cm|in|pt)?\s*$")
_UNITS = {"mm": mm, "cm": cm, "in": inch, "pt": 1.0, None: 1.0}


def parse_length(value: Any) -> float:
    """``"18mm"``, ``"2cm"``, ``"0.5in"``, ``"12pt"`` or a number of points → points."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a length")
    if isinstance(value, int | float):
        return float(value)
    match = _LENGTH.match(str(value))
    if match is None:
        raise ValueError(f"{value!r} is not a length like 18mm, 2cm, 0.5in or 12pt")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_color(value: Any) -> colors.Color:
    """``"#b00020"`` or a reportlab colour name (``red``, ``lightgrey``) → Color."""
    try:
        return colors.toColor(str(value))
    except ValueError:
        raise ValueError(f"{value!r} is not a colour like #b00020 or red") from None
