"""Canvas enrollments of a snapshot, computed in Arrow.

Enrollments are the one file with millions of rows (ten million in the largest districts).
As pandas object columns they took about 70 bytes a cell and most of a night's memory; here
every step is an Arrow kernel and the result is Arrow-backed (``pd.ArrowDtype``) dictionary
columns: int32 codes into the district's sections, users, roles and dates. Stored, they
are plain strings (see ``storage.atomic_write_table``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..oneroster.ids import IdSet
from .files import FILES

INTERNAL = "term_end_date"  # kept beside enrollments to decide delete vs complete; not a CSV column


def arrow_column(series: pd.Series) -> pa.ChunkedArray:
    if isinstance(series.dtype, pd.ArrowDtype):
        return pa.chunked_array(series.array._pa_array)
    return pa.chunked_array([pa.array(series.astype(object), from_pandas=True)])


def text(series: pd.Series) -> pa.ChunkedArray:
    return arrow_column(series).cast(pa.string())


def first_items(lists: pa.ChunkedArray) -> pa.Array:
    """Each list's first item, null for a null or empty list."""
    lists = lists.combine_chunks()
    if pa.types.is_null(lists.type):
        return pa.nulls(len(lists), pa.string())
    lengths = pc.fill_null(pc.list_value_length(lists), 0).to_numpy(zero_copy_only=False)
    starts = lists.offsets.to_numpy()[:-1]
    present = lengths > 0
    first = pc.take(lists.values, pa.array(np.where(present, starts, 0)))
    return pc.if_else(pa.array(present), first.cast(pa.string()), None)


def by_value(series: pd.Series, compute: Callable[[Any], Any]) -> pa.Array | pa.ChunkedArray:
    """``compute`` over a text column, row by row. On a dictionary column (as the mapping
    step loads enrollments) it runs once per distinct value of each row group and the rows
    take the results: ten million enrollments name a few hundred thousand classes and users.
    Row group by row group: unifying the groups' dictionaries first took longer than asking
    about each group's values (a second of the mapping at xl)."""
    column = arrow_column(series)
    if not pa.types.is_dictionary(column.type):
        return compute(column.cast(pa.string()))
    if column.num_chunks == 0:
        return compute(pa.array([], pa.string()))
    return pa.concat_arrays(
        [
            pc.take(compute(part.dictionary.cast(pa.string())), part.indices)
            for part in column.chunks
        ]
    )


def places(series: pd.Series, ids: IdSet) -> pa.Array | pa.ChunkedArray:
    """Each row's place among ``ids``, null where absent (see ``by_value``)."""
    return by_value(series, ids.index)


def iso_dates(series: pd.Series) -> pa.ChunkedArray:
    """Dates as Canvas's ISO 8601 times (midnight UTC)."""
    coded = iso_coded(arrow_column(series))
    return pa.chunked_array([pc.take(coded.dictionary, coded.indices)])


def iso_coded(arr: pa.ChunkedArray) -> pa.DictionaryArray:
    """Dates as Canvas's ISO 8601 times, each distinct date formatted once (a district has a
    few hundred) and the rows left as codes into them."""
    if pa.types.is_date32(arr.type) or pa.types.is_date64(arr.type):
        days = pc.dictionary_encode(arr.cast(pa.date32()).combine_chunks())
        iso = pc.binary_join_element_wise(days.dictionary.cast(pa.string()), "T00:00:00Z", "")
        return pa.DictionaryArray.from_arrays(days.indices, iso)
    dates = pd.to_datetime(
        pd.Series(arr.to_numpy(zero_copy_only=False), dtype=object), errors="coerce"
    )
    iso = dates.dt.strftime("%Y-%m-%dT00:00:00Z").astype(object)
    return pc.dictionary_encode(pa.array(iso, pa.string(), from_pandas=True))


def coded(codes: pa.Array, values: pa.Array | pa.DictionaryArray) -> pa.DictionaryArray:
    """``values[codes]`` as a dictionary column: the text exists once, the rows are int32.

    Pandas keeps a dictionary's values distinct, so values that may repeat (a course's
    sections, a term's dates) come dictionary-encoded (``pc.dictionary_encode``, made once
    for every slice), and the codes go through theirs."""
    if pa.types.is_dictionary(values.type):
        return pa.DictionaryArray.from_arrays(pc.take(values.indices, codes), values.dictionary)
    return pa.DictionaryArray.from_arrays(codes, values)


def first_valid(*columns: pa.DictionaryArray) -> pa.DictionaryArray:
    """The first non-null of several dictionary columns, row by row, on their codes."""
    shared = pc.dictionary_encode(pa.concat_arrays([c.dictionary for c in columns]))
    codes, start = [], 0
    for column in columns:
        size = len(column.dictionary)
        codes.append(pc.take(shared.indices.slice(start, size), column.indices))
        start += size
    return pa.DictionaryArray.from_arrays(pc.coalesce(*codes), shared.dictionary)


def prefixed(column: pa.DictionaryArray, prefix: str) -> pa.DictionaryArray:
    ids = pc.binary_join_element_wise(prefix, column.dictionary, "")
    return pa.DictionaryArray.from_arrays(column.indices, ids)


def _mapped(values: pa.ChunkedArray, mapping: dict[str, str]) -> pa.ChunkedArray:
    keys = pa.array(list(mapping), pa.string())
    targets = pa.array(list(mapping.values()), pa.string())
    return pc.take(targets, pc.index_in(values, value_set=keys))


CODE_SPACE = 2**62  # combined keys stay within int64


def first_positions(codes: np.ndarray) -> np.ndarray | None:
    """Positions of the first row of each code, ascending; None when no code repeats.

    No repeat is the usual night, and a plain sort of int64 tells it (a tenth of a second
    for ten million); only a night with duplicates pays for the slower unique-with-index.
    """
    ordered = np.sort(codes)
    if not (ordered[1:] == ordered[:-1]).any():
        return None
    del ordered
    # A stable order puts each code's first row first among its equals: 80 MB an array at
    # ten million rows, three at most alive at once.
    order = np.argsort(codes, kind="stable")
    ordered = codes[order]
    first = np.empty(len(codes), dtype=bool)
    first[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    del ordered
    return np.sort(order[first])


def _combined(codes: list[pa.ChunkedArray | pa.Array], sizes: list[int]) -> np.ndarray | None:
    """One int64 per row from per-column codes, or None when they would not fit."""
    if np.prod([float(max(n, 1)) for n in sizes]) >= CODE_SPACE:  # beyond any district
        return None
    combined = np.zeros(len(codes[0]), dtype=np.int64)
    for code, size in zip(codes, sizes, strict=True):
        # In place: ten million rows are 80 MB an array.
        combined *= max(size, 1)
        combined += np.asarray(code)
    return combined


def _first_by_group(table: pa.Table, key: list[str]) -> np.ndarray:
    rows = pa.table({**{k: table[k] for k in key}, "_row": np.arange(table.num_rows)})
    return np.sort(rows.group_by(key).aggregate([("_row", "min")])["_row_min"].to_numpy())


def canvas_enrollments(
    enrollments: pd.DataFrame | Iterable[pd.DataFrame],
    sections: pd.DataFrame,
    user_ids: pd.Series | pa.ChunkedArray,
    role_map: dict[str, str],
    prefix: str,
) -> CanvasEnrollments:
    """Active OneRoster enrollments of mapped users in mapped sections, as Canvas rows.

    ``enrollments``: the collection, or its batches (the stored file read a row group at a
    time: ten million enrollments are never held whole). ``sections`` has the unprefixed
    columns class, course_id, start_date and end_date. Every enrollment becomes three integer
    codes (its section, user and Canvas role among the known ones): unknown users and
    sections drop out, duplicates are found on one int64 per row, and the rows that stay keep
    their codes: the text exists once, in the small tables that become the columns'
    dictionaries.
    """
    classes = text(sections["class"]).combine_chunks()
    users = (
        user_ids.combine_chunks()
        if isinstance(user_ids, pa.ChunkedArray)
        else pa.array(user_ids, pa.string())
    )
    roles = pc.unique(pa.array(list(role_map.values()), pa.string()))
    batches = [enrollments] if isinstance(enrollments, pd.DataFrame) else enrollments
    class_ids, user_ids_ = IdSet(classes), IdSet(users)  # asked batch after batch
    sizes = [len(classes), len(users), len(roles)]
    parts: list[pa.Table] = []
    keys: list[np.ndarray | None] = []  # a batch's rows as one int64 each, made as it comes
    for batch in batches:
        parts.append(_codes(batch, class_ids, user_ids_, roles, role_map))
        key = [parts[-1][k].to_numpy() for k in ("section", "user", "role")]
        keys.append(_combined(key, sizes))
    # None when the district's codes would not fit one int64 (whatever the rows).
    combined = _combined([np.array([], np.int64)] * 3, sizes)
    if combined is not None and keys:
        combined = np.concatenate(keys)  # type: ignore[arg-type]
    del keys
    if combined is None:
        first = _first_by_group(pa.concat_tables(parts), ["section", "user", "role"])
    else:
        first = first_positions(combined)
    del combined
    if first is not None:
        parts = _taken(parts, first)
    codes = pa.concat_tables(parts) if parts else _codes_schema().empty_table()
    return CanvasEnrollments(codes, classes, users, roles, sections, prefix)


def _taken(parts: list[pa.Table], rows: np.ndarray) -> list[pa.Table]:
    """The ``rows`` (ascending, over the parts end to end) of the parts, a part at a time:
    each part is let go once its rows are taken (ten million codes are 200 MB)."""
    out, start = [], 0
    for i, part in enumerate(parts):
        end = start + part.num_rows
        lo, hi = np.searchsorted(rows, [start, end])
        out.append(part.take(pa.array(rows[lo:hi] - start)))
        parts[i] = None  # type: ignore[call-overload]
        start = end
    return out


def _codes_schema() -> pa.Schema:
    return pa.schema(
        [
            ("section", pa.int32()),
            ("user", pa.int32()),
            ("role", pa.int32()),
            ("begin", pa.date32()),
            ("end", pa.date32()),
        ]
    )


def _codes(
    batch: pd.DataFrame, classes: IdSet, users: IdSet, roles: pa.Array, role_map: dict
) -> pa.Table:
    """A batch's mapped enrollments as codes (section, user, role) and their own dates."""
    section = places(batch["classSourcedId"], classes)
    user = places(batch["userSourcedId"], users)
    role = by_value(batch["role"], lambda v: pc.index_in(_mapped(v, role_map), value_set=roles))
    active = by_value(batch["status"], lambda v: pc.equal(v, "active"))
    keep = pc.and_(
        pc.and_(active, pc.is_valid(role)),
        pc.and_(pc.is_valid(user), pc.is_valid(section)),
    ).fill_null(False)
    columns = {
        "section": section,
        "user": user,
        "role": role,
        "begin": arrow_column(batch["beginDate"]),
        "end": arrow_column(batch["endDate"]),
    }
    table = pa.table(
        {k: pa.chunked_array(v) if isinstance(v, pa.Array) else v for k, v in columns.items()}
    )
    return table.filter(keep).cast(_codes_schema())


# The Canvas enrollment columns the mapping makes (the rest of the file's stay empty).
MADE = ("course_id", "section_id", "user_id", "role", "status", "start_date", "end_date")

# Canvas enrollments built and written at a time: the codes are 20 bytes a row, the rows
# built from them several times that (their text and fingerprints while a slice is written:
# at a million rows a slice the step's peak grew by 60 MB at xl, at half that it did not).
SLICE_ROWS = 1 << 19


@dataclass
class CanvasEnrollments:
    """The night's Canvas enrollments as codes, built into rows a slice at a time."""

    codes: pa.Table  # section, user, role (codes), begin, end
    classes: pa.Array
    users: pa.Array
    roles: pa.Array
    sections: pd.DataFrame
    prefix: str

    def __len__(self) -> int:
        return self.codes.num_rows

    def __post_init__(self) -> None:
        # The dictionaries every slice shares, made once: each section's course and dates
        # as codes into their distinct values, and the ids with the tenant's prefix.
        self._of_section = {
            column: pc.dictionary_encode(text(self.sections[column]).combine_chunks())
            for column in ("course_id", "start_date", "end_date")
        }
        self._classes, self._users = self.classes, self.users
        if self.prefix:
            course = self._of_section["course_id"]
            self._of_section["course_id"] = prefixed(course, self.prefix)
            self._classes = pc.binary_join_element_wise(self.prefix, self.classes, "")
            self._users = pc.binary_join_element_wise(self.prefix, self.users, "")

    @property
    def columns(self) -> list[str]:
        return [c for c in FILES["enrollments"].columns if c in MADE] + [INTERNAL]

    def table(self, start: int = 0, rows: int | None = None) -> pa.Table:
        codes = self.codes.slice(start, rows)
        section = codes["section"].combine_chunks()

        def of_section(column: str) -> pa.DictionaryArray:
            return coded(section, self._of_section[column])

        term_end = of_section("end_date")
        # Rows as codes into the district's sections, users, roles and dates: the text as
        # plain strings was about 1.7 GB at ten million rows, most of a night's peak memory.
        out = {
            "course_id": of_section("course_id"),
            "section_id": coded(section, self._classes),
            "user_id": coded(codes["user"].combine_chunks(), self._users),
            "role": coded(codes["role"].combine_chunks(), self.roles),
            "status": coded(pa.array(np.zeros(codes.num_rows, np.int32)), pa.array(["active"])),
            # Canvas derives enrollment state from these dates: always give both.
            "start_date": first_valid(iso_coded(codes["begin"]), of_section("start_date")),
            "end_date": first_valid(iso_coded(codes["end"]), term_end),
            INTERNAL: term_end,
        }
        return pa.table({c: out[c] for c in self.columns})

    def tables(self) -> Iterator[pa.Table]:
        """The rows, a slice at a time (one, empty, for a night without enrollments)."""
        for start in range(0, max(len(self), 1), SLICE_ROWS):
            yield self.table(start, SLICE_ROWS)

    def to_frame(self) -> pd.DataFrame:
        return self.table().to_pandas(types_mapper=pd.ArrowDtype)
