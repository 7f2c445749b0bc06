"""Whole-value regexes: which patterns GX's REGEXP_MATCHES may be written as regexp_full_match for, checked
against DuckDB's own answers."""

from __future__ import annotations

import duckdb
import pytest

from pipelines.quality.duckdb_regex import whole_value_pattern

WHOLE = [
    "^[0-9]{8}$",
    "^[DdCc]$",
    "^(19|20)[0-9]{2}$",  # the alternatives are inside parentheses
    "^-?([0-9]+|[0-9]{1,3}([.][0-9]{3})+)([.,][0-9]+)?$",
    "(?i)^(true|false|j|n)$",  # leading flags without m
    "^[|]$",  # a | inside a class is a character
    "^[]|]$",  # a ] first in a class is a character, so the | is inside it
    "^a\\\\$",  # an escaped backslash, then the anchor
]
NOT_WHOLE = [
    "^-",  # anchored at the start only
    "[0-9]{8}$",  # at the end only
    "[0-9]{8}",
    "^a|b$",  # an alternative outside parentheses: "^a" or "b$" matches parts of values
    "^a$|^b$",  # (whole-value after all, but the rule does not look into alternatives)
    "^a\\$",  # an escaped dollar is a character, not the end
    "(?m)^a$",  # multi-line: ^ and $ also match at newlines
    "^(?m)a$",
    "^\\Qa|b\\E$",  # quoted text: not followed here, so not taken as whole-value
    "^[a$",  # an unclosed class
    "^(a$",  # an unclosed group
    "^a)|(b$",  # a group closed before it opens
    "$",
    "",
]
VALUES = ["12345678", "1234567", "x12345678", "12345678\n", "a\n12345678", "D", "dd", "1999", "2099", "20",
          "1.234,50", "-12", "true", "TRUE", "nee", "|", "]", "a\\", "a", "b", "ab", "a$", "a$x", "a\nb", "", "x-1"]


def partial_and_full_matches(pattern: str) -> tuple[list[bool], list[bool]]:
    """DuckDB's answers for ``pattern`` on each of VALUES: regexp_matches, then regexp_full_match."""
    return duckdb.connect().execute(
        "SELECT list(regexp_matches(v, $1) ORDER BY i), list(regexp_full_match(v, $1) ORDER BY i) "
        "FROM unnest($2) WITH ORDINALITY AS t(v, i)", [pattern, VALUES]).fetchone()


@pytest.mark.parametrize("pattern", WHOLE)
def test_a_whole_value_pattern_matches_where_it_fully_matches(pattern):
    assert whole_value_pattern(pattern)
    partial, full = partial_and_full_matches(pattern)
    assert partial == full
    assert any(partial) and not all(partial)  # some values match and some do not, so the equality says something


@pytest.mark.parametrize("pattern", NOT_WHOLE)
def test_other_patterns_are_not_taken_as_whole_value(pattern):
    assert not whole_value_pattern(pattern)


def test_the_rule_is_not_vacuous_for_patterns_it_refuses():
    # for these, a partial and a full match differ on some value: writing them as full matches would be wrong
    for pattern in ("^-", "^a|b$", "(?m)^a$", "^(?m)a$", "[0-9]{8}$", "^a\\$"):
        partial, full = partial_and_full_matches(pattern)
        assert partial != full, pattern
