"""Tests for pipelines.quality.gx_runner: GX expectations evaluated inside DuckDB.

Every expected count below was counted by hand from ROWS.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from pipelines.quality.gx_runner import (
    ExpectationOutcome,
    build_data_docs,
    load_suite,
    run_validation,
    validate_table,
)

# claim_id, agb_code, setting, minutes, start_date, end_date
ROWS = [
    (1, "12345678", "A", 30, "2024-01-01", "2024-01-02"),
    (2, "87654321", "B", 60, "2024-01-01", "2024-01-01"),  # end == start: ok (or_equal)
    (3, "1234567", "C", 45, "2024-01-05", "2024-01-06"),  # agb 7 digits
    (3, "ABCDEFGH", "Z", 90, "2024-01-05", "2024-01-05"),  # duplicate id, agb letters, setting Z
    (5, None, "A", -5, "2024-02-01", "2024-01-15"),  # agb NULL (ignored), minutes < 0, end < start
    (None, "11111111", None, 1000, None, "2024-01-01"),  # id NULL, setting NULL, minutes > 480
    (7, "123456789", "B", 480, "2024-01-07", "2024-01-08"),  # agb 9 digits; 480 is inclusive
    (8, "22222222", "A", 0, "2024-01-08", "2024-01-09"),  # 0 is inclusive
    (9, "33333333", "C", None, "2024-01-09", "2024-01-09"),  # minutes NULL (ignored)
    (10, "44444444", "A", 120, "2024-03-01", "2024-02-28"),  # end < start
]

# (expectation, kwargs, meta) -> (success, unexpected_count); None = no row count for this type
CASES = [
    ("expect_column_to_exist", {"column": "claim_id"}, {"severity": "fatal"}, True, None),
    ("expect_column_to_exist", {"column": "not_there"}, {}, False, None),
    (
        "expect_column_values_to_not_be_null",
        {"column": "claim_id"},
        {"severity": "error"},
        False,
        1,
    ),
    ("expect_column_values_to_be_unique", {"column": "claim_id"}, {"severity": "error"}, False, 2),
    (
        "expect_column_values_to_match_regex",
        {"column": "agb_code", "regex": "^[0-9]{8}$"},
        {"severity": "error"},
        False,
        3,
    ),
    (
        "expect_column_values_to_be_in_set",
        {"column": "setting", "value_set": ["A", "B", "C"]},
        {},
        False,
        1,
    ),
    (
        "expect_column_values_to_be_in_set",
        {"column": "setting", "value_set": ["A", "B", "C", "Z"]},
        {},
        True,
        0,
    ),
    (
        "expect_column_values_to_be_between",
        {"column": "minutes", "min_value": 0, "max_value": 480},
        {},
        False,
        2,
    ),
    # 2 of 9 non-null rows outside: 7/9 = 0.78 >= 0.7
    (
        "expect_column_values_to_be_between",
        {"column": "minutes", "min_value": 0, "max_value": 480, "mostly": 0.7},
        {},
        True,
        2,
    ),
    # ... but 0.78 < 0.8
    (
        "expect_column_values_to_be_between",
        {"column": "minutes", "min_value": 0, "max_value": 480, "mostly": 0.8},
        {},
        False,
        2,
    ),
    ("expect_table_row_count_to_be_between", {"min_value": 1, "max_value": 100}, {}, True, None),
    ("expect_table_row_count_to_be_between", {"min_value": 20}, {}, False, None),
    (
        "expect_column_pair_values_a_to_be_greater_than_b",
        {
            "column_A": "end_date",
            "column_B": "start_date",
            "or_equal": True,
            "ignore_row_if": "either_value_is_missing",
        },
        {"severity": "error"},
        False,
        2,
    ),
]


def _write_suite(path: Path, name: str, expectations: list[dict]) -> Path:
    path.write_text(json.dumps({"name": name, "expectations": expectations}), encoding="utf-8")
    return path


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    path = tmp_path / "claims.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA staging")
    con.execute(
        "CREATE TABLE staging.claim_lines (claim_id INTEGER, agb_code VARCHAR, setting VARCHAR,"
        " minutes INTEGER, start_date DATE, end_date DATE)"
    )
    con.executemany("INSERT INTO staging.claim_lines VALUES (?, ?, ?, ?, ?, ?)", ROWS)
    # same name in another schema, with no bad rows: must not be picked up by mistake
    con.execute("CREATE TABLE main.claim_lines AS SELECT 1 AS claim_id")
    con.close()
    return path


@pytest.fixture()
def suite_path(tmp_path: Path) -> Path:
    return _write_suite(
        tmp_path / "claim_lines.json",
        "claim_lines",
        [{"type": t, "kwargs": kw, "meta": meta} for t, kw, meta, _, _ in CASES],
    )


def test_every_expectation_is_evaluated_in_duckdb_with_hand_counted_results(db, suite_path):
    outcomes = validate_table(db, "staging.claim_lines", suite_path)

    assert len(outcomes) == len(CASES)
    for outcome, (etype, kwargs, meta, success, unexpected) in zip(outcomes, CASES, strict=True):
        label = f"{etype} {kwargs}: {outcome.message}"
        assert isinstance(outcome, ExpectationOutcome)
        assert outcome.expectation == etype, label  # results come back in suite order
        assert outcome.suite == "claim_lines"
        assert outcome.evaluated is True, label
        assert outcome.success is success, label
        assert outcome.unexpected_count == unexpected, label
        if unexpected is not None:
            assert outcome.element_count == len(ROWS), label
        assert outcome.severity == meta.get("severity", "warn"), label
        assert "staging.claim_lines" in outcome.message, label
        assert ("FAILED" in outcome.message) is (not success), label


def test_samples_columns_and_messages(db, suite_path):
    outcomes = validate_table(db, "staging.claim_lines", suite_path)

    def get(etype: str, **kwargs) -> ExpectationOutcome:
        matches = [
            o
            for o in outcomes
            if o.expectation == etype and all(o.kwargs.get(k) == v for k, v in kwargs.items())
        ]
        assert len(matches) == 1, (etype, kwargs)
        return matches[0]

    regex = get("expect_column_values_to_match_regex")
    assert sorted(regex.unexpected_sample) == ["1234567", "123456789", "ABCDEFGH"]
    assert regex.column == "agb_code"
    assert regex.kwargs["regex"] == "^[0-9]{8}$"
    assert "3 of 10 rows" in regex.message and "staging.claim_lines.agb_code" in regex.message

    assert get("expect_column_values_to_be_unique").unexpected_sample == ["3", "3"]
    assert get(
        "expect_column_values_to_be_in_set", value_set=["A", "B", "C"]
    ).unexpected_sample == ["Z"]
    assert sorted(get("expect_column_values_to_be_between", mostly=0.8).unexpected_sample) == [
        "-5",
        "1000",
    ]
    pair = get("expect_column_pair_values_a_to_be_greater_than_b")
    assert pair.column == "end_date, start_date"
    assert len(pair.unexpected_sample) == 2 and all(
        isinstance(v, str) for v in pair.unexpected_sample
    )
    rows = get("expect_table_row_count_to_be_between", max_value=100)
    assert rows.column is None and rows.observed_value == len(ROWS)
    assert "batch_id" not in rows.kwargs


def test_expectation_that_cannot_be_evaluated_is_reported_as_such(db, tmp_path):
    suite = _write_suite(
        tmp_path / "broken.json",
        "broken",
        [
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "no_such_column"}},
            {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "claim_id"}},
        ],
    )
    broken, fine = validate_table(db, "staging.claim_lines", suite)

    assert broken.evaluated is False and broken.success is False and not broken.failed
    assert broken.unexpected_count is None
    assert "could not be evaluated" in broken.message and "no_such_column" in broken.message
    # the error does not poison the shared connection for the next expectation
    assert fine.evaluated is True and fine.unexpected_count == 2


def test_load_suite_rejects_unknown_expectation_type(tmp_path):
    path = _write_suite(
        tmp_path / "typo.json",
        "typo",
        [
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a"}},
            {"type": "expect_column_values_to_be_uniqe", "kwargs": {"column": "a"}},
        ],
    )
    with pytest.raises(ValueError, match="typo.json") as excinfo:
        load_suite(path)
    assert "expect_column_values_to_be_uniqe" in str(excinfo.value)


@pytest.mark.parametrize(
    "expectation",
    [
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "a", "mostly": 7}},
        {
            "type": "expect_column_values_to_not_be_null",
            "kwargs": {"column": "a"},
            "meta": {"severity": "critical"},
        },
    ],
    ids=["invalid-kwargs", "invalid-severity"],
)
def test_load_suite_rejects_invalid_expectations(tmp_path, expectation):
    path = _write_suite(tmp_path / "bad.json", "bad", [expectation])
    with pytest.raises(ValueError, match="bad.json"):
        load_suite(path)


def test_load_suite_keeps_every_expectation(suite_path):
    suite = load_suite(suite_path)
    assert suite.name == "claim_lines"
    assert len(suite.expectations) == len(CASES)


def test_repeated_calls_other_tables_and_file_is_released(db, tmp_path, suite_path):
    other = _write_suite(
        tmp_path / "main.json",
        "main_claims",
        [
            {
                "type": "expect_table_row_count_to_be_between",
                "kwargs": {"min_value": 1, "max_value": 1},
            }
        ],
    )
    for _ in range(2):
        assert [o.success for o in validate_table(db, "claim_lines", other)] == [True]
        outcomes = validate_table(db, "staging.claim_lines", suite_path)
        assert all(o.evaluated for o in outcomes)
        assert [o.unexpected_count for o in outcomes] == [c[4] for c in CASES]

    # every connection was closed: the file can be opened for writing in this process
    con = duckdb.connect(str(db))
    con.execute("INSERT INTO main.claim_lines VALUES (2)")
    con.close()
    assert [o.success for o in validate_table(db, "claim_lines", other)] == [False]


def test_validating_through_an_open_writer_connection_gives_the_same_outcomes_and_leaves_it_open(db, suite_path):
    """A check validates on its own read-write connection (which a read-only open would refuse): GX runs on
    cursors of it, sees what it committed, and closes them again."""
    con = duckdb.connect(str(db))
    try:
        with pytest.raises(RuntimeError, match="read-only"):
            validate_table(db, "staging.claim_lines", suite_path)  # the file is open for writing in this process
        # the bad agb_code of row 3 corrected, committed on the writer connection, not yet closed
        con.execute("UPDATE staging.claim_lines SET agb_code = '12345670' WHERE agb_code = '1234567'")
        validation = run_validation(db, "staging.claim_lines", suite_path, connection=con)
        counts = [o.unexpected_count for o in validation.outcomes]
        regex = [i for i, (etype, kw, *_rest) in enumerate(CASES)
                 if etype == "expect_column_values_to_match_regex" and kw["column"] == "agb_code"]
        assert regex and all(counts[i] == CASES[i][4] - 1 for i in regex)
        assert [c for i, c in enumerate(counts) if i not in regex] == \
            [c[4] for i, c in enumerate(CASES) if i not in regex]
        assert all(o.evaluated for o in validation.outcomes)
        # the connection is still usable, and it holds no transaction or search_path of GX's
        assert con.execute("SELECT current_schema()").fetchone() == ("main",)
        assert con.execute("SELECT count(*) FROM claim_lines").fetchone() == (1,)  # main.claim_lines
    finally:
        con.close()
    # every cursor was closed with the connection: the file opens read-only again
    assert len(validate_table(db, "staging.claim_lines", suite_path)) == len(CASES)


def test_missing_table_and_bad_names_raise(db, suite_path):
    with pytest.raises(ValueError, match="staging.nope"):
        validate_table(db, "staging.nope", suite_path)
    with pytest.raises(ValueError):
        validate_table(db, "staging.claim_lines; DROP TABLE x", suite_path)


def test_build_data_docs_writes_a_local_site(db, suite_path, tmp_path):
    validation = run_validation(db, "staging.claim_lines", suite_path)
    index = build_data_docs([validation], tmp_path / "docs")

    assert index == (tmp_path / "docs" / "index.html").resolve() and index.is_file()
    pages = list((tmp_path / "docs" / "validations").rglob("*.html"))
    assert len(pages) == 1
    html = index.read_text(encoding="utf-8")
    # the script-free list that works offline links the validation page
    assert pages[0].relative_to(index.parent).as_posix() in html
    assert "FAILED: claim_lines on staging.claim_lines" in html
    assert "^[0-9]{8}$" in pages[0].read_text(encoding="utf-8")


def _validate_recording_sql(db: Path, suite: Path) -> tuple[list[ExpectationOutcome], list[str]]:
    """The outcomes of ``suite`` on staging.claim_lines, and every SQL statement GX ran for them."""
    import sqlalchemy
    from sqlalchemy import event

    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(sqlalchemy.engine.Engine, "before_cursor_execute", record)
    try:
        return validate_table(db, "staging.claim_lines", suite), statements
    finally:
        event.remove(sqlalchemy.engine.Engine, "before_cursor_execute", record)


def test_samples_are_fetched_only_for_expectations_that_found_rows(db, tmp_path):
    """A "first failing values" query scans the whole table when nothing fails: only the second pass, for
    the expectations with unexpected rows, asks for samples."""
    suite = _write_suite(tmp_path / "two.json", "two", [
        {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "agb_code", "regex": "^[0-9]{8}$"}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "setting",
                                                                   "value_set": ["A", "B", "C", "Z"]}},
    ])
    (regex, in_set), statements = _validate_recording_sql(db, suite)
    assert (regex.unexpected_count, in_set.unexpected_count) == (3, 0)
    assert sorted(regex.unexpected_sample) == ["1234567", "123456789", "ABCDEFGH"]
    sample_queries = [s for s in statements if "AS unexpected_values" in s]
    # pass 1 asks both for no samples (LIMIT 0, answered without a scan); pass 2 asks for agb_code's only
    assert sum("agb_code AS unexpected_values" in s for s in sample_queries) == 2
    assert sum("setting AS unexpected_values" in s for s in sample_queries) == 1


def test_gx_is_imported_without_loading_the_modules_it_needs_only_for_unused_expectations():
    """scipy.stats (KL divergence, KS tests) is loaded lazily: importing GX does not run it, and it works when
    used."""
    script = (
        "import sys\n"
        "import pipelines.quality.gx_runner as runner\n"
        "lazy = {n: type(sys.modules[n]).__name__ for n in runner.DEFERRED_BY_GX}\n"
        "assert lazy == {'scipy.stats': '_LazyModule'}, lazy\n"
        "from scipy import stats\n"
        "assert abs(stats.entropy([0.5, 0.5]) - 0.6931471805599453) < 1e-12\n"
        "print('ok')\n"
    )
    run_in_a_new_process(script)


def test_column_metadata_comes_from_duckdb_without_the_postgres_catalogue(db, tmp_path):
    """GX's column-type metric asks the inspector for the primary key and the columns. duckdb-engine would answer
    through PostgreSQL catalogue queries (the column one fails on DuckDB); the runner's inspector answers from
    DuckDB itself, with the same columns GX's fallback finds and the primary key DuckDB knows."""
    import sqlalchemy
    from sqlalchemy import event

    from pipelines.quality.gx_runner import _CatalogueInspector

    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE staging.keyed (id INTEGER PRIMARY KEY, label VARCHAR)")
    con.execute("INSERT INTO staging.keyed VALUES (1, 'a'), (2, NULL)")
    con.close()
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    suite = _write_suite(tmp_path / "keyed.json", "keyed", [
        {"type": "expect_column_to_exist", "kwargs": {"column": "label"}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "label"}},
    ])
    event.listen(sqlalchemy.engine.Engine, "before_cursor_execute", record)
    try:
        exists, not_null = validate_table(db, "staging.keyed", suite)
    finally:
        event.remove(sqlalchemy.engine.Engine, "before_cursor_execute", record)
    assert (exists.success, not_null.unexpected_count) == (True, 1)
    assert any("duckdb_constraints()" in s for s in statements)
    assert not [s for s in statements if "pg_catalog" in s]

    engine = sqlalchemy.create_engine(f"duckdb:///{db}", connect_args={"read_only": True})
    try:
        with engine.connect() as connection:
            inspector = _CatalogueInspector(sqlalchemy.inspect(engine), connection, engine)
            assert inspector.get_pk_constraint("keyed", schema="staging")["constrained_columns"] == ["id"]
            assert inspector.get_pk_constraint("claim_lines", schema="staging")["constrained_columns"] == []
            # GX's fallback drops the schema (the runner's engine sets DuckDB's search_path for that): main here
            assert [c["name"] for c in inspector.get_columns("claim_lines", schema="main")] == ["claim_id"]
    finally:
        engine.dispose()


def test_the_background_import_of_gx_leaves_no_module_the_run_uses_half_imported():
    """GX is imported in a background thread while the run's steps start. Dagster's event log makes SQLAlchemy
    inspect query values at every step start, through hooks that importing ``sqlalchemy.orm`` registers: that
    module is imported in full before the thread starts, so a step never meets it half-imported."""
    script = (
        "import sys\n"
        "import dagster\n"
        "assert 'sqlalchemy.orm' not in sys.modules\n"
        "from pipelines.quality import preload\n"
        "preload.start()\n"
        # looked up, not imported: an import would wait for the thread to finish it
        "exc = sys.modules.get('sqlalchemy.orm.exc')\n"
        "assert exc is not None and hasattr(exc, 'UnmappedClassError') and hasattr(exc, 'NO_STATE')\n"
        "preload.start().join()\n"
        "print('ok')\n"
    )
    run_in_a_new_process(script)


def run_in_a_new_process(script: str) -> None:
    """Run ``script`` with this interpreter in a new process from the project folder; it must print ``ok``."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_whole_value_regexes_run_as_full_matches_and_the_others_as_partial_matches(db, tmp_path):
    suite = _write_suite(tmp_path / "regexes.json", "regexes", [
        {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "agb_code", "regex": "^[0-9]{8}$"}},
        {"type": "expect_column_values_to_not_match_regex", "kwargs": {"column": "agb_code", "regex": "^1"}},
    ])
    (eight_digits, no_leading_one), statements = _validate_recording_sql(db, suite)
    # 1234567, ABCDEFGH, 123456789; and 12345678, 1234567, 11111111, 123456789 start with 1
    assert (eight_digits.unexpected_count, no_leading_one.unexpected_count) == (3, 4)
    counted = next(s for s in statements if "unexpected_count" in s)
    assert "regexp_full_match(agb_code" in counted and "regexp_matches(agb_code" in counted
    assert "REGEXP_MATCHES" not in counted
