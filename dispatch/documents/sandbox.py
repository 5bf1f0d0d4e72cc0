"""The Jinja2 sandboxes templates run in, the text cleaning every format shares, and filters.

Two environments, both ``ImmutableSandboxedEnvironment`` (no ``_``/dunder attribute access,
no mutation of the context's lists and dicts, bounded ``range``):

- ``MARKUP_ENV`` for reportlab Paragraph markup: every ``{{ expression }}`` is cleaned and
  XML-escaped, newlines become ``<br/>``. The ``safe`` filter is removed so order text can
  never be injected as markup; the template's own literal text may use ``<b>``, ``<font>``…
- ``PLAIN_ENV`` for Excel cells: values are cleaned but not escaped (a cell is not markup).

Sandboxed in work as well as in reach (SPEC 9): no string or list a template builds may
exceed the document limit (:data:`OUTPUT_LIMIT`, ``DISPATCH_MAX_DOCUMENT_BYTES``, set by
``render_document`` for the render in hand): repetition (``'A' * n``), concatenation
(``+``, ``~``), huge powers, ``%``/``format`` widths and the padding filters and methods
(``center``, ``indent``, ``replace``, ``ljust``…) are checked *before* the value is built,
and a template's output is counted as it streams, so none of them can take the memory.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import datetime as dt
import functools
import re
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from decimal import Decimal
from functools import cached_property
from typing import Any

from jinja2 import StrictUndefined, Template
from jinja2 import filters as jinja_filters
from jinja2.compiler import CodeGenerator, Frame
from jinja2.nodes import Concat
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from markupsafe import Markup, escape

from dispatch.documents import context
from dispatch.errors import RenderError

DEFAULT_MAX_DOCUMENT_BYTES = 20 * 1024 * 1024
OUTPUT_LIMIT: ContextVar[int] = ContextVar("document_output_limit",
                                           default=DEFAULT_MAX_DOCUMENT_BYTES)
"""The most characters any one value or output of a template may have (see ``limited``)."""


@contextlib.contextmanager
def limited(max_bytes: int) -> Iterator[None]:
    """Templates rendered inside bound every value and their output to ``max_bytes``."""
    token = OUTPUT_LIMIT.set(max_bytes)
    try:
        yield
    finally:
        OUTPUT_LIMIT.reset(token)


def _too_big(what: str, size: int) -> SecurityError:
    limit = OUTPUT_LIMIT.get()
    return SecurityError(f"{what} would make {size:,} characters or items, more than the "
                         f"document limit of {limit:,} (DISPATCH_MAX_DOCUMENT_BYTES)")


def _check_size(what: str, size: int) -> None:
    if size > OUTPUT_LIMIT.get():
        raise _too_big(what, size)


def _sized(value: Any) -> int | None:
    return len(value) if isinstance(value, str | bytes | list | tuple) else None


# A %-conversion or format spec asking for a width or precision of 6+ digits (or from an
# argument, '*'): '%0999999999d', '{:>999999999}'.
_PERCENT_WIDTH = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(?:\d{6,}|\*|\d*\.(?:\d{6,}|\*))")
_FORMAT_WIDTH = re.compile(r"\{[^{}]*:[^{}]*(?:\d{6,}|\{)[^{}]*\}")


def _check_format(fmt: str, percent: bool) -> None:
    if (_PERCENT_WIDTH if percent else _FORMAT_WIDTH).search(fmt):
        raise SecurityError("a format width or precision over 99,999 (or taken from an "
                            "argument) is not allowed in templates")

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
        context.PostalAddress,
        context.CxmlIdentity,
    )
}


def _predicted_size(method: str, text: str, args: tuple[Any, ...]) -> int | None:
    """Length of ``text.<method>(*args)`` for the str methods that can blow up, else None."""
    if method in ("center", "ljust", "rjust", "zfill") and args and isinstance(args[0], int):
        return max(len(text), args[0])
    if method == "expandtabs":
        size = args[0] if args and isinstance(args[0], int) else 8
        return len(text) + text.count("\t") * max(size, 0)
    if method == "replace" and len(args) >= 2 and all(isinstance(a, str) for a in args[:2]):
        count = text.count(args[0]) if args[0] else len(text) + 1
        if len(args) >= 3 and isinstance(args[2], int) and args[2] >= 0:
            count = min(count, args[2])
        return len(text) + count * max(len(args[1]) - len(args[0]), 0)
    return None


class _Compiler(CodeGenerator):
    """Jinja's code generator with ``~`` (string concatenation) size-checked."""

    def visit_Concat(self, node: Concat, frame: Frame) -> None:
        self.write("environment.checked_concat(")
        super().visit_Concat(node, frame)
        self.write(")")


class _LimitedTemplate(Template):
    """A template whose output is counted as it streams (never a string past the limit)."""

    def render(self, *args: Any, **kwargs: Any) -> str:
        limit = OUTPUT_LIMIT.get()
        ctx = self.new_context(dict(*args, **kwargs))
        parts: list[str] = []
        size = 0
        try:
            for part in self.root_render_func(ctx):
                size += len(part)
                if size > limit:
                    raise RenderError(f"the template's output passed the document limit of "
                                      f"{limit:,} characters (DISPATCH_MAX_DOCUMENT_BYTES)")
                parts.append(part)
        except RenderError:
            raise
        except Exception:
            self.environment.handle_exception()
        return self.environment.concat(parts)  # type: ignore[attr-defined,no-any-return]


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "%", "+"})
    code_generator_class = _Compiler
    template_class = _LimitedTemplate

    def getattr(self, obj: Any, attribute: str) -> Any:
        allowed = _DATA_ATTRS.get(type(obj))
        if allowed is not None and attribute in allowed:
            return builtins.getattr(obj, attribute)
        return super().getattr(obj, attribute)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                size = _sized(seq)
                if size is not None and isinstance(times, int):
                    _check_size("repetition", size * max(times, 0))
        elif operator == "+":
            left_size, right_size = _sized(left), _sized(right)
            if left_size is not None and right_size is not None:
                _check_size("concatenation", left_size + right_size)
        elif operator == "**":
            if (isinstance(left, int) and isinstance(right, int) and abs(left) > 1
                    and right > 1024):
                raise SecurityError(f"{left} ** {right}: an exponent over 1024 is not "
                                    "allowed in templates")
        elif operator == "%" and isinstance(left, str):
            _check_format(left, percent=True)
        return super().call_binop(context, operator, left, right)

    def checked_concat(self, value: Any) -> Any:
        _check_size("concatenation (~)", len(value))
        return value

    def call(__self, __context: Any, __obj: Any, *args: Any,  # noqa: N805
             **kwargs: Any) -> Any:
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str):
            size = _predicted_size(getattr(__obj, "__name__", ""), owner, args)
            if size is not None:
                _check_size(f"str.{__obj.__name__}", size)
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        owner = getattr(value, "__self__", None)
        if isinstance(owner, str):
            _check_format(owner, percent=False)
        return super().wrap_str_format(value)


def _guarded_filter(name: str, size_of: Callable[..., int]) -> Callable[..., Any]:
    original = jinja_filters.FILTERS[name]

    @functools.wraps(original)  # keeps jinja_pass_arg (replace takes the eval context)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _check_size(f"the {name} filter", size_of(*args, **kwargs))
        return original(*args, **kwargs)

    return guarded


def _center_size(value: Any, width: Any = 80, *_: Any) -> int:
    return max(len(str(value)), width if isinstance(width, int) else 0)


def _indent_size(value: Any, width: Any = 4, *_: Any, **__: Any) -> int:
    text = str(value)
    pad = width if isinstance(width, int) else len(str(width))
    return len(text) + (text.count("\n") + 1) * max(pad, 0)


def _replace_size(*args: Any, **_: Any) -> int:
    if len(args) >= 4 and hasattr(args[0], "environment"):  # the eval context comes first
        args = args[1:]
    text, old, new = (str(a) for a in args[:3])
    return _predicted_size("replace", text, (old, new, *args[3:4])) or len(text)


def _format_size(value: Any, *_: Any, **__: Any) -> int:
    _check_format(str(value), percent=True)
    return len(str(value))


GUARDED_FILTERS = {
    "center": _guarded_filter("center", _center_size),
    "indent": _guarded_filter("indent", _indent_size),
    "replace": _guarded_filter("replace", _replace_size),
    "format": _guarded_filter("format", _format_size),
}


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
    env.filters.update(GUARDED_FILTERS)
    env.filters.update(FILTERS)
    if markup:
        del env.filters["safe"]
    return env


MARKUP_ENV = _make_env(markup=True)
PLAIN_ENV = _make_env(markup=False)
