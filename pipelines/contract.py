"""The input contract of the landing folder (docs/input-contract.md): file kinds and their columns."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExtractKind:
    name: str  # also the raw table name: raw.<name>
    prefix: str  # a landing file belongs to this kind when its name starts with this prefix
    columns: tuple[str, ...]  # every column of the contract, in contract order
    required: tuple[str, ...]  # columns that must be present in the header and non-empty on every row
    decimal_columns: tuple[str, ...]  # columns whose decimal separator is sniffed per file
    # Columns with a type in the contract (column, SQL type of its typed value). A Parquet file that delivers one
    # of them typed keeps the value in that type in raw.<name>_stored (see typed_value_column); CSV files and
    # Parquet columns of another type keep the text, which staging types.
    typed_columns: tuple[tuple[str, str], ...] = ()


CLAIMS = ExtractKind(
    name="claims",
    prefix="claims",
    columns=(
        "claim_id", "related_claim_id", "debit_credit", "uzovi", "provider_agb", "practitioner_agb",
        "client_id", "birth_year", "trajectory_id", "trajectory_start_date", "prestatiecode", "service_date",
        "zvt", "zorglabel", "privacy_flag", "referral_type", "referral_date", "location_id",
        "declared_amount", "allowed_amount", "submitted_date",
    ),
    required=("claim_id", "debit_credit", "provider_agb", "client_id", "prestatiecode", "service_date",
              "declared_amount"),
    decimal_columns=("declared_amount", "allowed_amount"),
    typed_columns=(
        ("birth_year", "INTEGER"), ("trajectory_start_date", "DATE"), ("service_date", "DATE"), ("zvt", "INTEGER"),
        ("privacy_flag", "BOOLEAN"), ("referral_date", "DATE"), ("declared_amount", "DECIMAL(14, 2)"),
        ("allowed_amount", "DECIMAL(14, 2)"), ("submitted_date", "DATE"),
    ),
)

CONTRACTS = ExtractKind(
    name="contracts",
    prefix="contracts",
    columns=("provider_agb", "year", "provider_name", "provider_type", "omzetmaximum"),
    required=("provider_agb", "year", "provider_type"),
    decimal_columns=("omzetmaximum",),
    typed_columns=(("year", "INTEGER"), ("omzetmaximum", "DECIMAL(16, 2)")),
)

KINDS = (CLAIMS, CONTRACTS)
EXTENSIONS = (".csv", ".parquet")

# The clear client identifier never reaches the warehouse: raw.claims holds client_key instead.
IDENTIFIER_COLUMN = "client_id"
PSEUDONYM_COLUMN = "client_key"


def kind_of(file_name: str) -> ExtractKind | None:
    lower = file_name.lower()
    if not lower.endswith(EXTENSIONS):
        return None
    for kind in KINDS:
        if lower.startswith(kind.prefix):
            return kind
    return None


def raw_columns(kind: ExtractKind) -> tuple[str, ...]:
    """Columns of raw.<kind>: the contract's, as text, with client_id replaced by its keyed hash."""
    return tuple(PSEUDONYM_COLUMN if c == IDENTIFIER_COLUMN else c for c in kind.columns)


def stored_table(kind: ExtractKind) -> str:
    """The table that holds raw.<kind>'s rows; raw.<kind> is a view over it that shows every value as text."""
    return f"raw.{kind.name}_stored"


def typed_value_column(column: str) -> str:
    """The column of raw.<kind>_stored with ``column``'s value as a Parquet file typed it (null otherwise)."""
    return f"{column}_value"


def raw_text_view_sql(kind: ExtractKind, typed_parts: bool = False) -> str:
    """raw.<kind> as received, every value text: a typed value shown as its text (as CAST gives it). With
    ``typed_parts``, each typed column ``x`` also as the two stored columns it is shown from: ``x__text`` (the text
    a file delivered) and ``x__value`` (the value a Parquet file delivered typed)."""
    typed = dict(kind.typed_columns)
    shown = [f"coalesce({c}, {typed_value_text(typed_value_column(c))}) AS {c}" if c in typed else c
             for c in raw_columns(kind)]
    for c in typed if typed_parts else ():
        text, value = typed_parts_of(c)
        shown.append(f"{c} AS {text}, {typed_value_column(c)} AS {value}")
    return f"SELECT load_id, source_row, {', '.join(shown)} FROM {stored_table(kind)}"


def typed_parts_of(column: str) -> tuple[str, str]:
    """The columns of :func:`raw_text_view_sql` with ``typed_parts`` that hold a typed column's stored text and
    value."""
    return f"{column}__text", f"{column}__value"


def typed_value_text(expression: str) -> str:
    """A typed value as raw.<kind> shows it: its text as CAST gives it."""
    return f"CAST({expression} AS VARCHAR)"


INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                 "UBIGINT", "UHUGEINT"}


def kept_typed(parquet_type: str, contract_type: str) -> bool:
    """Whether a Parquet column of ``parquet_type`` is kept typed for a contract column of ``contract_type``: only
    when its text (CAST AS VARCHAR) is that of the contract type, so that raw.<kind> shows what was delivered. A
    value that does not fit the contract type (a BIGINT birth year above 2^31) keeps its text instead."""
    parquet_type = parquet_type.upper()
    if contract_type in ("DATE", "BOOLEAN"):
        return parquet_type == contract_type
    if contract_type == "INTEGER":
        return parquet_type in INTEGER_TYPES
    if contract_type.startswith("DECIMAL"):
        return parquet_type.startswith("DECIMAL") and parquet_type.replace(" ", "").endswith(",2)")
    return False


def cast_cannot_fail(parquet_type: str, contract_type: str) -> bool:
    """Whether every value of ``parquet_type`` fits ``contract_type`` (a kept_typed pair)."""
    parquet_type, contract_type = parquet_type.upper().replace(" ", ""), contract_type.upper().replace(" ", "")
    if parquet_type == contract_type:
        return True
    if contract_type == "INTEGER":
        return parquet_type in ("TINYINT", "SMALLINT", "UTINYINT", "USMALLINT")
    if contract_type.startswith("DECIMAL(") and parquet_type.startswith("DECIMAL("):
        return int(parquet_type[8:].split(",")[0]) <= int(contract_type[8:].split(",")[0])
    return False
