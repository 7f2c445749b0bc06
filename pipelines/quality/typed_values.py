"""The landing suites check a value that a Parquet file delivered typed once per distinct value, not once per row.

``raw.claims`` shows every value as text; a value a Parquet file delivered in its contract type (a DATE, a DECIMAL
amount) is kept typed in ``raw.claims_stored`` and shown as ``CAST(value AS VARCHAR)`` (pipelines/contract.py). The
landing suite's rules on such a column (a regular expression, a set of codes, not empty) then cast and test every
row: at ten million lines ~0.5 s per column, nine columns, ~5 s of the suite's ~6 s. A value's text, and so every
rule's answer on it, depends on the value alone, and a file holds few distinct ones (730 service dates, ~45,000
amounts in ten million lines).

So the view a ``scope: this_run`` check validates (``quality.<check>_this_run``) carries, beside each typed column
``x`` as ``raw.<kind>`` shows it, the stored text ``x__text`` and value ``x__value``; for a run that loaded
:data:`MIN_ROWS` rows or more, :func:`prepare` also stores the distinct values of the run's rows with their text
(``quality.<check>_this_run__x``: ``v``, ``txt``), and the GX execution engine's statement compiler
(:func:`compiler_with_typed_values`) writes each ``CASE WHEN <condition>`` whose condition reads ``x`` and no other
column as

    CASE WHEN x__text IS NULL AND x__value IS NOT NULL
         THEN x__value IN (SELECT v FROM quality.<check>_this_run__x WHERE <condition on txt>)
         ELSE <condition on x__text> END

which is true on exactly the rows the condition is true on: where the file delivered the value typed, ``x`` is that
value's text, which ``txt`` holds; elsewhere ``x`` is ``x__text`` (both null where the value is missing). GX counts
every expectation's unexpected rows with such a ``CASE WHEN`` in one query; the queries that fetch a few failing
values (only for expectations that found some) are left as GX writes them. The landing check of a ten-million-line
run took 6.0 s before and 2.8 s with this, in two full runs taken one after the other (docs/performance-history.md).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from pipelines.contract import KINDS, ExtractKind, raw_text_view_sql, typed_parts_of, typed_value_text

#: Fewer rows than this are checked row by row: making and dropping the nine tables of distinct values costs a
#: nightly file of ~40,000 lines 0.05-0.2 s more than it saves, a ten-million-line load saves ~3 s.
MIN_ROWS = 200_000

#: The attribute of a GX engine's dialect instance that holds the typed columns of the relation it validates.
DIALECT_ATTRIBUTE = "praktijkvariatie_typed_values"


@dataclass(frozen=True)
class TypedColumn:
    name: str  # the typed column as raw.<kind> shows it
    lookup: str  # table of the distinct values (v) with their text (txt)

    @property
    def text(self) -> str:
        """Column of the validated view: the text the file delivered (null where it delivered a value)."""
        return typed_parts_of(self.name)[0]

    @property
    def value(self) -> str:
        """Column of the validated view: the value the file delivered typed (null where it delivered text)."""
        return typed_parts_of(self.name)[1]


def kind_of_raw_view(table: str) -> ExtractKind | None:
    """The extract kind whose ``raw.<kind>`` view ``table`` is, if it has typed columns."""
    return next((k for k in KINDS if table == f"raw.{k.name}" and k.typed_columns), None)


def prepare(con: Any, kind: ExtractKind, view: str, condition: str, min_rows: int = MIN_ROWS
            ) -> dict[str, TypedColumn]:
    """Create ``view`` (``raw.<kind>`` restricted to ``condition``, with ``x__text`` and ``x__value`` beside every
    typed column ``x``) and, when it has ``min_rows`` rows or more, the tables of the distinct typed values of its
    rows. Returns the typed columns that have such a table (none: the suite runs row by row)."""
    con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM ({raw_text_view_sql(kind, typed_parts=True)}) "
                f"AS r WHERE {condition}")
    if con.execute(f"SELECT count(*) FROM {view}").fetchone()[0] < min_rows:
        return {}
    columns = {}
    for c, _ in kind.typed_columns:
        column = TypedColumn(name=c, lookup=lookup_table(view, c))
        con.execute(f"CREATE OR REPLACE TABLE {column.lookup} AS SELECT v, {typed_value_text('v')} AS txt FROM "
                    f"(SELECT DISTINCT {column.value} AS v FROM {view} WHERE {column.value} IS NOT NULL)")
        columns[c] = column
    return columns


def drop(con: Any, table: str, view: str) -> None:
    """Drop the tables of distinct values that :func:`prepare` makes for ``view`` over ``table`` (also those of a
    preparation that failed half-way)."""
    kind = kind_of_raw_view(table)
    for column, _ in kind.typed_columns if kind else ():
        con.execute(f"DROP TABLE IF EXISTS {lookup_table(view, column)}")


def lookup_table(view: str, column: str) -> str:
    return f"{view}__{column}"


@functools.cache
def compiler_with_typed_values(base: type) -> type:
    """A subclass of the SQLAlchemy statement compiler ``base`` that rewrites a ``CASE WHEN`` condition on one typed
    column as the module docstring shows, when the dialect instance carries the typed columns
    (:data:`DIALECT_ATTRIBUTE`); without them it compiles as ``base`` does."""
    import sqlalchemy as sa
    from sqlalchemy.sql import visitors
    from sqlalchemy.sql.elements import ColumnClause

    def single_column(condition: Any) -> str | None:
        names = {e.name for e in visitors.iterate(condition) if isinstance(e, ColumnClause)}
        return names.pop() if len(names) == 1 else None

    def replaced(condition: Any, name: str, by: Any) -> Any:
        return visitors.replacement_traverse(
            condition, {}, lambda e: by if isinstance(e, ColumnClause) and e.name == name else None)

    def on_distinct_values(condition: Any, name: str, column: TypedColumn) -> Any:
        text, value = sa.column(column.text), sa.column(column.value)
        distinct = (sa.select(sa.literal_column("v")).select_from(sa.text(column.lookup))
                    .where(replaced(condition, name, sa.literal_column("txt"))))
        # elsewhere the column shows the delivered text (or is null with both): its text column, so that the query
        # does not read the column itself, whose CAST the view would then compute on every row
        return sa.case((sa.and_(text.is_(None), value.is_not(None)), value.in_(distinct)),
                       else_=replaced(condition, name, text))

    class TypedValuesCompiler(base):  # type: ignore[misc, valid-type]
        def visit_case(self, clause: Any, **kwargs: Any) -> str:
            typed = getattr(self.dialect, DIALECT_ATTRIBUTE, None)
            if typed and clause.value is None:
                whens, changed = [], False
                for condition, result in clause.whens:
                    name = single_column(condition)
                    if name in typed:
                        condition, changed = on_distinct_values(condition, name, typed[name]), True
                    whens.append((condition, result))
                if changed:
                    clause = sa.case(*whens, else_=clause.else_)
            return super().visit_case(clause, **kwargs)

    TypedValuesCompiler.__name__ = f"TypedValues{base.__name__}"
    return TypedValuesCompiler
