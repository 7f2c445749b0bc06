"""How GX's regex expectations are written for DuckDB (used by :mod:`pipelines.quality.gx_runner`, adjustment 5).

GX writes every ``*_match_regex`` expectation as ``REGEXP_MATCHES(column, pattern)``: does the pattern match
anywhere in the value. Most patterns in ``expectations/`` are anchored at both ends (``^[0-9]{8}$``), so they can
only match a whole value, and then DuckDB's ``regexp_full_match`` gives the same answer. It is also much cheaper on
the columns with few distinct values (codes, AGB codes, debit/credit) that DuckDB stores dictionary-encoded (it
evidently evaluates ``regexp_full_match`` once per distinct value there, and ``regexp_matches`` once per row): at ten
million lines, six such regexes of the landing suite took 1.40 s together as partial matches and 0.15 s as full
matches; on columns with a distinct value on nearly every row both take the same time (docs/performance-history.md,
sixteenth round).

A pattern that is not recognised as whole-value stays ``regexp_matches``, so the answer never changes; the check
errs on that side (``\\Q`` quoting, a multi-line flag, an alternative outside parentheses: not whole-value).
"""

from __future__ import annotations

import functools
import re
from typing import Any

#: inline flags at the start of a pattern, e.g. ``(?i)``
_LEADING_FLAGS = re.compile(r"\(\?[a-zA-Z]*\)")
#: an inline flag group that mentions ``m`` anywhere (``^``/``$`` would then match at line ends)
_MULTI_LINE = re.compile(r"\(\?[a-zA-Z-]*m")


def whole_value_pattern(pattern: str) -> bool:
    """True when the RE2 ``pattern`` can only match a whole value: after optional leading inline flags (without
    ``m``), it starts with ``^``, ends with an unescaped ``$``, and has no ``|`` outside parentheses and
    character classes. For such a pattern a partial match and a full match agree on every value (in RE2, ``^``
    and ``$`` without ``m`` match only at the very start and end of the text, not at a newline)."""
    if "\\Q" in pattern or _MULTI_LINE.search(pattern):
        return False
    flags = _LEADING_FLAGS.match(pattern)
    body = pattern[flags.end():] if flags else pattern
    if len(body) < 2 or not body.startswith("^") or not body.endswith("$"):
        return False
    last = len(body) - 1  # the final "$"
    depth, i, in_class = 0, 1, False
    while i < last:
        char = body[i]
        if char == "\\":
            i += 2  # an escaped character, whatever it is
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            i += 1
            if i < last and body[i] == "^":
                i += 1
            if i < last and body[i] == "]":  # a "]" first in a class is a literal
                i += 1
            continue
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:  # not a valid pattern; and "^a)|(b$" would pass the alternative test below
                return False
        elif char == "|" and depth == 0:
            return False
        i += 1
    # i == last: the final "$" was not consumed by an escape ("\$" is a literal dollar)
    return i == last and not in_class and depth == 0


@functools.cache
def compiler_with_full_matches(base: type) -> type:
    """A subclass of the SQLAlchemy statement compiler ``base`` that writes ``REGEXP_MATCHES(column, pattern)``
    as ``regexp_full_match(column, pattern)`` when the pattern is a literal whole-value pattern."""
    from sqlalchemy.sql.elements import BindParameter

    class FullMatchCompiler(base):  # type: ignore[misc, valid-type]
        def visit_regexp_matches_func(self, func: Any, **kwargs: Any) -> str:
            arguments = list(func.clauses)
            pattern = arguments[1] if len(arguments) == 2 else None
            whole = (isinstance(pattern, BindParameter) and isinstance(pattern.value, str)
                     and whole_value_pattern(pattern.value))
            name = "regexp_full_match" if whole else "regexp_matches"
            return name + self.function_argspec(func, **kwargs)

    FullMatchCompiler.__name__ = f"FullMatch{base.__name__}"
    return FullMatchCompiler
