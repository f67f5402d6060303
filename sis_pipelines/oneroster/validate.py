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
from .ids import IdSet
from .normalise import Rejects, arrow_schema
from .repair import Repairs, repair
from .schemas import ENUMS, REFERENCES, STATUS, schema_for
from .shown import shown

# The same record failing many checks needs only a few reasons to be understood.
MAX_REASONS_PER_RECORD = 5


@dataclass
class Validated:
    frame: pd.DataFrame  # valid records, Arrow-backed dtypes
    quarantine: pd.DataFrame  # sourcedId, reason, record
    repairs: pd.DataFrame  # sourcedId, field, value (the SIS's), reason: of kept records

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
    quoted = (
        "null"
        if value is None or (not isinstance(value, list | np.ndarray) and pd.isna(value))
        else shown(value)
    )
    if check == "not_nullable":
        return f"{column}: required but missing"
    if check == "field_uniqueness":
        return f"{column}: duplicate {quoted}"
    if column is None or column == collection.name:
        return check  # a check over several columns; its message names them
    return f"{column} {quoted}: {check}"


@dataclass
class Checked:
    """A batch of a collection, checked: the kept records and the failing ones."""

    kept: pd.DataFrame  # Arrow-backed dtypes
    failing: pd.DataFrame  # sourcedId, reason, record
    positions: np.ndarray  # the failing records' rows in the batch


def check(
    collection: Collection,
    table: pyarrow_.Table,
    references: Mapping[str, pyarrow_.Array | IdSet],
    repairs: Repairs,
    quarantined: Mapping[str, pd.DataFrame] | None = None,
    unique: bool = True,
) -> Checked:
    """Repairs and checks the records of ``table`` (the repairs into ``repairs``).

    ``unique``: whether the table is the whole collection, whose sourcedIds are then checked
    to be unique here; a batch's are checked by its writer, over the whole collection.
    """
    table = _legacy_status(table.cast(arrow_schema(collection)))
    columns = {c: t for (source, c), t in REFERENCES.items() if source == collection.name}
    refs = dict(references)
    if collection.name in columns.values():
        refs[collection.name] = pc.unique(table["sourcedId"].combine_chunks().drop_null())
    enums = {c: v for (n, c), v in ENUMS.items() if n == collection.name} | {"status": STATUS}
    table = repair(collection, table, refs, enums, columns, repairs)
    frame = to_frame(table)
    schema = schema_for(collection, refs, unique=unique)
    bad: dict[int, list[str]] = {}
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        bad = _reasons(collection, errors, frame)
        if quarantined:
            _name_roots(bad, frame, columns, quarantined)
    rows = np.array(sorted(bad), dtype=np.int64)
    if not len(rows):
        return Checked(frame, quarantine_frame([]), rows)
    positions = frame.index.get_indexer(rows)
    failing = frame.iloc[positions]
    records = [orjson.dumps(r, default=str).decode() for r in _plain_records(failing)]
    failed = pd.DataFrame(
        {
            "sourcedId": failing["sourcedId"]
            .astype(object)
            .where(failing["sourcedId"].notna(), None)
            .to_numpy(),
            "reason": ["; ".join(bad[int(i)]) for i in rows],
            "record": records,
        }
    )
    keep = np.ones(len(frame), dtype=bool)
    keep[positions] = False
    return Checked(frame[keep].reset_index(drop=True), quarantine_frame([failed]), positions)


def quarantine_frame(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Quarantined records (sourcedId, reason, record) as stored: Arrow text."""
    text = pd.ArrowDtype(pyarrow_.string())
    columns = {"sourcedId": text, "reason": text, "record": text}
    # Each part as text first, empty ones left out: pandas' concatenation of empty or all-NA
    # parts is changing (a FutureWarning on every night).
    parts = [p.astype(columns) for p in parts if len(p)]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in columns.items()})
    return pd.concat(parts, ignore_index=True).astype(columns)


def kept_repairs(repairs: Repairs, quarantine: pd.DataFrame) -> pd.DataFrame:
    """The repairs of kept records. By what was dropped, not what was kept: the kept
    sourcedIds as Python strings would be a gigabyte at ten million enrollments."""
    dropped = pyarrow_.array(
        quarantine["sourcedId"].astype(object).dropna().to_numpy(), pyarrow_.string()
    )
    return repairs.to_frame(dropped=dropped)


def validate(
    collection: Collection,
    table: pyarrow_.Table,
    references: Mapping[str, pyarrow_.Array],
    rejects: Rejects | None = None,
    quarantined: Mapping[str, pd.DataFrame] | None = None,
) -> Validated:
    """Split a whole normalised collection into kept records (some repaired, see
    ``repair.py``) and quarantined ones. (A night's snapshot is validated batch by batch as
    its pages arrive: ``batches.py``.)

    ``references`` holds the sourcedIds of the collections this one refers to (its own
    ids are added here for self-references such as org parents); a collection left out of it
    is not checked (absent tonight). ``quarantined`` holds those collections' quarantine, so
    a record that needs a quarantined one names it and its reason (the root) rather than
    "not found".
    """
    repairs = Repairs()
    if rejects is not None:
        repairs.extend(rejects.repairs)
    checked = check(collection, table, references, repairs, quarantined)
    parts = [] if rejects is None else [rejects.to_table().to_pandas()]
    quarantine = quarantine_frame([*parts, checked.failing])
    return Validated(checked.kept, quarantine, kept_repairs(repairs, quarantine))


ROOT = "root: "


def _name_roots(
    bad: dict[int, list[str]],
    frame: pd.DataFrame,
    columns: Mapping[str, str],
    quarantined: Mapping[str, pd.DataFrame],
) -> None:
    """ "not found in T" becomes "quarantined in T (root: …)" when the record it needs was
    itself quarantined: the reason then leads to the record that caused it (only the failing
    records are looked at)."""
    for column, target in columns.items():
        q = quarantined.get(target)
        if q is None or not len(q):
            continue
        why = dict(zip(q["sourcedId"].astype(object), q["reason"].astype(object), strict=True))
        for index, reasons in bad.items():
            for k, reason in enumerate(reasons):
                if not (
                    reason.startswith(f"{column} ") and reason.endswith(f"not found in {target}")
                ):
                    continue
                value = frame.at[index, column]
                values = list(value) if isinstance(value, list | np.ndarray) else [value]
                hit = next((v for v in values if v in why), None)
                if hit is None:
                    continue
                root = why[hit]
                # A cascade's own root ends its reason, in one pair of parentheses.
                root = (
                    root.split(ROOT, 1)[1].removesuffix(")")
                    if ROOT in root
                    else f"{target} {shown(hit)}: {root}"
                )
                reasons[k] = f"{column} {shown(hit)}: quarantined in {target} ({ROOT}{root})"


def _plain_records(frame: pd.DataFrame) -> list[dict]:
    """Rows as plain Python (lists, not arrays) for JSON."""
    return pyarrow_.Table.from_pandas(frame, preserve_index=False).to_pylist()
