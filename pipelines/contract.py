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
