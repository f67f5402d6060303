"""A page of OneRoster REST JSON rendered column by column in Arrow.

The same JSON as ``Renderer.record`` for every row (the tests compare them), without a Python
loop over records, so the simulator can serve a district of a million students: each field
becomes a column of ``"name":value`` fragments, and the fragments of a row are joined.
"""

from __future__ import annotations

from typing import Any

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..oneroster.collections import COLLECTIONS, Field, Kind
from .render import REF_ENDPOINTS, REF_TYPES, ROLE_1P2
from .vendors import VendorProfile

NEEDS_ESCAPE = r'[\x00-\x1f"\\]'


def _arrow(values: pd.Series) -> pa.Array:
    if isinstance(values.dtype, pd.ArrowDtype):
        return pa.array(values)
    return pa.array(values.to_numpy(dtype=object), from_pandas=True)


def _quote(strings: pa.Array) -> pa.Array:
    """JSON string literals; the rare value that needs escaping goes through orjson."""
    strings = pc.cast(strings, pa.string())
    quoted = pc.binary_join_element_wise('"', strings, '"', "")
    escape = pc.fill_null(pc.match_substring_regex(strings, NEEDS_ESCAPE), False)
    if not pc.any(escape).as_py():
        return quoted
    dumped = [
        None if s is None else (orjson.dumps(s).decode() if e else f'"{s}"')
        for s, e in zip(strings.to_pylist(), escape.to_pylist(), strict=True)
    ]
    return pa.array(dumped, pa.string())


def _cat(*parts: Any) -> pa.Array:
    """Element-wise concatenation; any null part makes the result null (a missing field)."""
    return pc.binary_join_element_wise(*parts, "", null_handling="emit_null")


class PageRenderer:
    def __init__(self, profile: VendorProfile, base_url: str):
        self.profile = profile
        self.base = base_url

    def _kind(self, column: str, collection: str) -> str:
        kind = REF_TYPES.get(column, "org")
        if collection == "academic_sessions" and column in ("parentSourcedId", "childSourcedIds"):
            kind = "academicSession"
        return kind

    def _ref(self, ids: pa.Array, kind: str) -> pa.Array:
        ids = pc.cast(ids, pa.string())
        href = _quote(pc.binary_join_element_wise(f"{self.base}/{REF_ENDPOINTS[kind]}/", ids, ""))
        return _cat('{"href":', href, ',"sourcedId":', _quote(ids), f',"type":"{kind}"}}')

    def _list(self, lists: pa.Array, element) -> pa.Array:
        """``[a,b]`` from a list column, with ``element`` rendering the flattened values."""
        lists = pc.cast(lists, pa.list_(pa.string())) if lists.type != pa.null() else lists
        if lists.type == pa.null():
            return pa.nulls(len(lists), pa.string())
        rendered = element(pc.list_flatten(lists))
        rebuilt = pa.ListArray.from_arrays(lists.offsets, rendered, mask=lists.is_null())
        return _cat("[", pc.binary_join(rebuilt, ","), "]")

    def _bool(self, values: pa.Array) -> pa.Array:
        yes, no = ('"true"', '"false"') if self.profile.string_booleans else ("true", "false")
        return pc.if_else(pc.cast(values, pa.bool_()), yes, no)

    def _date(self, values: pa.Array) -> pa.Array:
        if pa.types.is_timestamp(values.type):
            values = pc.cast(pc.cast(values, pa.timestamp("us")), pa.date32())
        text = pc.strftime(pc.cast(values, pa.date32()), "%Y-%m-%d")
        if self.profile.datetime_dates:
            text = _cat(text, "T05:00:00.000Z")
        return _cat('"', text, '"')

    def _datetime(self, values: pa.Array) -> pa.Array:
        if not pa.types.is_timestamp(values.type):
            values = pa.array(pd.to_datetime(values.to_pandas(), utc=True))
        millis = pc.cast(values, pa.timestamp("ms", tz="UTC"))
        return _cat('"', pc.strftime(millis, "%Y-%m-%dT%H:%M:%S"), 'Z"')

    def _json(self, values: pa.Array) -> pa.Array:
        if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
            return values
        if values.type == pa.null():
            return pa.nulls(len(values), pa.string())
        return pa.array(
            [None if v is None else orjson.dumps(v).decode() for v in values.to_pylist()],
            pa.string(),
        )

    def value(self, f: Field, values: pa.Array, collection: str) -> pa.Array:
        match f.kind:
            case Kind.REF:
                return self._ref(values, self._kind(f.column, collection))
            case Kind.REFS:
                kind = self._kind(f.column, collection)
                return self._list(values, lambda v: self._ref(v, kind))
            case Kind.STRINGS:
                return self._list(values, _quote)
            case Kind.BOOL:
                return self._bool(values)
            case Kind.DATE:
                return self._date(values)
            case Kind.DATETIME:
                return self._datetime(values)
            case Kind.JSON:
                return self._json(values)
            case _:
                if pa.types.is_integer(values.type) or pa.types.is_floating(values.type):
                    return pc.cast(values, pa.string())
                return _quote(values)

    def page(self, collection: str, frame: pd.DataFrame) -> bytes:
        """The records of ``frame`` as a JSON array (bytes)."""
        if frame.empty:
            return b"[]"
        users_1p2 = collection == "users" and self.profile.version == "1.2"
        parts: list[pa.Array] = []
        for f in COLLECTIONS[collection].fields:
            if f.column not in frame.columns:
                continue
            name = f.rest_name
            if users_1p2 and name in ("role", "orgs", "roles"):
                continue
            if collection == "users" and not users_1p2 and name == "primaryOrg":
                continue
            values = _arrow(frame[f.column])
            if values.null_count == len(values):
                continue
            parts.append(_cat(f'"{name}":', self.value(f, values, collection)))
        if users_1p2:
            parts.append(self._roles(frame))
            if "enabledUser" not in frame.columns or frame["enabledUser"].isna().any():
                enabled = _arrow(frame["enabledUser"]) if "enabledUser" in frame.columns else None
                default = f'"enabledUser":{self._bool(pa.array([True]))[0].as_py()}'
                parts.append(
                    pc.if_else(enabled.is_null(), default, None)
                    if enabled is not None
                    else pa.array([default] * len(frame))
                )
        if collection == "enrollments":
            primary = _arrow(frame["primary"]) if "primary" in frame.columns else None
            default = f'"primary":{self._bool(pa.array([False]))[0].as_py()}'
            parts.append(
                pc.if_else(primary.is_null(), default, None)
                if primary is not None
                else pa.array([default] * len(frame))
            )
        records = pc.binary_join_element_wise(*parts, ",", null_handling="skip")
        return b"[{" + "},{".join(records.to_pylist()).encode() + b"}]"

    def _roles(self, frame: pd.DataFrame) -> pa.Array:
        """1.2: ``roles`` from the 1.1 ``role`` and ``orgs``: the first org primary."""
        n = len(frame)
        role = (
            _arrow(frame["role"].map(lambda r: ROLE_1P2.get(r, r)))
            if "role" in frame.columns
            else pa.nulls(n, pa.string())
        )
        role_lit = pc.fill_null(_quote(role), "null")
        orgs = (
            _arrow(frame["orgSourcedIds"])
            if "orgSourcedIds" in frame.columns
            else pa.nulls(n, pa.list_(pa.string()))
        )
        if orgs.type == pa.null():
            orgs = pa.nulls(n, pa.list_(pa.string()))
        orgs = pc.cast(orgs, pa.list_(pa.string()))
        filled = pc.if_else(orgs.is_null(), pa.scalar([], pa.list_(pa.string())), orgs)
        flat = pc.list_flatten(filled)
        parent = pc.list_parent_indices(filled)
        starts = pc.take(pa.array(filled.offsets.to_numpy()[:-1]), parent)
        position = pc.subtract(pa.array(range(len(flat)), pa.int32()), pc.cast(starts, pa.int32()))
        role_type = pc.if_else(pc.equal(position, 0), "primary", "secondary")
        element = _cat(
            '{"roleType":"',
            role_type,
            '","role":',
            pc.take(role_lit, parent),
            ',"org":',
            self._ref(flat, "org"),
            "}",
        )
        rebuilt = pa.ListArray.from_arrays(filled.offsets, element)
        return _cat('"roles":[', pc.binary_join(rebuilt, ","), "]")
