"""The Jinja environment of XML templates: the shared sandbox, autoescaped, with XML filters.

``XML_ENV`` is an instance of the same sandbox class as ``sandbox.MARKUP_ENV`` with the same
filters (so its hardening, e.g. the bounds on what a template may build, applies here), and:

- autoescape on and no ``safe`` filter: every value is XML-escaped, order text can never
  become markup;
- a ``finalize`` that replaces characters XML 1.0 cannot carry (``sandbox.clean_text``),
  writes booleans as ``true``/``false``, decimals without exponent and datetimes as ISO 8601;
- filters for standard documents: ``isodate``, ``isotime``, ``isodatetime`` (UTC),
  ``amount`` (fixed decimals, no separators), ``amount_total`` (sum of rounded line
  amounts), ``add_days``, ``country_code``; the test ``present`` (not None, not blank).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from jinja2 import StrictUndefined
from markupsafe import Markup

from dispatch.documents.sandbox import MARKUP_ENV, clean_text

_COUNTRY = re.compile(r"^[A-Z]{2}$")


def _utc(value: dt.datetime) -> dt.datetime:
    """Naive datetimes are UTC already (the store keeps UTC); aware ones are converted."""
    if value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def iso_date(value: Any) -> str:
    """A date or datetime as ``YYYY-MM-DD`` (datetimes in UTC); None -> ``""``."""
    if value is None or value == "":
        return ""
    if isinstance(value, dt.datetime):
        return _utc(value).date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    raise ValueError(f"isodate: {value!r} is not a date")


def iso_time(value: Any) -> str:
    """The UTC time of a datetime as ``HH:MM:SS``; None -> ``""``."""
    if value is None or value == "":
        return ""
    if isinstance(value, dt.datetime):
        return _utc(value).strftime("%H:%M:%S")
    raise ValueError(f"isotime: {value!r} is not a datetime")


def iso_datetime(value: Any) -> str:
    """A datetime as ``YYYY-MM-DDTHH:MM:SS+00:00`` (UTC); None -> ``""``."""
    if value is None or value == "":
        return ""
    if isinstance(value, dt.datetime):
        return _utc(value).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    raise ValueError(f"isodatetime: {value!r} is not a datetime")


def amount(value: Any, places: int = 2) -> str:
    """``value`` rounded half-up to ``places`` decimals, e.g. ``"1234.50"``; None -> ``""``."""
    if value is None or value == "":
        return ""
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    return format(number.quantize(Decimal(1).scaleb(-int(places)), ROUND_HALF_UP), "f")


def amount_total(lines: Iterable[Any], places: int = 2) -> str:
    """The sum of the lines' ``Amount`` each rounded first (so it equals the sum of the
    amounts the document shows, as Peppol's rules check); unpriced lines add nothing."""
    step = Decimal(1).scaleb(-int(places))
    total = sum(
        (line.Amount.quantize(step, ROUND_HALF_UP) for line in lines if line.Amount is not None),
        Decimal(0),
    )
    return format(total.quantize(step), "f")


def add_days(value: Any, days: int) -> Any:
    """``value`` plus ``days`` days; None stays None."""
    if value is None:
        return None
    return value + dt.timedelta(days=int(days))


def country_code(value: Any) -> str | None:
    """``value`` when it is an ISO 3166-1 alpha-2 code (``"SE"``), else None."""
    if isinstance(value, str) and _COUNTRY.match(value.strip()):
        return value.strip()
    return None


def is_present(value: Any) -> bool:
    """Not None and not blank: an element for it would not be empty (Peppol forbids that)."""
    if value is None:
        return False
    if isinstance(value, str):
        return value.strip() != ""
    return True


def _finalize(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, Markup):  # already escaped (e.g. ``join``); still clean it
        return Markup(clean_text(str(value)))
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        return iso_datetime(value)
    return value


def _make_env() -> Any:
    env = type(MARKUP_ENV)(
        autoescape=True,
        finalize=_finalize,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
        cache_size=0,  # compiled templates are cached per (path, mtime) by xml_template
    )
    # The markup environment's filters: the shared ones and the size-guarded replacements of
    # Jinja's padding filters (sandbox hardening applies here too); ``safe`` is not among them.
    env.filters.update(MARKUP_ENV.filters)
    env.filters.update(
        isodate=iso_date,
        isotime=iso_time,
        isodatetime=iso_datetime,
        amount=amount,
        amount_total=amount_total,
        add_days=add_days,
        country_code=country_code,
    )
    env.filters.pop("safe", None)
    env.tests["present"] = is_present
    return env


XML_ENV = _make_env()
