"""Metric names: those a real Hockeypuck 2.3.3 exports, and those a PromQL expression queries.

Shared by the unit tests (dashboard and rule files) and the functional promtool tests.
"""

from __future__ import annotations

import re
from pathlib import Path

METRICS_DIR = Path(__file__).parent / "data" / "hockeypuck-2.3.3"
RECORDED_SCRAPES = (METRICS_DIR / "metrics.txt", METRICS_DIR / "metrics-recon-peer.txt")

# Series Prometheus makes itself for every scrape target: not in any /metrics page.
SCRAPE_SERIES = frozenset({"up"})

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "by", "without", "on"})
_KEYWORDS |= {"ignoring", "group_left", "group_right", "inf", "nan"}


def exported_metric_names(paths: tuple[Path, ...] = RECORDED_SCRAPES) -> frozenset[str]:
    """Every metric name in the recorded scrapes (samples and `# TYPE` lines)."""
    names: set[str] = set()
    for path in paths:
        for line in path.read_text().splitlines():
            if line.startswith("# TYPE "):
                names.add(line.split()[2])
            elif line and not line.startswith("#"):
                match = re.match(_NAME, line)
                assert match, line
                names.add(match.group(0))
    return frozenset(names)


def queried_metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (Grafana `$variables` allowed).

    A rough parser, enough for the expressions of this charm: string literals, label matchers,
    range and subquery brackets, grouping clauses, variables and numbers are removed; of the
    identifiers left, those followed by `(` are functions or aggregations, the rest (other
    than keywords) are metric names.
    """
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^{}]*\}", " ", text)
    text = re.sub(r"\[[^\[\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", text)
    text = re.sub(r"\$\{?\w+\}?", " ", text)
    text = re.sub(r"(?<![\w.])\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?:[smhdwy])?\b", " ", text)
    names = set()
    for match in re.finditer(_NAME + r"(?=\s*(\()?)", text):
        name = match.group(0)
        if match.group(1) or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names
