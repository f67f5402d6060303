"""Pandera schemas of the canonical OneRoster collections.

Types, required fields, enumerations (with the ``ext:`` extension pattern), unique
``sourcedId``, valid date ranges, and referential integrity across collections. Every check
is vectorised (Arrow compute or pandas), never a per-row Python function.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pyarrow_
import pyarrow.compute as pc

from .collections import COLLECTIONS, Collection, Kind
from .ids import IdSet, is_in_ids
from .normalise import ARROW_TYPES, strictly_ascending
from .repair import CONTROL

STATUS = {"active", "tobedeleted"}
ORG_TYPES = {"department", "school", "district", "local", "state", "national"}
SESSION_TYPES = {"gradingPeriod", "semester", "schoolYear", "term"}
CLASS_TYPES = {"homeroom", "scheduled"}
ROLES = {  # RoleType of 1.1 and 1.2 together: users of either version land in one column
    "administrator",
    "aide",
    "guardian",
    "parent",
    "proctor",
    "relative",
    "student",
    "teacher",
    "counselor",
    "districtAdministrator",
    "principal",
    "siteAdministrator",
    "systemAdministrator",
}
SEX = {"male", "female", "unspecified", "other"}

ENUMS: dict[tuple[str, str], set[str]] = {
    ("orgs", "type"): ORG_TYPES,
    ("academic_sessions", "type"): SESSION_TYPES,
    ("classes", "classType"): CLASS_TYPES,
    ("users", "role"): ROLES,
    ("enrollments", "role"): ROLES,
    ("demographics", "sex"): SEX,
}

# (collection, column) -> referenced collection; list columns check every element.
REFERENCES: dict[tuple[str, str], str] = {
    ("orgs", "parentSourcedId"): "orgs",
    ("academic_sessions", "parentSourcedId"): "academic_sessions",
    ("courses", "orgSourcedId"): "orgs",
    ("courses", "schoolYearSourcedId"): "academic_sessions",
    ("classes", "courseSourcedId"): "courses",
    ("classes", "schoolSourcedId"): "orgs",
    ("classes", "termSourcedIds"): "academic_sessions",
    ("users", "orgSourcedIds"): "orgs",
    ("enrollments", "userSourcedId"): "users",
    ("enrollments", "classSourcedId"): "classes",
    ("enrollments", "schoolSourcedId"): "orgs",
    ("demographics", "sourcedId"): "users",
}


def referenced_collections(collection: str) -> set[str]:
    return {
        target
        for (source, _), target in REFERENCES.items()
        if source == collection and target != collection
    }


def _arrow(series: pd.Series) -> pyarrow_.ChunkedArray | pyarrow_.Array:
    return (
        pyarrow_.array(series)
        if not isinstance(series.dtype, pd.ArrowDtype)
        else series.array._pa_array
    )


def enum_check(values: set[str], column: str) -> pa.Check:
    allowed = pyarrow_.array(sorted(values))

    def check(series: pd.Series) -> pd.Series:
        arr = _arrow(series)
        ok = pc.or_(pc.is_in(arr, allowed), pc.starts_with(arr, "ext:"))
        return pd.Series(ok.fill_null(True).to_numpy(zero_copy_only=False), index=series.index)

    return pa.Check(
        check,
        name=f"{column} in {sorted(values)} or ext:…",
        error=f"not a OneRoster {column} value (nor ext:…)",
    )


def reference_check(column: str, target: str, ids: pyarrow_.Array | IdSet) -> pa.Check:
    def check(series: pd.Series) -> pd.Series:
        arr = _arrow(series)
        if pyarrow_.types.is_list(arr.type):
            if isinstance(arr, pyarrow_.ChunkedArray):
                arr = arr.combine_chunks()  # parent indices must count from the first row
            flat = pc.list_flatten(arr)
            parents = pc.list_parent_indices(arr).to_numpy()
            missing = ~is_in_ids(flat, ids).fill_null(True).to_numpy(zero_copy_only=False)
            ok = np.ones(len(arr), dtype=bool)
            ok[np.unique(parents[missing])] = False
        else:
            ok = is_in_ids(arr, ids).to_numpy(zero_copy_only=False) | pc.is_null(arr).to_numpy(
                zero_copy_only=False
            )
        return pd.Series(ok, index=series.index)

    return pa.Check(check, name=f"{column} references {target}", error=f"not found in {target}")


# Larger than any real value of a roster field: a runaway export or an attack, not data.
MAX_TEXT = 65_536


def length_check(column: str) -> pa.Check:
    def check(series: pd.Series) -> pd.Series:
        lengths = pc.utf8_length(_arrow(series))
        return pd.Series(
            pc.less_equal(lengths, MAX_TEXT).fill_null(True).to_numpy(zero_copy_only=False),
            index=series.index,
        )

    return pa.Check(check, name=f"{column} length", error=f"longer than {MAX_TEXT} characters")


NUL = r"\x00"


def control_check(column: str, is_id: bool) -> pa.Check:
    """An id holds no control character (it becomes a Canvas SIS id and login); no text holds
    NUL (Canvas keeps it in a name or id, and nothing downstream can show or match it). The
    other control characters in text are repaired before (``repair.py``)."""
    pattern = CONTROL if is_id else NUL

    def check(series: pd.Series) -> pd.Series:
        found = pc.match_substring_regex(_arrow(series), pattern)
        return pd.Series(
            pc.invert(found).fill_null(True).to_numpy(zero_copy_only=False), index=series.index
        )

    what = "a control character" if is_id else "a NUL character"
    return pa.Check(check, name=f"{column} control", error=f"holds {what}")


def unique_check(column: str) -> pa.Check:
    """Every value once. A SIS asked to sort by sourcedId sends them strictly ascending,
    which proves it in one pass over Arrow; otherwise pandas finds the duplicates (and
    every copy of a duplicate fails, as the reasons name them)."""

    def check(series: pd.Series) -> pd.Series:
        arr = _arrow(series)
        if not arr.null_count and strictly_ascending(arr):
            return pd.Series(np.ones(len(arr), dtype=bool), index=series.index)
        return ~series.duplicated(keep=False)

    # Named as pandera names its own uniqueness failures, which the reasons explain.
    return pa.Check(check, name="field_uniqueness", error="field_uniqueness")


def _date_order(start: str, end: str) -> pa.Check:
    def check(frame: pd.DataFrame) -> pd.Series:
        ok = ~(frame[start] > frame[end])
        return ok.fillna(True).astype(bool)

    return pa.Check(check, name=f"{start} <= {end}", error=f"{end} is before {start}")


def _plain(series: pd.Series) -> np.ndarray:
    values = series.astype(object)
    return values.where(values.notna(), None).to_numpy()


def _no_parent_cycles(frame: pd.DataFrame) -> pd.Series:
    """Following parents from any record never comes back to it (at most 64 levels)."""
    own = _plain(frame["sourcedId"])
    current = _plain(frame["parentSourcedId"])
    lookup = pd.Series(current, index=own)
    lookup = lookup[~lookup.index.duplicated()]
    in_cycle = np.zeros(len(frame), dtype=bool)
    for _ in range(64):
        in_cycle |= current == own
        current = _plain(lookup.reindex(current))
        if pd.isna(current).all():
            break
    return pd.Series(~in_cycle, index=frame.index)


def schema_for(
    collection: Collection, references: Mapping[str, pyarrow_.Array], unique: bool = True
) -> pa.DataFrameSchema:
    """The schema of a collection, with the sourcedIds of the collections it refers to;
    ``unique``: with the uniqueness of sourcedIds (left out for a batch of the collection,
    whose writer checks it over the whole collection)."""
    columns: dict[str, pa.Column] = {}
    for f in collection.fields:
        checks: list[pa.Check] = []
        if ARROW_TYPES[f.kind] == pyarrow_.string():
            checks.append(length_check(f.column))
            checks.append(control_check(f.column, f.column == "sourcedId" or f.kind is Kind.REF))
        if f.column == "sourcedId" and unique:
            checks.append(unique_check(f.column))
        if f.column == "status":
            checks.append(enum_check(STATUS, "status"))
        if (collection.name, f.column) in ENUMS:
            checks.append(enum_check(ENUMS[(collection.name, f.column)], f.column))
        target = REFERENCES.get((collection.name, f.column))
        if target is not None and target in references:
            checks.append(reference_check(f.column, target, references[target]))
        columns[f.column] = pa.Column(
            pd.ArrowDtype(ARROW_TYPES[f.kind]),
            nullable=not f.required,
            checks=checks,
        )
    frame_checks: list[pa.Check] = []
    if collection.name == "academic_sessions":
        frame_checks.append(_date_order("startDate", "endDate"))
    if collection.name == "enrollments":
        frame_checks.append(_date_order("beginDate", "endDate"))
    if collection.name in ("orgs", "academic_sessions"):
        frame_checks.append(
            pa.Check(
                _no_parent_cycles,
                name="no parent cycles",
                error="parentSourcedId: the parent chain loops back",
            )
        )
    return pa.DataFrameSchema(
        columns, checks=frame_checks, strict=True, ordered=False, name=collection.name, coerce=False
    )


def schemas() -> dict[str, pa.DataFrameSchema]:
    """The schemas without referential checks (for documentation and column metadata)."""
    return {name: schema_for(c, {}) for name, c in COLLECTIONS.items()}
