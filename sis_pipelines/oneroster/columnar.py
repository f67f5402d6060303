"""A page of REST records decoded straight into canonical Arrow columns.

Decoding a page into a Python dict per record costs more than everything after it (about
6 µs a record for an enrollment, before a single column exists). Arrow's C++ JSON reader
builds the columns without any Python object, about five times faster. It is strict, which
is what makes it safe here: any page it cannot take exactly (a value of another JSON type, a
reference given as bare text, metadata present, a record the record path would reject, an
imsx envelope, an envelope key in another case) returns None, and the page goes through
:func:`.normalise.normalise_page` record by record, which knows how to reject with reasons.
Both paths give the same table for the pages both can read (tested).
"""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from .collections import Collection, Field, Kind
from .normalise import CONVERTERS, arrow_schema, converted_badly

_GUID_REF = pa.struct([("sourcedId", pa.string())])
_MAX_PAGE_BYTES = 1 << 30  # Arrow reads one JSON document as one block
_JSON_BOOLEAN = re.compile(rb'":\s*(?:true|false)\b')
_SNIFF_BYTES = 1 << 16  # the first records tell; a wrong guess costs a parse, never a value


def _json_type(f: Field, bools_as_text: bool) -> pa.DataType:
    if f.kind is Kind.REF:
        return _GUID_REF
    if f.kind is Kind.REFS:
        return pa.list_(_GUID_REF)
    if f.kind is Kind.STRINGS:
        return pa.list_(pa.string())
    if f.kind is Kind.JSON:
        return pa.struct([])  # only tells present from absent: present takes the record path
    if f.kind is Kind.BOOL and not bools_as_text:
        return pa.bool_()
    return pa.string()


def _read(collection: Collection, content: bytes, bools_as_text: bool) -> pa.StructArray | None:
    record = pa.struct([(f.rest_name, _json_type(f, bools_as_text)) for f in collection.fields])
    try:
        page = pj.read_json(
            pa.BufferReader(content),
            read_options=pj.ReadOptions(block_size=len(content) + 1, use_threads=False),
            parse_options=pj.ParseOptions(
                explicit_schema=pa.schema([(collection.envelope, pa.list_(record))]),
                unexpected_field_behavior="ignore",
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    if page.num_rows != 1:
        return None
    lists = page.column(0).combine_chunks()
    if lists.null_count:
        return None  # no such envelope key (or another case of it)
    records = lists.flatten()
    return None if records.null_count else records


def _column(records: pa.StructArray, f: Field) -> pa.Array | None:
    raw = records.field(f.rest_name)
    if f.kind is Kind.REF:
        return raw.flatten()[0]
    if f.kind is Kind.REFS:
        ids = raw.values.flatten()[0]
        return pa.ListArray.from_arrays(raw.offsets, ids, mask=raw.is_null())
    if f.kind is Kind.JSON:
        return pa.nulls(len(raw), pa.string()) if raw.null_count == len(raw) else None
    converter = CONVERTERS.get(f.kind)
    if converter is None:
        return raw
    converted = converter(raw)
    return None if converted_badly(raw, converted).any() else converted


def _boolean_forms(collection: Collection, content: bytes) -> tuple[bool, ...]:
    """Whether to read boolean fields as text, in the order to try: 1.1 sends "true" as text,
    1.2 as a JSON boolean, and a wrong first guess costs a whole second parse of the page."""
    if not any(f.kind is Kind.BOOL for f in collection.fields):
        return (True,)
    # Only the page's start: a regex over a whole 15 MB page cost a tenth of decoding it.
    found = _JSON_BOOLEAN.search(content, 0, _SNIFF_BYTES)
    return (False, True) if found else (True, False)


def decode_page(collection: Collection, content: bytes) -> pa.Table | None:
    """The page as a canonical table with nothing to reject, or None for the record path."""
    # Users take the record path: 1.2 roles are folded into role and orgs record by record.
    if collection.name == "users" or len(content) > _MAX_PAGE_BYTES or b'"imsx_' in content:
        return None
    for bools_as_text in _boolean_forms(collection, content):
        records = _read(collection, content, bools_as_text)
        if records is not None:
            break
    else:
        return None
    columns = {}
    for f in collection.fields:
        column = _column(records, f)
        if column is None:
            return None
        columns[f.column] = column
    table = pa.table(columns, schema=arrow_schema(collection))
    ids = table["sourcedId"]
    if ids.null_count or pc.any(pc.equal(ids, "")).as_py():
        return None
    return table
