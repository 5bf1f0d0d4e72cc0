"""Reading the reference-data file: YAML/JSON into ``ReferenceData``, every problem naming
entry and field; literal secrets and uncarriable secret values refused; duplicates."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    ValidationError,
)

from dispatch.channels.base import secret_problem
from dispatch.errors import ReferenceDataError
from dispatch.reference_data.entries import ReferenceData

_SECTIONS = ("vendors", "stocks", "devices", "items", "templates", "locations")

SecretResolver = Callable[[str], str | None]


def _entry_label(raw: Any, section: str, index: int) -> str:
    label = f"{section}[{index}]"
    if isinstance(raw, dict):
        key = raw.get("name") if section in ("stocks", "templates") else raw.get("id")
        if isinstance(key, str | int):
            label += f" ({key})"
    return label


# A key naming a secret itself (not the variable holding it): ``password``, ``ftp_password``,
# ``api_key``, ``apikey``, ``client_secret``, ``access_token``…; ``*_env`` keys are the fix.
_LITERAL_SECRET = re.compile(r"(?:^|_)(password|passwd|secret|token|api_?key)$")
# ``*_env`` keys whose value travels in an HTTP header (Bearer): ASCII only.
HEADER_SECRET_KEYS = frozenset({"api_key_env", "key_env"})


def _walk(value: Any, path: str) -> Iterator[tuple[str, str, Any]]:
    """(dotted path, key, value) of every mapping key under ``value``, at any depth."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            yield where, str(key), item
            yield from _walk(item, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")


def literal_secret_problems(raw: Mapping[str, Any]) -> list[str]:
    """Keys of vendor entries that look like a secret written into the file (SPEC 9)."""
    problems = []
    vendors = raw.get("vendors")
    for index, vendor in enumerate(vendors if isinstance(vendors, list) else []):
        label = _entry_label(vendor, "vendors", index)
        for where, key, value in _walk(vendor, ""):
            name = key.lower().replace("-", "_")
            if _LITERAL_SECRET.search(name) and value not in (None, ""):
                problems.append(
                    f"{label}.{where}: looks like a secret written into the file; keep it in "
                    f"an environment variable and name that variable instead ({name}_env: "
                    f"{_env_example(label, name)})")
    return problems


def _env_example(label: str, name: str) -> str:
    vendor = re.sub(r"[^A-Za-z0-9]+", "_", label.partition("(")[2].rstrip(")")).strip("_")
    return f"{vendor.upper() or 'VENDOR'}_{name.upper()}"


def vendor_secret_problems(label: str, vendor: Mapping[str, Any],
                           secrets: SecretResolver) -> list[str]:
    """``*_env`` keys of one vendor (a parsed entry's dump or a stored row) whose variable
    is set to a value no protocol can carry; each names the variable, never the value."""
    problems = []
    for where, key, name in _walk(vendor, ""):
        if not key.endswith("_env") or not isinstance(name, str) or not name:
            continue
        value = secrets(name)
        if not value:
            continue  # unset now: checked again at the send
        problem = secret_problem(value, header=key in HEADER_SECRET_KEYS)
        if problem is not None:
            problems.append(f"{label}.{where}: environment variable {name}: the value {problem}")
    return problems


def secret_problems(data: ReferenceData, secrets: SecretResolver) -> list[str]:
    """:func:`vendor_secret_problems` for every vendor of ``data``."""
    problems = []
    for index, vendor in enumerate(data.vendors):
        label = f"vendors[{index}] ({vendor.id})"
        problems += vendor_secret_problems(label, vendor.model_dump(mode="json"), secrets)
    return problems


def parse_reference_text(text: str, source: str) -> ReferenceData:
    """Parse YAML or JSON text into ReferenceData; every problem names entry and field."""
    try:
        raw = json.loads(text) if source.endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ReferenceDataError(source, [f"not valid YAML/JSON: {exc}"]) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ReferenceDataError(
            source, [f"top level must be a mapping with keys {', '.join(_SECTIONS)}"]
        )
    problems = literal_secret_problems(raw)
    data: ReferenceData | None = None
    try:
        data = ReferenceData.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors(include_input=False):
            loc = list(err["loc"])
            if not loc:
                problems.append(err["msg"])
                continue
            section = str(loc[0])
            if section == "buyer":
                field = ".".join(str(part) for part in loc[1:]) or "(block)"
                problems.append(f"buyer.{field}: {err['msg']}")
                continue
            if section not in _SECTIONS:
                problems.append(f"{section}: unknown section; allowed: "
                                f"{', '.join(_SECTIONS)}, buyer")
                continue
            if len(loc) >= 2 and isinstance(loc[1], int):
                entries = raw.get(section) or []
                label = _entry_label(entries[loc[1]], section, loc[1])
                field = ".".join(str(part) for part in loc[2:]) or "(entry)"
                problems.append(f"{label}.{field}: {err['msg']}")
            else:
                problems.append(f"{section}: {err['msg']}")
    # Raised outside the except: the validation error (inputs may be secrets) is not chained.
    if problems or data is None:
        raise ReferenceDataError(source, problems)
    return data


def read_reference_file(path: Path, *,
                        secrets: SecretResolver | None = os.environ.get) -> ReferenceData:
    """Read and parse a reference-data file (YAML, or JSON by extension).

    ``secrets``: how the ``*_env`` variables are read to refuse, at load time, a value that
    is set but no protocol can carry (default: the environment; None skips the check).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ReferenceDataError(str(path), [f"cannot read the file: {exc.strerror}"]) from None
    data = parse_reference_text(text, str(path))
    if secrets is not None:
        problems = secret_problems(data, secrets)
        if problems:
            raise ReferenceDataError(str(path), problems)
    return data


def check_duplicates(data: ReferenceData) -> list[str]:
    """Ids appearing twice in one section of the same file."""
    problems = []
    for section in _SECTIONS:
        seen: set[str] = set()
        key = "name" if section in ("stocks", "templates") else "id"
        for index, entry in enumerate(getattr(data, section)):
            value = getattr(entry, key)
            if value in seen:
                problems.append(f"{section}[{index}] ({value}).{key}: appears twice in the file")
            seen.add(value)
    return problems
