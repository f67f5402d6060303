"""A OneRoster CSV file read straight into canonical Arrow columns.

The row path (``csv_bundle``) builds a Python dict per row and a REST-shaped record from it:
for a district's million enrollments that is most of a drop's CPU time and several times its
memory. Here Arrow's C++ CSV reader takes the file's bytes, every column as text, and the
canonical columns are built with Arrow compute. Strict, as the JSON fast path is: a file it
cannot take exactly (not UTF-8, a row with more or fewer cells than the header, duplicate or
vendor columns with values, ``userIds`` or other JSON fields, a value a converter refuses, a
row without a sourcedId, control characters) gives None, and the file goes through the row
path, which rejects with file, line and reason. Both give the same table for the files both
can read (tested).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .collections import Collection, Field, Kind
from .columnar import json_arrays, json_objects, json_string
from .normalise import CONVERTERS, STRING_LIST, arrow_schema, converted_badly

# Header spellings seen in real exports, to the canonical column (as the row path reads them).
ALIASES = {
    "preferredgivenname": "preferredFirstName",
    "prefferedgivenname": "preferredFirstName",
    "preferredmiddlename": "preferredMiddleName",
    "prefferedmiddlename": "preferredMiddleName",
    "preferredfamilyname": "preferredLastName",
    "prefferedfamilyname": "preferredLastName",
    "datalastmodified": "dateLastModified",
    "metadata": "metadata",
}
SECRET_COLUMNS = {"password"}  # never read, never stored
# Characters Python's str.strip() and Arrow's trim may judge differently, or that a JSON
# writer escapes: files holding them take the row path.
_CONTROL = "[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f]"
# Arrow's streaming reader reads some forty blocks ahead of its reader, whatever the thread
# counts: 16 MB blocks held 0.7 GB of an xl enrollments file, 1 MB blocks 0.1 GB. Blocks are
# read small and gathered into batches of about 16 MB, so each batch's compute calls stay few.
READ_BLOCK = 1 << 20
_BATCH_BYTES = 1 << 24


def _header(data: bytes) -> list[str] | None:
    first = data.split(b"\n", 1)[0]  # (a file's first line, or the whole file)
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0] if rows else None


def fields_by_name(collection: Collection) -> dict[str, Field]:
    """Lower-case CSV header -> the canonical field it fills (its own name or an alias)."""
    by_name = {f.column.lower(): f for f in collection.fields}
    for alias, column in ALIASES.items():
        if column in collection.columns:
            by_name[alias] = collection.field(column)
    return by_name


def _fields_by_header(collection: Collection, header: list[str]) -> dict[str, Field] | None:
    """Each header's canonical field (None for columns nobody reads), or None if two headers
    name one field (the row path keeps the last non-empty one, row by row)."""
    by_name = fields_by_name(collection)
    chosen: dict[str, Field] = {}
    for name in header:
        f = by_name.get(name.strip().lower())
        if f is None:
            continue
        if f.column in {c.column for c in chosen.values()}:
            return None
        chosen[name] = f
    return chosen


def _text(cells: pa.Array) -> pa.Array | None:
    """A column's cells trimmed, empty cells null; None if it holds control characters."""
    if pc.any(pc.match_substring_regex(cells, _CONTROL)).as_py():
        return None
    trimmed = pc.utf8_trim_whitespace(cells)
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


def _split(text: pa.Array) -> pa.Array:
    """ "a, b,,c" -> ["a", "b", "c"], as the row path splits multi-valued cells."""
    lists = pc.split_pattern(text, ",")
    items = pc.utf8_trim_whitespace(lists.flatten())
    keep = pc.not_equal(items, "")
    parents = pc.list_parent_indices(lists)
    kept_parents = pc.filter(parents, keep).to_numpy(zero_copy_only=False)
    counts = np.bincount(kept_parents, minlength=len(text))
    offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]), pa.int32())
    return pa.ListArray.from_arrays(offsets, pc.filter(items, keep), mask=text.is_null()).cast(
        STRING_LIST
    )


# A users.csv userIds cell: "{type:identifier}" pairs, apart by commas or spaces at most.
_USER_ID = r"\{[^:{}]*:[^{}]*\}"
_USER_IDS = f"^{_USER_ID}(?:\\s*,?\\s*{_USER_ID})*$"


def _user_ids(text: pa.Array) -> pa.Array | None:
    """userIds cells as the JSON the row path stores ([{"type": …, "identifier": …}, …]), or
    None if a cell holds anything else (the row path keeps such a cell as text)."""
    if not pc.all(pc.match_substring_regex(text, _USER_IDS)).as_py():
        return None
    pairs = pc.split_pattern_regex(pc.utf8_slice_codeunits(text, 1, -1), "\\}\\s*,?\\s*\\{")
    parts = pc.split_pattern(pairs.flatten(), ":", max_splits=1)
    kind = json_string(pc.utf8_trim_whitespace(pc.list_element(parts, 0)))
    identifier = json_string(pc.utf8_trim_whitespace(pc.list_element(parts, 1)))
    if kind is None or identifier is None:
        return None
    return json_arrays(pairs, json_objects([("type", kind), ("identifier", identifier)]))


def _canonical(f: Field, text: pa.Array) -> pa.Array | None:
    if f.kind in (Kind.REFS, Kind.STRINGS):
        return _split(text)
    if f.kind is Kind.JSON:
        if text.null_count == len(text):
            return text
        return _user_ids(text) if f.column == "userIds" else None
    converter = CONVERTERS.get(f.kind)
    if converter is None:
        return text
    converted = converter(text)
    return None if converted_badly(text, converted).any() else converted


def _metadata(keys: list[str], texts: list[pa.Array]) -> pa.Array | None:
    """Vendor and ``metadata.*`` cells as the JSON object the row path keeps of each row (its
    non-empty cells, in the header's order), null where a row has none."""
    members = []
    for key, text in zip(keys, texts, strict=True):
        literal = json_string(text)
        if literal is None:
            return None
        members.append((key, literal))
    objects = json_objects(members)
    return pc.if_else(pc.equal(objects, "{}"), pa.scalar(None, pa.string()), objects)


def _canonical_batch(
    collection: Collection, fields: dict[str, Field], batch: pa.RecordBatch, mode: str
) -> pa.Table | None:
    """One block of the file's rows as canonical columns, or None for the row path."""
    rows = batch.num_rows
    columns: dict[str, pa.Array] = {}
    extra_keys: list[str] = []
    extra_texts: list[pa.Array] = []
    for name in batch.schema.names:
        text = _text(batch.column(name))
        if text is None:
            return None
        f = fields.get(name)
        if f is None:
            if text.null_count != rows:
                extra_keys.append(name.strip().removeprefix("metadata."))
                extra_texts.append(text)
            continue
        column = _canonical(f, text)
        if column is None:
            return None
        columns[f.column] = column
    if extra_keys:
        # The row path keeps them as the record's metadata (over a metadata column of its own).
        if "metadata" in columns or len(set(extra_keys)) != len(extra_keys):
            return None
        metadata = _metadata(extra_keys, extra_texts)
        if metadata is None:
            return None
        columns["metadata"] = metadata
    schema = arrow_schema(collection)
    for f in collection.fields:
        if f.column not in columns:
            columns[f.column] = pa.nulls(rows, schema.field(f.column).type)
    if mode == "bulk":
        # Bulk rows may leave status blank: everything in a bulk file is active unless it says so.
        columns["status"] = pc.fill_null(columns["status"], "active")
    out = pa.table({f.column: columns[f.column] for f in collection.fields}, schema=schema)
    return None if out["sourcedId"].null_count else out


def _gathered(blocks: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """The reader's small blocks as batches of about ``_BATCH_BYTES``, in order."""
    held: list[pa.RecordBatch] = []
    size = 0
    for block in blocks:
        held.append(block)
        size += block.nbytes
        if size >= _BATCH_BYTES:
            yield pa.Table.from_batches(held).combine_chunks().to_batches()[0]
            held, size = [], 0
    if held:
        yield pa.Table.from_batches(held).combine_chunks().to_batches()[0]


class RowPath(Exception):
    """The file cannot be read columnar exactly: the row path reads it (and says why)."""


def file_batches(
    collection: Collection, open_file: Callable[[], BinaryIO], mode: str
) -> Iterator[pa.Table]:
    """A collection's CSV file as canonical tables, a 16 MB block at a time: the file is
    never whole in memory, inflated or parsed. Raises ``RowPath`` (possibly after some
    blocks) where the columnar reading cannot take the file exactly."""
    with open_file() as fh:
        header = _header(fh.readline())
    if not header or len(set(header)) != len(header):
        raise RowPath
    fields = _fields_by_header(collection, header)
    if fields is None:
        raise RowPath
    wanted = [h for h in header if h.strip().lower() not in SECRET_COLUMNS]
    with open_file() as fh:
        try:
            reader = pacsv.open_csv(
                fh,
                read_options=pacsv.ReadOptions(block_size=READ_BLOCK),
                parse_options=pacsv.ParseOptions(newlines_in_values=True),
                convert_options=pacsv.ConvertOptions(
                    column_types={h: pa.string() for h in header},
                    include_columns=wanted,
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
            if reader.schema.names != wanted:
                raise RowPath
            for batch in _gathered(reader):
                part = _canonical_batch(collection, fields, batch, mode)
                if part is None:
                    raise RowPath
                yield part
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            raise RowPath from None


def read_file(collection: Collection, data: bytes, mode: str) -> pa.Table | None:
    """A collection's CSV file as its canonical table, or None for the row path."""
    try:
        parts = list(file_batches(collection, lambda: io.BytesIO(data), mode))
    except RowPath:
        return None
    return pa.concat_tables(parts) if parts else arrow_schema(collection).empty_table()
