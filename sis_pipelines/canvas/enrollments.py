"""Canvas enrollments of a snapshot, computed in Arrow.

Enrollments are the one file with millions of rows (ten million in the largest districts).
As pandas object columns they took about 70 bytes a cell and most of a night's memory; here
every step is an Arrow kernel and the result stays Arrow-backed (``pd.ArrowDtype``), the
form it has anyway once stored and read back.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .files import FILES

INTERNAL = "term_end_date"  # kept beside enrollments to decide delete vs complete; not a CSV column


def arrow_column(series: pd.Series) -> pa.ChunkedArray:
    if isinstance(series.dtype, pd.ArrowDtype):
        return pa.chunked_array(series.array._pa_array)
    return pa.chunked_array([pa.array(series.astype(object), from_pandas=True)])


def text(series: pd.Series) -> pa.ChunkedArray:
    return arrow_column(series).cast(pa.string())


def iso_dates(series: pd.Series) -> pa.ChunkedArray:
    """Dates as Canvas's ISO 8601 times (midnight UTC)."""
    arr = arrow_column(series)
    if pa.types.is_date32(arr.type) or pa.types.is_date64(arr.type):
        day = arr.cast(pa.date32()).cast(pa.string())
        return pc.binary_join_element_wise(day, "T00:00:00Z", "")
    dates = pd.to_datetime(series.astype(object), errors="coerce")
    iso = dates.dt.strftime("%Y-%m-%dT00:00:00Z").astype(object)
    return pa.chunked_array([pa.array(iso, pa.string(), from_pandas=True)])


def _mapped(values: pa.ChunkedArray, mapping: dict[str, str]) -> pa.ChunkedArray:
    keys = pa.array(list(mapping), pa.string())
    targets = pa.array(list(mapping.values()), pa.string())
    return pc.take(targets, pc.index_in(values, value_set=keys))


CODE_SPACE = 2**62  # combined keys stay within int64


def first_of_each(table: pa.Table, key: list[str]) -> pa.Table:
    """Like pandas' drop_duplicates(key): the first row of each key, in the original order.

    Each key column becomes small integer codes and the key one int64, so that ten million
    rows are a sort of int64s rather than a hash table of string triples (ten times the
    memory). Key columns must not be null.
    """
    distincts = [pc.unique(table[column]) for column in key]
    if np.prod([float(len(d)) for d in distincts]) >= CODE_SPACE:  # beyond any district
        rows = pa.table({**{k: table[k] for k in key}, "_row": np.arange(table.num_rows)})
        first = rows.group_by(key).aggregate([("_row", "min")])["_row_min"]
        return table.take(np.sort(first.to_numpy()))
    combined = np.zeros(table.num_rows, dtype=np.int64)
    for column, distinct in zip(key, distincts, strict=True):
        values = table[column]
        codes = pc.index_in(values, value_set=distinct).to_numpy().astype(np.int64)
        combined = combined * len(distinct) + codes
    _, first = np.unique(combined, return_index=True)
    if len(first) == table.num_rows:
        return table
    return table.take(np.sort(first))


def canvas_enrollments(
    enrollments: pd.DataFrame,
    sections: pd.DataFrame,
    user_ids: pd.Series,
    role_map: dict[str, str],
    prefix: str,
) -> pd.DataFrame:
    """Active OneRoster enrollments of mapped users in mapped sections, as Canvas rows.

    ``sections`` has the unprefixed columns class, course_id, start_date and end_date.
    """
    active = pc.equal(text(enrollments["status"]), "active")
    table = pa.table(
        {
            "class": text(enrollments["classSourcedId"]),
            "user_id": text(enrollments["userSourcedId"]),
            "role": _mapped(text(enrollments["role"]), role_map),
            "begin": iso_dates(enrollments["beginDate"]),
            "end": iso_dates(enrollments["endDate"]),
        }
    ).filter(active)
    known_user = pc.is_in(table["user_id"], value_set=pa.array(user_ids, pa.string()))
    table = table.filter(pc.and_(pc.is_valid(table["role"]), known_user))
    section = pc.index_in(table["class"], value_set=text(sections["class"]))
    table = table.filter(pc.is_valid(section))
    section = section.filter(pc.is_valid(section))

    def of_section(column: str) -> pa.ChunkedArray:
        return pc.take(text(sections[column]), section)

    term_end = of_section("end_date")
    rows = pa.table(
        {
            "course_id": of_section("course_id"),
            "section_id": table["class"],
            "user_id": table["user_id"],
            "role": table["role"],
            "status": pa.repeat("active", table.num_rows),
            # Canvas derives enrollment state from these dates: always give both.
            "start_date": pc.coalesce(table["begin"], of_section("start_date")),
            "end_date": pc.coalesce(table["end"], term_end),
            INTERNAL: term_end,
        }
    )
    rows = first_of_each(rows, ["section_id", "user_id", "role"])
    if prefix:
        for column in ("course_id", "section_id", "user_id"):
            prefixed = pc.binary_join_element_wise(prefix, rows[column], "")
            rows = rows.set_column(rows.schema.get_field_index(column), column, prefixed)
    columns = [c for c in FILES["enrollments"].columns if c in rows.column_names] + [INTERNAL]
    return rows.select(columns).to_pandas(types_mapper=pd.ArrowDtype)
