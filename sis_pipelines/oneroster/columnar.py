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

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from .collections import Collection, Field, Kind
from .normalise import (
    CONVERTERS,
    NAME_ALIASES,
    OBJECT_REFS,
    ROLE_KEYS,
    USER_ID_KEYS,
    arrow_schema,
    converted_badly,
)

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


# Users' lists of objects, read typed and written as the record path writes them.
_OBJECT_LISTS = {"roles": ROLE_KEYS, "userIds": USER_ID_KEYS}


def _object_type(keys: tuple[str, ...]) -> pa.DataType:
    return pa.list_(pa.struct([(k, _GUID_REF if k in OBJECT_REFS else pa.string()) for k in keys]))


def _record_type(collection: Collection, bools_as_text: bool) -> pa.StructType:
    fields = [(f.rest_name, _json_type(f, bools_as_text)) for f in collection.fields]
    if collection.name == "users":
        # 1.2 roles are read as typed lists (and folded below); the 1.2 names of preferred names.
        fields = [
            (n, _object_type(_OBJECT_LISTS[n]) if n in _OBJECT_LISTS else t) for n, t in fields
        ]
        fields += [(alias, pa.string()) for alias, _ in NAME_ALIASES]
    return pa.struct(fields)


def _read(collection: Collection, content: bytes, bools_as_text: bool) -> pa.StructArray | None:
    record = _record_type(collection, bools_as_text)
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
    if len(content) > _MAX_PAGE_BYTES or b'"imsx_' in content:
        return None
    for bools_as_text in _boolean_forms(collection, content):
        records = _read(collection, content, bools_as_text)
        if records is not None:
            break
    else:
        return None
    columns = {}
    for f in collection.fields:
        column = (
            _objects_text(records.field(f.rest_name), _OBJECT_LISTS[f.column])
            if collection.name == "users" and f.column in _OBJECT_LISTS
            else _column(records, f)
        )
        if column is None:
            return None
        columns[f.column] = column
    if collection.name == "users" and not _fold_user_roles(records, columns):
        return None
    table = pa.table(columns, schema=arrow_schema(collection))
    ids = table["sourcedId"]
    if ids.null_count or pc.any(pc.equal(ids, "")).as_py():
        return None
    return table


# ---------------------------------------------------------------- 1.2 users


def json_string(values: pa.Array) -> pa.Array | None:
    """Text as a JSON string literal (as orjson writes it), or None if it needs more than
    quotes and backslashes escaped (control characters: the record path writes those)."""
    if pc.any(pc.match_substring_regex(values, "[\\x00-\\x1f]")).as_py():
        return None
    escaped = pc.replace_substring(pc.replace_substring(values, "\\", "\\\\"), '"', '\\"')
    return pc.binary_join_element_wise('"', escaped, '"', "")


def _object_values(flat: pa.StructArray, key: str) -> pa.Array:
    raw = flat.field(key)
    return raw.field("sourcedId") if key in OBJECT_REFS else raw


def _offsets(lists: pa.ListArray) -> pa.Array:
    """Zero-based offsets of a list array's flattened values (a slice's own are not)."""
    lengths = pc.list_value_length(lists).fill_null(0).to_numpy(zero_copy_only=False)
    return pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))


def json_objects(members: list[tuple[str, pa.Array]]) -> pa.Array:
    """Each row's compact JSON object of the members it has (key, JSON literal or null), in
    their order, as orjson writes a dict; ``{}`` for a row with none."""
    parts = [
        pc.binary_join_element_wise("," + orjson.dumps(key).decode() + ":", literal, "")
        for key, literal in members
    ]
    # Each present member with a leading comma, the first comma cut (Arrow's "skip" of nulls
    # drops a row whose values are all null, so it is not used).
    joined = pc.binary_join_element_wise(*parts, "", null_handling="replace", null_replacement="")
    return pc.binary_join_element_wise("{", pc.utf8_slice_codeunits(joined, 1), "}", "")


def json_arrays(lists: pa.ListArray, values: pa.Array) -> pa.Array:
    """Each list's values (JSON texts, one for each of ``lists``' values) as a JSON array."""
    texts = pa.ListArray.from_arrays(_offsets(lists), values, mask=lists.is_null())
    return pc.binary_join_element_wise("[", pc.binary_join(texts, ","), "]", "")


def _objects_text(lists: pa.ListArray, keys: tuple[str, ...]) -> pa.Array | None:
    """The compact JSON of each list of objects, as the record path writes it."""
    flat = lists.flatten()
    members = []
    for key in keys:
        literal = json_string(_object_values(flat, key))
        if literal is None:
            return None
        members.append((key, literal))
    return json_arrays(lists, json_objects(members))


def _fold_user_roles(records: pa.StructArray, columns: dict[str, pa.Array]) -> bool:
    """``role``, ``orgSourcedIds`` and preferred names from 1.2 fields, in place; False
    when a page holds something the record path must judge (an org without its id)."""
    for alias, canonical in NAME_ALIASES:
        columns[canonical] = pc.coalesce(columns[canonical], records.field(alias))
    roles = records.field("roles")
    flat = roles.flatten()
    if not len(flat):
        return True
    for key in OBJECT_REFS:
        ref = flat.field(key)
        if pc.any(pc.and_(ref.is_valid(), ref.field("sourcedId").is_null())).as_py():
            return False
    user = pc.list_parent_indices(roles).to_numpy()
    org = _object_values(flat, "org")
    primary_org = pc.take(columns["primaryOrgSourcedId"], pa.array(user))
    at_primary_org = pc.or_kleene(
        pc.equal(org, primary_org), pc.and_(org.is_null(), primary_org.is_null())
    ).fill_null(False)
    primary = pc.equal(flat.field("roleType"), "primary").fill_null(False)
    # The record path's choice as a rank: primary at the primary org, primary, any.
    is_primary = primary.to_numpy(zero_copy_only=False)
    rank = np.where(is_primary, 1, 2)
    rank[is_primary & at_primary_org.to_numpy(zero_copy_only=False)] = 0
    position = np.arange(len(flat))
    order = np.lexsort((position, rank, user))
    chosen_users, first = np.unique(user[order], return_index=True)
    chosen = order[first]
    derived = np.full(len(records), None, dtype=object)
    derived[chosen_users] = flat.field("role").take(pa.array(chosen)).to_numpy(zero_copy_only=False)
    columns["role"] = pc.coalesce(columns["role"], pa.array(derived, pa.string()))
    # orgs: each role's org once, in the order of the roles.
    has_org = org.is_valid().to_numpy(zero_copy_only=False)
    org_codes = pc.dictionary_encode(org).indices.to_numpy(zero_copy_only=False)
    pairs = user[has_org].astype(np.int64) * (len(flat) + 1) + org_codes[has_org]
    _, first_pair = np.unique(pairs, return_index=True)
    kept = np.flatnonzero(has_org)[np.sort(first_pair)]
    counts = np.bincount(user[kept], minlength=len(records))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    orgs = pa.ListArray.from_arrays(pa.array(offsets), org.take(pa.array(kept)))
    has_roles = pc.greater(pc.list_value_length(roles), 0).fill_null(False)
    columns["orgSourcedIds"] = pc.if_else(
        pc.and_(has_roles, columns["orgSourcedIds"].is_null()), orgs, columns["orgSourcedIds"]
    )
    return True
