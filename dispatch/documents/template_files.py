"""Template files: confined to the templates directory, compiled once per (path, mtime).

A template ``file`` is a relative path (``pdf/standard.yaml``). It must stay inside the
templates directory after resolving symlinks; ``..`` and absolute paths are refused before
anything is opened.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Generic, TypeVar

from dispatch.errors import TemplateError

T = TypeVar("T")


def resolve_template(templates_dir: Path, file: str, *, label: str | None = None) -> Path:
    """The real path of template ``file`` under ``templates_dir``.

    Raises:
        TemplateError: the path is absolute, contains ``..``, leaves the directory through
            a symlink, or is not an existing regular file.
    """
    shown = label or f"template file {file!r}"
    if not file or "\x00" in file:
        raise TemplateError(f"{shown}: empty or invalid file name")
    pure = PurePosixPath(file.replace("\\", "/"))
    if pure.is_absolute() or Path(file).is_absolute() or (pure.parts and ":" in pure.parts[0]):
        raise TemplateError(
            f"{shown}: file {file!r} is absolute; give a path relative to the "
            f"templates directory, e.g. pdf/standard.yaml"
        )
    if ".." in pure.parts:
        raise TemplateError(f"{shown}: file {file!r} must not contain '..'")
    root = templates_dir.resolve()
    path = (root / Path(*pure.parts)).resolve()
    if not path.is_relative_to(root):
        raise TemplateError(
            f"{shown}: file {file!r} resolves to {path}, outside the templates "
            f"directory {root} (a symlink?)"
        )
    if not path.is_file():
        raise TemplateError(
            f"{shown}: file {file!r} does not exist in the templates directory {root}"
        )
    return path


class CompiledCache(Generic[T]):
    """Compiled templates keyed by path and invalidated when the file's mtime or size changes.

    A file is compiled once however many threads ask for it at the same moment: the others
    wait on that file's own lock and take the result (a run's concurrent sends all start by
    rendering the same templates). Other files compile meanwhile; a failed compile is not
    kept, so the next caller tries again.
    """

    def __init__(self, compile_file: Callable[[Path], T]) -> None:
        self._compile = compile_file
        self._entries: dict[Path, tuple[tuple[int, int], T]] = {}
        self._lock = threading.Lock()
        self._compiling: dict[Path, threading.Lock] = {}

    def get(self, path: Path, compile_file: Callable[[Path], T] | None = None) -> T:
        """The compiled form of ``path``, compiled (by ``compile_file`` if given) when stale."""
        try:
            st = os.stat(path)
        except OSError as exc:
            raise TemplateError(f"template file {path}: cannot read it ({exc.strerror})") from None
        stamp = (st.st_mtime_ns, st.st_size)
        entry = self._entries.get(path)
        if entry is not None and entry[0] == stamp:
            return entry[1]
        with self._lock:
            gate = self._compiling.setdefault(path, threading.Lock())
        with gate:
            entry = self._entries.get(path)
            if entry is not None and entry[0] == stamp:  # compiled while this one waited
                return entry[1]
            compiled = (compile_file or self._compile)(path)
            with self._lock:
                self._entries[path] = (stamp, compiled)
        return compiled

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
