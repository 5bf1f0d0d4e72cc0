"""Hot writes compiled once per dialect and run on the caller's DBAPI cursor.

The ERP executor writes an order, its lines and its transactions for every request. Through
``Connection.execute`` each statement pays SQLAlchemy's per-call work (cache key, parameter
construction, execution context, result set-up): that was over half of the executor's CPU,
more than SQLite's own (bench/RESULTS.md, issue 13). A :class:`Prepared` statement is
compiled once, with SQLAlchemy's own SQL and bind processors for the dialect (dates, JSON,
decimals and casts exactly as ``Connection.execute`` would send them), and runs as one
``executemany`` on the connection's DBAPI cursor, inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.dml import UpdateBase

Processor = Callable[[Any], Any] | None


Compiled = tuple[Dialect, str, list[tuple[str, Processor]], bool]


class Prepared:
    """An INSERT or UPDATE without RETURNING; its rows name every bound value.

    The rows' keys are the columns an INSERT sets (every column with a Python-side default
    named, so none has to be computed) or the ``bindparam`` names of an UPDATE; it is
    compiled once per dialect and set of keys.
    """

    def __init__(self, statement: UpdateBase) -> None:
        self._statement = statement
        self._compiled: dict[tuple[int, frozenset[str]], Compiled] = {}

    def _for(self, dialect: Dialect, keys: frozenset[str]) -> Compiled:
        key = (id(dialect), keys)
        if key not in self._compiled:
            self._compiled[key] = self._compile(dialect, keys)
        return self._compiled[key]

    def _compile(self, dialect: Dialect, keys: frozenset[str]) -> Compiled:
        compiled: Any = self._statement.compile(dialect=dialect, column_keys=sorted(keys),
                                                for_executemany=True)
        if getattr(compiled, "insert_prefetch", None) or \
                getattr(compiled, "update_prefetch", None):
            raise ValueError(f"{self._statement}: rows must name every column that has a "
                             "Python-side default")
        names = list(compiled.positiontup or ()) if compiled.positional \
            else list(compiled.binds)
        if set(names) != keys:
            raise ValueError(f"{self._statement}: rows name {sorted(keys)}, the statement "
                             f"binds {sorted(names)}")
        binds = [(name, compiled.binds[name].type.dialect_impl(dialect)
                  .bind_processor(dialect)) for name in names]
        return (dialect, compiled.string, binds, bool(compiled.positional))

    def run(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Execute for every row (all with the same keys), in ``conn``'s transaction."""
        if not rows:
            return
        _, sql, binds, positional = self._for(conn.dialect, frozenset(rows[0]))
        processed = [(index, process) for index, (_, process) in enumerate(binds) if process]
        params: list[Any] = []
        last: dict[int, tuple[Any, Any]] = {}
        for row in rows:
            values = [row[name] for name, _ in binds]
            for index, process in processed:
                value = values[index]
                seen = last.get(index)
                if seen is not None and seen[0] is value:  # rows share their `now`
                    values[index] = seen[1]
                else:
                    values[index] = process(value)
                    last[index] = (value, values[index])
            params.append(values if positional else
                          {name: value for (name, _), value in zip(binds, values, strict=True)})
        cursor = conn.connection.cursor()
        try:
            cursor.executemany(sql, params)
        finally:
            cursor.close()
