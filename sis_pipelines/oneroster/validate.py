"""Validate a collection: valid records flow on, invalid ones go to quarantine with a reason."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import orjson
import pandas as pd
import pandera.pandas as pa
import pyarrow as pyarrow_
import pyarrow.compute as pc

from .collections import Collection
from .normalise import Rejects, arrow_schema
from .schemas import REFERENCES, schema_for

# The same record failing many checks needs only a few reasons to be understood.
MAX_REASONS_PER_RECORD = 5


@dataclass
class Validated:
    frame: pd.DataFrame  # valid records, Arrow-backed dtypes
    quarantine: pd.DataFrame  # sourcedId, reason, record

    @property
    def quarantined_share(self) -> float:
        total = len(self.frame) + len(self.quarantine)
        return len(self.quarantine) / total if total else 0.0


def to_frame(table: pyarrow_.Table) -> pd.DataFrame:
    return table.to_pandas(types_mapper=pd.ArrowDtype)


def _legacy_status(table: pyarrow_.Table) -> pyarrow_.Table:
    # OneRoster 1.1 removed 'inactive'; providers still send it and mean 'tobedeleted'.
    status = pc.if_else(pc.equal(table["status"], "inactive"), "tobedeleted", table["status"])
    return table.set_column(table.schema.get_field_index("status"), "status", status)


def _reasons(
    collection: Collection, errors: pa.errors.SchemaErrors, frame: pd.DataFrame
) -> dict[int, list[str]]:
    cases = errors.failure_cases
    by_row: dict[int, list[str]] = {}
    row_level = cases[cases["index"].notna()]
    for column, check, value, index in zip(
        row_level["column"],
        row_level["check"],
        row_level["failure_case"],
        row_level["index"],
        strict=True,
    ):
        reason = _explain(collection, column, str(check), value)
        reasons = by_row.setdefault(int(index), [])
        if reason not in reasons and len(reasons) < MAX_REASONS_PER_RECORD:
            reasons.append(reason)
    frame_level = cases[cases["index"].isna()]
    if len(frame_level):
        # Type mismatches and missing columns concern every record: the collection is unusable.
        detail = "; ".join(
            sorted(
                {
                    f"{c}: {k} {v}"
                    for c, k, v in zip(
                        frame_level["column"],
                        frame_level["check"],
                        frame_level["failure_case"],
                        strict=True,
                    )
                }
            )
        )
        raise ValueError(f"{collection.name}: the collection does not match its schema: {detail}")
    return by_row


def _explain(collection: Collection, column: str | None, check: str, value: object) -> str:
    shown = (
        "null"
        if value is None or (not isinstance(value, list | np.ndarray) and pd.isna(value))
        else repr(value)
    )
    if check == "not_nullable":
        return f"{column}: required but missing"
    if check == "field_uniqueness":
        return f"{column}: duplicate {shown}"
    if column is None or column == collection.name:
        return check  # a check over several columns; its message names them
    return f"{column} {shown}: {check}"


def validate(
    collection: Collection,
    table: pyarrow_.Table,
    references: Mapping[str, pyarrow_.Array],
    rejects: Rejects | None = None,
) -> Validated:
    """Split a normalised collection into valid records and quarantined ones.

    ``references`` holds the sourcedIds of the collections this one refers to (its own
    ids are added here for self-references such as org parents).
    """
    table = _legacy_status(table.cast(arrow_schema(collection)))
    refs = dict(references)
    if any(
        target == collection.name
        for (source, _), target in REFERENCES.items()
        if source == collection.name
    ):
        refs[collection.name] = pc.unique(table["sourcedId"].combine_chunks().drop_null())
    frame = to_frame(table)
    schema = schema_for(collection, refs)
    bad: dict[int, list[str]] = {}
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        bad = _reasons(collection, errors, frame)
    quarantined = [] if rejects is None else [rejects.to_table().to_pandas()]
    if bad:
        rows = np.array(sorted(bad), dtype=np.int64)
        positions = frame.index.get_indexer(rows)
        failing = frame.iloc[positions]
        records = [orjson.dumps(r, default=str).decode() for r in _plain_records(failing)]
        quarantined.append(
            pd.DataFrame(
                {
                    "sourcedId": failing["sourcedId"]
                    .astype(object)
                    .where(failing["sourcedId"].notna(), None)
                    .to_numpy(),
                    "reason": ["; ".join(bad[int(i)]) for i in rows],
                    "record": records,
                }
            )
        )
        keep = np.ones(len(frame), dtype=bool)
        keep[positions] = False
        frame = frame[keep].reset_index(drop=True)
    quarantine = (
        pd.concat(quarantined, ignore_index=True)
        if quarantined
        else pd.DataFrame({"sourcedId": [], "reason": [], "record": []})
    )
    quarantine = quarantine.astype(
        {
            "sourcedId": pd.ArrowDtype(pyarrow_.string()),
            "reason": pd.ArrowDtype(pyarrow_.string()),
            "record": pd.ArrowDtype(pyarrow_.string()),
        }
    )
    return Validated(frame, quarantine)


def _plain_records(frame: pd.DataFrame) -> list[dict]:
    """Rows as plain Python (lists, not arrays) for JSON."""
    return pyarrow_.Table.from_pandas(frame, preserve_index=False).to_pylist()
