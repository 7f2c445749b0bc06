"""The portability layer: the SQL files in ``sql/`` are written for DuckDB; this turns them into Spark SQL.

sqlglot does the translation (``read="duckdb"``, ``write="spark"``). This module adds explicit rewrites only where
sqlglot's output would run on Spark but give a *different answer* (or not run at all). Every DuckDB-only construct
the SQL files use is listed in :data:`CONSTRUCTS` with how it is translated; docs/spark.md shows the same list.

The rewrites work on the parsed syntax tree, never on text, so comments, string literals and identifiers are left
alone. Anything sqlglot cannot translate raises (``unsupported_level=RAISE``) instead of passing silently.

Assumptions the rewrites rely on (true for every file in ``sql/``, checked by tests/engines):

* ``TRY_CAST`` is only applied to text (raw values); ``CAST`` from text only reads validated profile values.
* ``date_diff`` is only used with the unit ``'day'`` on DATE values.
* ``string_agg`` always has an ``ORDER BY`` (without one, neither engine guarantees the order).

The Spark session must run with ``spark.sql.ansi.enabled=true`` (the default since Spark 4) and
``spark.sql.session.timeZone=UTC``; :func:`pipelines.engines.spark.spark_session` sets both.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlglot
from sqlglot import ErrorLevel, exp

from pipelines.sql_models import remap_schemas


@dataclass(frozen=True)
class Construct:
    name: str
    duckdb: str  # the construct as the SQL files write it
    spark: str  # what runs on Spark
    how: str  # "sqlglot" (translated as is), "rewrite" (an explicit rule here) or "refused" (an error)
    why: str = ""


CONSTRUCTS: tuple[Construct, ...] = (
    Construct(
        "division", "a / b",
        "CASE WHEN CAST(b AS DOUBLE) = 0 AND CAST(a AS DOUBLE) IS NOT NULL THEN CAST(a AS DOUBLE) * "
        "CAST('Infinity' AS DOUBLE) ELSE CAST(a AS DOUBLE) / CAST(b AS DOUBLE) END",
        "rewrite",
        "DuckDB's `/` is always floating-point division (also of integers and decimals) and gives ±inf/NaN for a "
        "zero divisor. Spark divides decimals in decimal arithmetic, rounded to 6 decimals (e.g. sum(cost) / "
        "count(*)), and with ANSI on stops on a zero divisor. Casting both sides to DOUBLE gives the same IEEE "
        "result as DuckDB.",
    ),
    Construct(
        "try_cast_date", "TRY_CAST(text AS DATE)",
        "CASE WHEN text RLIKE '^\\s*0*([0-9]+)([-/ ])([0-9]{1,2})\\2([0-9]{1,2})([^0-9]|$)' THEN "
        "TRY_CAST(<year padded to 4 digits>-<month>-<day> AS DATE) END",
        "rewrite",
        "DuckDB needs year, month and day (separated by '-', '/' or ' ', the same twice; anything after a "
        "complete date, such as a time, is ignored). Spark also accepts '2025' and '2025-03' (as the 1st of "
        "the month), which DuckDB rejects. Not emulated: dates before the year 1 ('(BC)') and DuckDB's special "
        "words 'epoch', 'infinity', '-infinity' (NULL on Spark, so such a row is rejected).",
    ),
    Construct(
        "try_cast_integer", "TRY_CAST(text AS INTEGER)",
        "CASE WHEN text RLIKE '^\\s*[+-]?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][+-]?[0-9]+)?\\s*$' THEN "
        "TRY_CAST(ROUND(TRY_CAST(text AS DECIMAL(38, 18))) AS INT) END",
        "rewrite",
        "DuckDB reads '1985.0' (a Parquet float column as text) as 1985 and rounds '12.5' to 13 (half away from "
        "zero); Spark in ANSI mode returns NULL for both. DuckDB's hexadecimal ('0x10'), binary ('0b11') and "
        "digit-group ('1_000') integers are not emulated (NULL on Spark).",
    ),
    Construct(
        "try_cast_decimal", "TRY_CAST(text AS DECIMAL(p, s))", "TRY_CAST(text AS DECIMAL(p, s))", "sqlglot",
        "Same on both: surrounding spaces, sign, exponent; rounded half away from zero to s decimals; NULL when "
        "out of range. Only DuckDB's '1_000.50' digit groups differ (NULL on Spark).",
    ),
    Construct(
        "regexp_full_match", "regexp_full_match(s, 'pattern')", "s RLIKE '^(?:pattern)\\z'", "rewrite",
        "Spark has no full-match function (sqlglot leaves the DuckDB name). Java's `$` would also match before a "
        "final line break, hence `\\z`.",
    ),
    Construct(
        "date_diff_day", "date_diff('day', a, b)", "DATEDIFF(b, a)", "rewrite",
        "sqlglot writes DATEDIFF(DAY, a, b), which Spark runs as timestampdiff on timestamps in the session time "
        "zone; the two-argument DATEDIFF counts calendar days between DATEs, exactly like DuckDB. Other units "
        "are refused: DuckDB counts unit boundaries crossed, Spark whole units.",
    ),
    Construct(
        "string_agg_ordered", "string_agg(DISTINCT x, ', ' ORDER BY x)",
        "LISTAGG(DISTINCT x, ', ') WITHIN GROUP (ORDER BY x NULLS LAST)", "sqlglot",
        "Spark 4 has LISTAGG. Without ORDER BY neither engine fixes the order, so the files always give one "
        "(a string_agg without ORDER BY is refused).",
    ),
    Construct(
        "last_value_ignore_nulls", "last_value(x IGNORE NULLS) OVER (...)",
        "LAST_VALUE(x) IGNORE NULLS OVER (...)", "sqlglot",
    ),
    Construct(
        "null_order", "ORDER BY x (NULLs last in DuckDB)", "ORDER BY x NULLS LAST", "sqlglot",
        "Spark sorts NULLs first in ascending order; sqlglot makes DuckDB's order explicit.",
    ),
    Construct("make_date", "make_date(y, m, d)", "MAKE_DATE(y, m, d)", "sqlglot"),
    Construct("extract_year", "EXTRACT(year FROM d)", "EXTRACT(YEAR FROM d)", "sqlglot"),
    Construct("types", "VARCHAR, INTEGER, DOUBLE", "STRING, INT, DOUBLE", "sqlglot"),
    Construct(
        "concat_nulls", "a || b", "a || b", "sqlglot",
        "NULL when either side is NULL on both engines (DuckDB's concat() function would skip NULLs; the "
        "files use || and concat_ws, which behave the same on both).",
    ),
    Construct("bool_or", "bool_or(x)", "BOOL_OR(x)", "sqlglot"),
    Construct(
        "arg_max_struct", "arg_max(x, struct_pack(a := a, b := b)) FILTER (WHERE c)",
        "MAX_BY(x, STRUCT(a AS a, b AS b)) FILTER(WHERE c)", "sqlglot",
        "The latest value by a tie-broken order in one aggregation (core.provider_clients); both engines compare "
        "structs field by field.",
    ),
    Construct(
        "cte_not_materialized", "WITH x AS NOT MATERIALIZED (...)", "WITH x AS (...)", "rewrite",
        "How DuckDB evaluates a CTE read more than once: computed again for each read instead of stored in full "
        "(core.claim_lines, where storing it costs ~1 GB at ten million lines). Spark has no such syntax and "
        "plans CTEs itself; the rows are the same.",
    ),
    Construct(
        "integer_division", "a // b", "(refused)", "refused",
        "Not used in the files. For integers DuckDB's // and Spark's DIV agree (truncation), but for a DOUBLE or "
        "DECIMAL DuckDB's // is ordinary division and Spark's DIV truncates; the types are not known here.",
    ),
    Construct(
        "decimal_sum", "sum(decimal)", "SUM(decimal)", "sqlglot",
        "DuckDB widens to DECIMAL(38, s), Spark to DECIMAL(p + 10, s): the values are the same, exactly.",
    ),
)


class TranslationError(ValueError):
    """A construct in a SQL file that this layer cannot translate faithfully."""


# --- rewrite rules ----------------------------------------------------------------------------------------------

_DOUBLE = exp.DataType.build("DOUBLE")
# DuckDB's date reader: year, month, day with the same separator twice, then anything that is not a digit.
_DATE_PATTERN = r"^\s*0*([0-9]+)([-/ ])([0-9]{1,2})\2([0-9]{1,2})([^0-9]|$)"
# What DuckDB can read as a number on the way to an integer (decimal point and exponent allowed).
_NUMBER_PATTERN = r"^\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$"


def _template(spark_sql: str, **parts: exp.Expression) -> exp.Expression:
    """A Spark SQL expression with placeholders ``__name__`` replaced by (copies of) the given nodes."""
    tree = sqlglot.parse_one(spark_sql, read="spark")

    def fill(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and not node.table and node.name.startswith("__") and node.name.endswith("__"):
            return parts[node.name.strip("_")].copy()
        return node

    return tree.transform(fill)


def _as_double(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Cast) and node.to.is_type("double"):
        return node.copy()
    return exp.Cast(this=node.copy(), to=_DOUBLE.copy())


def _division(node: exp.Div) -> exp.Expression:
    """DuckDB: `/` is IEEE double division. Spark: decimal division rounds to 6 decimals; /0 fails in ANSI mode."""
    a, b = _as_double(node.this), _as_double(node.expression)
    if isinstance(node.expression, exp.Literal) and not node.expression.is_string and float(node.expression.name) != 0:
        return exp.Div(this=a, expression=b)
    return _template(
        "CASE WHEN __b__ = 0 AND __a__ IS NOT NULL THEN __a__ * CAST('Infinity' AS DOUBLE) ELSE __a__ / __b__ END",
        a=a, b=b,
    )


def _try_cast_date(value: exp.Expression) -> exp.Expression:
    """DuckDB's TRY_CAST(text AS DATE): a complete y-m-d date; Spark alone would also take '2025' or '2025-03'.

    The y-m-d part is cut out and cast as ISO (the year without leading zeros, padded to the four digits Spark
    wants); anything after it is ignored, as DuckDB does.
    """
    return _template(
        "CASE WHEN __v__ RLIKE __p__ THEN TRY_CAST(CONCAT("
        "LPAD(REGEXP_EXTRACT(__v__, __p__, 1), GREATEST(LENGTH(REGEXP_EXTRACT(__v__, __p__, 1)), 4), '0'), '-', "
        "REGEXP_EXTRACT(__v__, __p__, 3), '-', REGEXP_EXTRACT(__v__, __p__, 4)) AS DATE) END",
        v=value, p=exp.Literal.string(_DATE_PATTERN),
    )


def _try_cast_integer(value: exp.Expression, to: exp.DataType) -> exp.Expression:
    """DuckDB's TRY_CAST(text AS INTEGER) reads decimals and exponents and rounds half away from zero."""
    tree = _template(
        "CASE WHEN __v__ RLIKE __p__ THEN TRY_CAST(ROUND(TRY_CAST(__v__ AS DECIMAL(38, 18))) AS INT) END",
        v=value, p=exp.Literal.string(_NUMBER_PATTERN),
    )
    outer = next(c for c in tree.find_all(exp.TryCast) if isinstance(c.this, exp.Round))
    outer.set("to", to.copy())  # the integer type the file asked for (INTEGER, BIGINT, ...)
    return tree


def _rewrite(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Div):
        return _division(node)
    if isinstance(node, exp.TryCast):
        if node.to.is_type("date"):
            return _try_cast_date(node.this)
        if node.to.is_type(*exp.DataType.INTEGER_TYPES):
            return _try_cast_integer(node.this, node.to)
        return node
    if isinstance(node, exp.RegexpFullMatch):
        pattern = node.expression
        if isinstance(pattern, exp.Literal) and pattern.is_string:
            anchored: exp.Expression = exp.Literal.string(f"^(?:{pattern.name})\\z")
        else:
            anchored = exp.func("CONCAT", exp.Literal.string("^(?:"), pattern.copy(), exp.Literal.string(")\\z"))
        return exp.RegexpLike(this=node.this.copy(), expression=anchored)
    if isinstance(node, exp.DateDiff):
        unit = (node.args.get("unit").name if node.args.get("unit") else "day").lower()
        if unit != "day":
            raise TranslationError(f"date_diff('{unit}', ...) is not translated: only 'day' counts the same on Spark")
        return exp.Anonymous(this="DATEDIFF", expressions=[node.this.copy(), node.expression.copy()])
    if isinstance(node, exp.CTE) and node.args.get("materialized") is not None:
        plain = node.copy()
        plain.set("materialized", None)
        return plain
    if isinstance(node, exp.IntDiv):
        raise TranslationError("a // b is not translated: DuckDB's // and Spark's DIV differ for non-integers")
    if isinstance(node, exp.GroupConcat) and not isinstance(node.this, exp.Order):
        raise TranslationError("string_agg without ORDER BY has no defined order on either engine; add ORDER BY")
    return node


def to_spark(sql: str, schemas: dict[str, str] | None = None, pretty: bool = True, flatten: bool = False) -> str:
    """Spark SQL for a DuckDB SELECT from ``sql/``. ``schemas`` renames schemas (see ``remap_schemas``);
    ``flatten`` turns ``schema.table`` into ``schema_table`` (for temporary views, which have no schema)."""
    if schemas:
        sql = remap_schemas(sql, schemas)
    tree = _bottom_up(sqlglot.parse_one(sql, read="duckdb"))
    if flatten:
        tree = tree.transform(_flatten_table)
    return tree.sql(dialect="spark", pretty=pretty, unsupported_level=ErrorLevel.RAISE)


def _flatten_table(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Table) and node.args.get("db") is not None and not node.args.get("catalog"):
        flat = node.copy()
        flat.set("this", exp.to_identifier(f"{node.db}_{node.name}"))
        flat.set("db", None)
        return flat
    return node


def _bottom_up(node: exp.Expression) -> exp.Expression:
    """Apply the rules children first, so that constructs nested in a rewritten one are translated too (and a
    rule's own output is never rewritten again)."""
    for key, value in list(node.args.items()):
        if isinstance(value, exp.Expression):
            node.set(key, _bottom_up(value))
        elif isinstance(value, list):
            node.set(key, [_bottom_up(v) if isinstance(v, exp.Expression) else v for v in value])
    return _rewrite(node)
