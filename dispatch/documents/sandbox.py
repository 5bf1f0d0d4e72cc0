"""The Jinja2 sandboxes templates run in, the text cleaning every format shares, and filters.

Two environments, both ``ImmutableSandboxedEnvironment`` (no ``_``/dunder attribute access,
no mutation of the context's lists and dicts, bounded ``range``):

- ``MARKUP_ENV`` for reportlab Paragraph markup: every ``{{ expression }}`` is cleaned and
  XML-escaped, newlines become ``<br/>``. The ``safe`` filter is removed so order text can
  never be injected as markup; the template's own literal text may use ``<b>``, ``<font>``…
- ``PLAIN_ENV`` for Excel cells: values are cleaned but not escaped (a cell is not markup).
"""

from __future__ import annotations

import builtins
import dataclasses
import datetime as dt
import re
from decimal import Decimal
from functools import cached_property
from typing import Any

from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup, escape

from dispatch.documents import context

# C0 controls other than tab, newline and carriage return are not allowed in XML 1.0 nor by
# openpyxl; U+FFFE/U+FFFF and lone surrogates are not characters at all.
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def clean_text(text: str) -> str:
    """``text`` with characters that XML and xlsx cannot hold replaced by U+FFFD."""
    if _ILLEGAL.search(text) is None:
        return text
    return _ILLEGAL.sub(REPLACEMENT, text)


def has_illegal(text: str) -> bool:
    return _ILLEGAL.search(text) is not None


# --- filters ---------------------------------------------------------------------------


def fmt_money(value: Any, places: int = 2) -> str:
    """``1234.5`` → ``"1,234.50"``; None → ``""``."""
    if value is None or value == "":
        return ""
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    return f"{number:,.{int(places)}f}"


def fmt_quantity(value: Any) -> str:
    """Integers with thousands separators; None → ``""``."""
    if value is None or value == "":
        return ""
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def fmt_date(value: Any, pattern: str = "%Y-%m-%d") -> str:
    """A date or datetime as ``YYYY-MM-DD`` (or ``pattern``); None → ``""``."""
    if value is None or value == "":
        return ""
    if isinstance(value, dt.date):
        return value.strftime(pattern)
    return str(value)


def fmt_datetime(value: Any) -> str:
    """A datetime as ``YYYY-MM-DD HH:MM UTC``; None → ``""``."""
    return fmt_date(value, "%Y-%m-%d %H:%M UTC")


def fmt_yesno(value: Any, yes: str = "Yes", no: str = "No") -> str:
    return yes if value else no


FILTERS = {
    "money": fmt_money,
    "qty": fmt_quantity,
    "date": fmt_date,
    "datetime": fmt_datetime,
    "yesno": fmt_yesno,
}


# --- environments ----------------------------------------------------------------------


def _finalize_markup(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, Markup):
        # Already escaped (e.g. the result of ``join`` under autoescape); still clean it.
        return Markup(clean_text(str(value)))
    if isinstance(value, str):
        return Markup(str(escape(clean_text(value))).replace("\n", "<br/>"))
    return value


def _finalize_plain(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str):
        return clean_text(value)
    return value


def _public_data(cls: type) -> frozenset[str]:
    """Fields and properties of a context dataclass: plain data, safe to read."""
    names = {f.name for f in dataclasses.fields(cls)}
    for name in dir(cls):
        if isinstance(getattr(cls, name, None), property | cached_property):
            names.add(name)
    return frozenset(n for n in names if not n.startswith("_"))


# The context's own frozen dataclasses hold data only; reading their fields and properties
# skips the sandbox's generic checks (~2 µs per attribute, most of a line's render time).
# Anything else (methods, other objects) goes through the full sandbox.
_DATA_ATTRS: dict[type, frozenset[str]] = {
    cls: _public_data(cls)
    for cls in (
        context.Order,
        context.Line,
        context.Party,
        context.Location,
        context.Change,
        context.Dispatch,
        context.Totals,
    )
}


class _Sandbox(ImmutableSandboxedEnvironment):
    def getattr(self, obj: Any, attribute: str) -> Any:
        allowed = _DATA_ATTRS.get(type(obj))
        if allowed is not None and attribute in allowed:
            return builtins.getattr(obj, attribute)
        return super().getattr(obj, attribute)


def _make_env(*, markup: bool) -> ImmutableSandboxedEnvironment:
    env = _Sandbox(
        autoescape=markup,
        finalize=_finalize_markup if markup else _finalize_plain,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        auto_reload=False,
        cache_size=0,  # templates are cached by our own (path, mtime) cache
    )
    env.filters.update(FILTERS)
    if markup:
        del env.filters["safe"]
    return env


MARKUP_ENV = _make_env(markup=True)
PLAIN_ENV = _make_env(markup=False)
