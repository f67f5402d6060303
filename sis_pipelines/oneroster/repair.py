"""Repairs: what can be fixed in a record without losing it, each recorded with the SIS's value.

A record is quarantined only when it cannot be used (no sourcedId, a required field missing
or unreadable, a required reference missing). What OneRoster makes optional, or what can be
read without guessing, is repaired instead:

- an optional field that cannot be read (``dateLastModified`` written ``1/05/2023``) is
  emptied (``normalise.py`` records it as the record is read);
- an optional reference that names no record (an org's ``parentSourcedId``, a session's
  ``parentSourcedId``, a course's ``schoolYearSourcedId``) is emptied;
- a list of required references of which some resolve (a class's ``termSourcedIds``, a user's
  ``orgSourcedIds``) keeps those that resolve;
- an enumeration value written in another case (``Scheduled``) is read as OneRoster's.

Every step is columnar (Arrow compute), the record of repairs too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .collections import Collection, Kind
from .ids import IdSet, is_in_ids
from .shown import shown_column

# OneRoster 1.1 and 1.2 give these references a multiplicity of 0..1.
OPTIONAL_REFERENCES = {
    ("orgs", "parentSourcedId"),
    ("academic_sessions", "parentSourcedId"),
    ("courses", "schoolYearSourcedId"),
}
REPAIR_COLUMNS = ("sourcedId", "field", "value", "reason")


@dataclass
class Repairs:
    """Fields repaired in kept records: sourcedId, field, the SIS's value, and why (columnar:
    a repair that touches many records is one Arrow table)."""

    parts: list[pa.Table] = field(default_factory=list)

    def add(self, sourced_id: Any, column: str, value: Any, reason: str) -> None:
        self.add_many(
            pa.array([sourced_id if isinstance(sourced_id, str) else None], pa.string()),
            column,
            pa.array([None if value is None else str(value)], pa.string()),
            pa.array([reason], pa.string()),
        )

    def add_many(self, ids: pa.Array, column: str, values: pa.Array, reasons: pa.Array) -> None:
        if len(ids):
            self.parts.append(
                pa.table(
                    {
                        "sourcedId": ids.cast(pa.string()),
                        "field": pa.array([column] * len(ids), pa.string()),
                        "value": values.cast(pa.string()),
                        "reason": reasons.cast(pa.string()),
                    }
                )
            )

    def extend(self, other: Repairs) -> None:
        self.parts += other.parts

    def __len__(self) -> int:
        return sum(p.num_rows for p in self.parts)

    def to_frame(self, dropped: pa.Array | None = None) -> pd.DataFrame:
        """As a frame; with ``dropped`` (the sourcedIds quarantined), only the repairs of
        records that were kept. (The quarantined are few; the kept are the collection.)"""
        schema = pa.schema([(c, pa.string()) for c in REPAIR_COLUMNS])
        table = pa.concat_tables(self.parts) if self.parts else schema.empty_table()
        if dropped is not None:
            ids = table["sourcedId"]
            table = table.filter(
                pc.and_(pc.is_valid(ids), pc.invert(pc.is_in(ids, dropped).fill_null(False)))
            )
        return table.to_pandas(types_mapper=pd.ArrowDtype)


def _reasons(column: str, values: pa.Array, tail: str | pa.Array) -> pa.Array:
    """``<column> '<value>': <tail>`` for each value."""
    return pc.binary_join_element_wise(f"{column} ", shown_column(values), ": ", tail, "")


def _set(table: pa.Table, column: str, values: pa.Array) -> pa.Table:
    return table.set_column(table.schema.get_field_index(column), column, values)


def repair_enums(table: pa.Table, column: str, allowed: set[str], repairs: Repairs) -> pa.Table:
    """Values of an enumeration written in another case read as OneRoster's own."""
    if column not in table.column_names or not table.num_rows:
        return table
    arr = table[column].combine_chunks()
    canonical = {v.casefold(): v for v in allowed}
    known = pc.is_in(arr, pa.array(sorted(allowed))).fill_null(True)
    folded = pc.utf8_lower(arr)
    fixable = pc.and_(pc.invert(known), pc.is_in(folded, pa.array(sorted(canonical)))).fill_null(
        False
    )
    mask = fixable.to_numpy(zero_copy_only=False)
    if not mask.any():
        return table
    lookup = pa.array([canonical[k] for k in sorted(canonical)])
    fixed = pc.take(lookup, pc.index_in(folded, pa.array(sorted(canonical))))
    chosen = pa.array(mask)
    was, now = arr.filter(chosen), fixed.filter(chosen)
    tail = pc.binary_join_element_wise("read as ", shown_column(now), "")
    repairs.add_many(
        table["sourcedId"].combine_chunks().filter(chosen), column, was, _reasons(column, was, tail)
    )
    return _set(table, column, pc.if_else(fixable, fixed, arr))


def repair_optional_reference(
    table: pa.Table,
    column: str,
    target: str,
    ids: pa.Array | IdSet,
    repairs: Repairs,
) -> pa.Table:
    """An optional reference to no record is emptied."""
    arr = table[column].combine_chunks()
    dangling = pc.and_(pc.is_valid(arr), pc.invert(is_in_ids(arr, ids))).fill_null(False)
    mask = dangling.to_numpy(zero_copy_only=False)
    if not mask.any():
        return table
    chosen = pa.array(mask)
    was = arr.filter(chosen)
    tail = f"not found in {target}; emptied (optional in OneRoster)"
    repairs.add_many(
        table["sourcedId"].combine_chunks().filter(chosen), column, was, _reasons(column, was, tail)
    )
    return _set(table, column, pc.if_else(dangling, pa.scalar(None, arr.type), arr))


def repair_reference_list(
    table: pa.Table, column: str, target: str, ids: pa.Array | IdSet, repairs: Repairs
) -> pa.Table:
    """A list of references of which some resolve keeps those; one where none does is left
    for validation to quarantine."""
    arr = table[column].combine_chunks()
    if not len(arr) or arr.null_count == len(arr):
        return table
    flat = pc.list_flatten(arr)
    parents = pc.list_parent_indices(arr).to_numpy()
    found = is_in_ids(flat, ids).fill_null(False).to_numpy(zero_copy_only=False)
    rows = len(arr)
    missing_per_row = np.bincount(parents[~found], minlength=rows)
    found_per_row = np.bincount(parents[found], minlength=rows)
    partial = (missing_per_row > 0) & (found_per_row > 0)
    if not partial.any():
        return table
    drop = ~found & partial[parents]
    rows_of = pa.array(parents[drop])
    was = flat.filter(pa.array(drop))
    kept_count = pc.cast(pc.take(pa.array(found_per_row), rows_of), pa.string())
    tail = pc.binary_join_element_wise(
        f"not found in {target}; left out, ", kept_count, " other(s) kept", ""
    )
    repairs.add_many(
        pc.take(table["sourcedId"].combine_chunks(), rows_of),
        column,
        was,
        _reasons(column, was, tail),
    )
    keep = ~drop
    lengths = pc.list_value_length(arr).fill_null(0).to_numpy(zero_copy_only=False).copy()
    np.subtract.at(lengths, parents[drop], 1)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    values = flat.filter(pa.array(keep))
    rebuilt = pa.ListArray.from_arrays(pa.array(offsets), values, mask=pc.is_null(arr))
    return _set(table, column, rebuilt.cast(arr.type))


# Every C0 and C1 control character (the same class in Arrow's RE2 and Python's ``re``): in
# text they are repaired here, but NUL, which quarantines the record as any control character
# in an id does (``schemas.py``); the Canvas zip check refuses them alike (``canvas/package.py``).
CONTROL = r"[\x00-\x1f\x7f-\x9f]"
REPAIRABLE_CONTROL = r"[\x01-\x1f\x7f-\x9f]"


def repair_control_characters(
    collection: Collection, table: pa.Table, repairs: Repairs
) -> pa.Table:
    """Text (not an id) with control characters, a carriage return in a familyName, a tab in
    a title: each run becomes one space, the ends trimmed; recorded with the SIS's value.
    Canvas's CSV reader breaks a row on a bare carriage return, and no name means one."""
    for f in collection.fields:
        if (
            f.kind is not Kind.STRING
            or f.column == "sourcedId"
            or f.column not in table.column_names
        ):
            continue
        arr = table[f.column].combine_chunks()
        found = pc.match_substring_regex(arr, REPAIRABLE_CONTROL).fill_null(False)
        if not pc.any(found).as_py():
            continue
        spaced = pc.replace_substring_regex(arr, REPAIRABLE_CONTROL + "+", " ")
        fixed = pc.if_else(found, pc.utf8_trim_whitespace(spaced), arr)
        was = arr.filter(found)
        tail = "control characters replaced by a space"
        repairs.add_many(
            table["sourcedId"].combine_chunks().filter(found),
            f.column,
            was,
            _reasons(f.column, was, tail),
        )
        table = _set(table, f.column, fixed)
    return table


def repair(
    collection: Collection,
    table: pa.Table,
    references: Mapping[str, pa.Array],
    enums: Mapping[str, set[str]],
    reference_columns: Mapping[str, str],
    repairs: Repairs,
) -> pa.Table:
    """The collection with every repair made (recorded in ``repairs``)."""
    table = repair_control_characters(collection, table, repairs)
    for column, allowed in enums.items():
        table = repair_enums(table, column, allowed, repairs)
    for column, target in reference_columns.items():
        if target not in references:
            continue  # not checked tonight (the referenced collection is absent)
        ids = references[target]
        if (collection.name, column) in OPTIONAL_REFERENCES:
            table = repair_optional_reference(table, column, target, ids, repairs)
        elif pa.types.is_list(table.schema.field(column).type):
            table = repair_reference_list(table, column, target, ids, repairs)
    return table
