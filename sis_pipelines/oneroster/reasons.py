"""Why records were quarantined or repaired, grouped: what a data engineer reads first.

Reasons that differ only in their values (``sourcedId 'x'``, a line number) are one group;
a record quarantined because a record it needs was quarantined is grouped under that root
record, so one bad org reads "1 org → 412 users" and not 412 unrelated lines.
"""

from __future__ import annotations

import pandas as pd

from .csv_bundle import PLACED
from .shown import MAX_SHOWN
from .validate import ROOT

VALUE = r"'[^']*'(?:… \([\d,]+ characters\))?"


def grouped(frame: pd.DataFrame, limit: int = 10) -> pd.DataFrame:
    """(reason, records, example) for the most frequent reasons of ``frame`` (sourcedId,
    reason): a cascade's reason is its root's."""
    if not len(frame):
        return pd.DataFrame({"reason": [], "records": [], "example": []})
    reasons = frame["reason"].astype(str)
    roots = reasons.str.extract(f"\\({ROOT}(.*)\\)$", expand=False)
    general = reasons.str.replace(PLACED, "", regex=True).str.replace(VALUE, "'…'", regex=True)
    group = ("needs a quarantined record: " + roots).where(roots.notna(), general)
    table = (
        pd.DataFrame({"group": group, "example": frame["sourcedId"].astype(str).str[:MAX_SHOWN]})
        .groupby("group", sort=False)
        .agg(records=("example", "size"), example=("example", "first"))
        .sort_values("records", ascending=False, kind="stable")
        .head(limit)
        .reset_index()
        .rename(columns={"group": "reason"})
    )
    return table


def markdown(frame: pd.DataFrame, limit: int = 10) -> str:
    """The groups as a Markdown table (for the check's metadata in the UI)."""
    table = grouped(frame, limit)
    if not len(table):
        return "none"
    rows = [
        f"| {r.reason.replace('|', '/')} | {r.records} | `{r.example}` |"
        for r in table.itertuples()
    ]
    return "| reason | records | example |\n|---|---:|---|\n" + "\n".join(rows)
