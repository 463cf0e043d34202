"""The line filters of LogQL expressions (`|= "text"`, `!= "text"`, `|~ "re"`, `!~ "re"`).

Enough for this charm's Loki rules: a log line matches an expression when it passes every one
of the expression's line filters (label matchers and range functions are not evaluated).
"""

from __future__ import annotations

import json
import re

_FILTER = re.compile(r'(\|=|!=|\|~|!~)\s*("(?:[^"\\]|\\.)*")')


def line_filters(expr: str) -> list[tuple[str, str]]:
    """(operator, argument) of each line filter, in order; arguments unquoted as LogQL does."""
    return [(operator, json.loads(quoted)) for operator, quoted in _FILTER.findall(expr)]


def passes(line: str, expr: str) -> bool:
    """Whether the line passes every line filter of the expression."""
    for operator, argument in line_filters(expr):
        found = (argument in line) if operator in ("|=", "!=") else bool(re.search(argument, line))
        if found != (operator in ("|=", "|~")):
            return False
    return True
