"""OneRoster list queries a simulated provider answers: filters and Link headers."""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

FILTER = re.compile(r"^\s*([A-Za-z.]+)\s*(>=|<=|!=|=|>|<|~)\s*'([^']*)'\s*$")


def links(url: str, offset: int, limit: int, total: int) -> str:
    links = [f'<{url}?limit={limit}&offset=0>; rel="first"']
    last = max(0, ((total - 1) // limit) * limit)
    links.append(f'<{url}?limit={limit}&offset={last}>; rel="last"')
    if offset + limit < total:
        links.append(f'<{url}?limit={limit}&offset={offset + limit}>; rel="next"')
    if offset > 0:
        links.append(f'<{url}?limit={limit}&offset={max(0, offset - limit)}>; rel="prev"')
    return ", ".join(links)


def apply_filter(
    frame: pd.DataFrame, collection: Any, expression: str
) -> tuple[pd.DataFrame, str | None]:
    """OneRoster filter: up to two predicates joined by one AND or OR."""
    joiner = " AND " if " AND " in expression else " OR " if " OR " in expression else None
    clauses = expression.split(joiner) if joiner else [expression]
    if len(clauses) > 2:
        return frame, "at most two predicates"
    masks = []
    columns = {f.rest_name: f.column for f in collection.fields}
    for clause in clauses:
        match = FILTER.match(clause)
        if not match:
            return frame, f"cannot parse filter {clause!r}"
        field, op, value = match.groups()
        column = columns.get(field)
        if column is None or column not in frame.columns:
            return frame, f"unknown filter field {field}"
        series = frame[column]
        if column == "dateLastModified":
            series = pd.to_datetime(series, utc=True)
            value_cmp: Any = pd.Timestamp(value)
            value_cmp = value_cmp.tz_localize("UTC") if value_cmp.tzinfo is None else value_cmp
        else:
            series = series.astype(str)
            value_cmp = value
        masks.append(
            {
                "=": lambda s, v: s == v,
                "!=": lambda s, v: s != v,
                ">": lambda s, v: s > v,
                ">=": lambda s, v: s >= v,
                "<": lambda s, v: s < v,
                "<=": lambda s, v: s <= v,
                "~": lambda s, v: s.astype(str).str.contains(v, regex=False),
            }[op](series, value_cmp)
        )
    mask = (
        masks[0]
        if len(masks) == 1
        else (masks[0] & masks[1] if joiner == " AND " else masks[0] | masks[1])
    )
    return frame[mask], None
