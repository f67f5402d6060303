"""OneRoster 1.1 and 1.2 records into one columnar model per collection.

Records arrive page by page; each page becomes an Arrow table with the canonical columns of
:mod:`.collections`. Field extraction is the decoding step (one comprehension per column);
every conversion after it (booleans, dates, time stamps, validity) is vectorised in Arrow.
Records that cannot be represented at all are returned as rejects with their reason and
raw JSON, never dropped silently.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from .collections import Collection, Field, Kind
from .repair import Repairs
from .shown import shown

STRING_LIST = pa.list_(pa.string())
TIMESTAMP = pa.timestamp("us", tz="UTC")

ARROW_TYPES: dict[Kind, pa.DataType] = {
    Kind.STRING: pa.string(),
    Kind.BOOL: pa.bool_(),
    Kind.DATE: pa.date32(),
    Kind.DATETIME: TIMESTAMP,
    Kind.REF: pa.string(),
    Kind.REFS: STRING_LIST,
    Kind.STRINGS: STRING_LIST,
    Kind.JSON: pa.string(),
}

# The SIS sometimes wraps a single value where the model says list, or the reverse.
_SCALAR = (str, int, float, bool)


def arrow_schema(collection: Collection) -> pa.Schema:
    return pa.schema([pa.field(f.column, ARROW_TYPES[f.kind]) for f in collection.fields])


@dataclass
class Rejects:
    """Records refused during normalisation: reason and raw JSON for each; and the fields of
    kept records that were repaired (an optional field that could not be read)."""

    sourced_ids: list[str | None] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    records: list[str] = field(default_factory=list)
    repairs: Repairs = field(default_factory=Repairs)

    def add(self, sourced_id: Any, reason: str, record: Any) -> None:
        self.sourced_ids.append(sourced_id if isinstance(sourced_id, str) else None)
        self.reasons.append(reason)
        self.records.append(orjson.dumps(record, default=str).decode())

    def extend(self, other: Rejects) -> None:
        self.sourced_ids += other.sourced_ids
        self.reasons += other.reasons
        self.records += other.records
        self.repairs.extend(other.repairs)

    def __len__(self) -> int:
        return len(self.reasons)

    def to_table(self) -> pa.Table:
        return pa.table(
            {
                "sourcedId": pa.array(self.sourced_ids, pa.string()),
                "reason": pa.array(self.reasons, pa.string()),
                "record": pa.array(self.records, pa.string()),
            }
        )


# ---------------------------------------------------------------- decoding (per field)


def _ref_id(value: Any) -> Any:
    if isinstance(value, dict):
        return value.get("sourcedId")
    return value


def _raw_values(records: list[dict], f: Field) -> list[Any]:
    name = f.rest_name
    if f.kind is Kind.REF:
        return [_ref_id(r.get(name)) for r in records]
    if f.kind is Kind.REFS:
        return [
            None
            if (v := r.get(name)) is None
            else [_ref_id(x) for x in v]
            if isinstance(v, list)
            else v
            for r in records
        ]
    return [r.get(name) for r in records]


def _strings(
    values: list[Any], bad: np.ndarray, reasons: list[str | None], column: str
) -> pa.Array:
    try:
        return pa.array(values, pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        out: list[str | None] = []
        for i, v in enumerate(values):
            if v is None or isinstance(v, str):
                out.append(v)
            elif isinstance(v, _SCALAR):
                out.append(str(v))  # numeric identifiers are common; they are still ids
            else:
                out.append(None)
                _flag(bad, reasons, i, f"{column}: expected a text value, got {type(v).__name__}")
        return pa.array(out, pa.string())


def _string_lists(
    values: list[Any], bad: np.ndarray, reasons: list[str | None], column: str
) -> pa.Array:
    # Arrow would read a plain string as a list of characters, so those take the slow path.
    if not any(isinstance(v, str) for v in values):
        try:
            return pa.array(values, STRING_LIST)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass
    out: list[list[str] | None] = []
    for i, v in enumerate(values):
        if v is None:
            out.append(None)
        elif isinstance(v, str):
            out.append([s.strip() for s in v.split(",") if s.strip()])
        elif isinstance(v, list) and all(isinstance(x, _SCALAR) for x in v):
            out.append([str(x) for x in v])
        else:
            out.append(None)
            _flag(bad, reasons, i, f"{column}: expected a list of text values")
    return pa.array(out, STRING_LIST)


def _as_arrow(values: list[Any]) -> pa.Array | None:
    """The values as Arrow reads them (JSON booleans, or text such as ``"true"``), or None
    when they mix types: then they are read as text, value by value."""
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None


def _repaired(rejects: Rejects, record: dict, column: str, value: Any, reason: str) -> None:
    """An optional field that could not be read: emptied, recorded with the SIS's value."""
    where = f"{record['__file__']} line {record['__line__']}: " if "__line__" in record else ""
    shown = (
        value
        if value is None or isinstance(value, str)
        else orjson.dumps(value, default=str).decode()
    )
    rejects.repairs.add(
        record.get("sourcedId"), column, shown, f"{where}{reason}; emptied (optional in OneRoster)"
    )


def _flag(bad: np.ndarray, reasons: list[str | None], i: int, reason: str) -> None:
    if not bad[i]:
        bad[i] = True
        reasons[i] = reason


# ---------------------------------------------------------------- conversion (vectorised)


def to_bool(arr: pa.Array) -> pa.Array:
    """JSON booleans and the strings "true"/"false" (any case) to booleans; else null."""
    if pa.types.is_boolean(arr.type):
        return arr
    if pa.types.is_null(arr.type):
        return pa.nulls(len(arr), pa.bool_())
    text = pc.utf8_lower(pc.utf8_trim_whitespace(arr.cast(pa.string())))
    is_true = pc.equal(text, "true")
    is_false = pc.equal(text, "false")
    return pc.if_else(is_true, True, pc.if_else(is_false, False, pa.scalar(None, pa.bool_())))


def _date_time_text(text: pa.Array) -> pa.Array:
    """'YYYY-MM-DD[T ]HH:MM:SS…' to a naive timestamp of its wall clock; date-only gives midnight."""
    day = pc.utf8_slice_codeunits(text, 0, 10)
    clock = pc.utf8_slice_codeunits(text, 11, 19)
    clock = pc.if_else(pc.equal(pc.utf8_length(clock), 0), "00:00:00", clock)
    joined = pc.binary_join_element_wise(day, clock, "T")
    return pc.strptime(joined, format="%Y-%m-%dT%H:%M:%S", unit="s", error_is_null=True)


def to_date(arr: pa.Array) -> pa.Array:
    """Dates, also when the SIS sends them as date-times.

    A date rendered as a UTC date-time (the Ed-Fi provider does this) is midnight in the
    server's zone, so anywhere from 12:00 the day before to 12:00 the same day in UTC:
    rounding to the nearest midnight recovers the date for any zone within ±12 h. A time of
    23:59:59 is the end-of-day convention and keeps its own date (no zone is 1 s off the hour).
    """
    if pa.types.is_date32(arr.type):
        return arr
    if pa.types.is_null(arr.type):
        return pa.nulls(len(arr), pa.date32())
    text = pc.utf8_trim_whitespace(arr.cast(pa.string()))
    ts = _date_time_text(text)
    end_of_day = pc.and_(
        pc.and_(pc.equal(pc.hour(ts), 23), pc.equal(pc.minute(ts), 59)), pc.equal(pc.second(ts), 59)
    )
    rounded = pc.add(ts, pa.scalar(12 * 3600, pa.duration("s")))
    return pc.if_else(end_of_day, ts, rounded).cast(pa.date32())


def to_timestamp(arr: pa.Array) -> pa.Array:
    if pa.types.is_timestamp(arr.type):
        return arr.cast(TIMESTAMP)
    if pa.types.is_null(arr.type):
        return pa.nulls(len(arr), TIMESTAMP)
    text = pc.utf8_trim_whitespace(arr.cast(pa.string()))
    # Fast paths keep fractions and offsets: all zoned ISO 8601, or all naive (taken as UTC).
    try:
        return pc.cast(text, TIMESTAMP)
    except pa.ArrowInvalid:
        pass
    try:
        return pc.assume_timezone(pc.cast(text, pa.timestamp("us")), "UTC")
    except pa.ArrowInvalid:
        pass
    # Mixed or partly invalid: whole seconds of the wall clock, invalid values become null.
    return pc.assume_timezone(_date_time_text(text), "UTC").cast(TIMESTAMP)


def converted_badly(raw: pa.Array, converted: pa.Array) -> np.ndarray:
    """Where a value was given but could not be converted."""
    given = pc.is_valid(raw)
    if pa.types.is_string(raw.type):
        given = pc.and_(given, pc.not_equal(pc.utf8_trim_whitespace(raw), ""))
    return pc.and_(given, pc.is_null(converted)).fill_null(False).to_numpy(zero_copy_only=False)


CONVERTERS: dict[Kind, Callable[[pa.Array], pa.Array]] = {
    Kind.BOOL: to_bool,
    Kind.DATE: to_date,
    Kind.DATETIME: to_timestamp,
}


# ---------------------------------------------------------------- 1.2 users


# Lists of objects kept as JSON text with these keys, in this order (references as
# sourcedIds, empty values left out); keys OneRoster does not define are dropped.
ROLE_KEYS = ("roleType", "role", "org", "userProfile", "beginDate", "endDate")
USER_ID_KEYS = ("type", "identifier")
OBJECT_REFS = ("org", "userProfile")  # keys whose GUIDRef is kept as its sourcedId


def strictly_ascending(values: pa.Array | pa.ChunkedArray) -> bool:
    """Whether values (no nulls) rise strictly: sorted and unique, told in one Arrow pass.

    Chunk by chunk, then across the seams: a fetched collection is a chunk per page, and
    joining ten million ids into one array first would copy them all.
    """
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    chunks = [c for c in chunks if len(c)]
    for chunk in chunks:
        if len(chunk) > 1 and not pc.all(pc.greater(chunk[1:], chunk[:-1])).as_py():
            return False
    return all(pc.greater(b[0], a[-1]).as_py() for a, b in itertools.pairwise(chunks))


def _compact(items: Any, keys: tuple[str, ...]) -> Any:
    if not isinstance(items, list):
        return items
    return [
        {
            k: v
            for k in keys
            if (v := (_ref_id(x.get(k)) if k in OBJECT_REFS else x.get(k))) is not None
        }
        if isinstance(x, dict)
        else x
        for x in items
    ]


NAME_ALIASES = (
    ("preferredGivenName", "preferredFirstName"),
    ("preferredFamilyName", "preferredLastName"),
)


def _user_roles_1p2(records: list[dict]) -> None:
    """Derive 1.1-style ``role`` and ``orgs`` from 1.2 ``roles[]`` (in place, per record).

    The primary role is the one with roleType primary at the user's primary org, else the
    first primary role, else the first role; ``orgs`` are the roles' orgs, each once. Both
    are derived only where the record gives none itself. :mod:`.columnar` does the same in
    Arrow (tested equal).
    """
    for r in records:
        r.pop("password", None)  # a 1.1 field: never kept
        for profile in r.get("userProfiles") or []:
            for credential in (
                (profile.get("credentials") or []) if isinstance(profile, dict) else []
            ):
                if isinstance(credential, dict):
                    credential.pop("password", None)
        for alias, canonical in NAME_ALIASES:
            if r.get(canonical) is None and alias in r:
                r[canonical] = r[alias]
        if "userIds" in r:
            r["userIds"] = _compact(r["userIds"], USER_ID_KEYS)
        roles = r.get("roles")
        if not isinstance(roles, list) or not roles:
            continue
        primary_org = _ref_id(r.get("primaryOrg"))
        primaries = [x for x in roles if isinstance(x, dict) and x.get("roleType") == "primary"]
        chosen = next((x for x in primaries if _ref_id(x.get("org")) == primary_org), None)
        chosen = chosen or (primaries[0] if primaries else roles[0])
        if isinstance(chosen, dict) and r.get("role") is None:
            r["role"] = chosen.get("role")
        if r.get("orgs") is None:
            orgs = (_ref_id(x.get("org")) for x in roles if isinstance(x, dict))
            r["orgs"] = list(dict.fromkeys(o for o in orgs if o is not None))
        # Kept compact: references as sourcedIds, like every other column (hrefs carry hosts).
        r["roles"] = _compact(roles, ROLE_KEYS)


# ---------------------------------------------------------------- page


def normalise_page(
    collection: Collection, records: list[dict], hook: Callable[[dict], None] | None = None
) -> tuple[pa.Table, Rejects]:
    """One page of REST records (1.1 or 1.2) to (canonical table, rejects).

    ``hook`` sees every record first (data minimisation), so rejects keep only what it left.
    """
    rejects = Rejects()
    records = [
        r
        for r in records
        if isinstance(r, dict) or rejects.add(None, "record is not a JSON object", r)
    ]
    if hook is not None:
        for r in records:
            hook(r)
    if collection.name == "users":
        _user_roles_1p2(records)
    n = len(records)
    bad = np.zeros(n, dtype=bool)
    reasons: list[str | None] = [None] * n
    columns: dict[str, pa.Array] = {}
    for f in collection.fields:
        values = _raw_values(records, f)
        if f.kind is Kind.JSON:
            columns[f.column] = pa.array(
                [None if v is None else orjson.dumps(v, default=str).decode() for v in values],
                pa.string(),
            )
            continue
        # What this field cannot read: the record goes if the field is required, else the
        # field is emptied and the repair recorded.
        unread = np.zeros(n, dtype=bool)
        why: list[str | None] = [None] * n
        if f.kind in (Kind.REFS, Kind.STRINGS):
            column = _string_lists(values, unread, why, f.column)
        else:
            raw = _as_arrow(values) if f.kind is Kind.BOOL else None
            if raw is None:
                raw = _strings(values, unread, why, f.column)
            converter = CONVERTERS.get(f.kind)
            column = raw if converter is None else converter(raw)
            if converter is not None:
                for i in np.flatnonzero(converted_badly(raw, column) & ~unread):
                    _flag(
                        unread,
                        why,
                        int(i),
                        f"{f.column}: invalid {f.kind.value} {shown(values[i])}",
                    )
        for i in np.flatnonzero(unread & ~bad):
            if f.required:
                _flag(bad, reasons, int(i), str(why[i]))
            else:
                _repaired(rejects, records[i], f.column, values[i], str(why[i]))
        if unread.any():
            column = pc.if_else(pa.array(unread), pa.scalar(None, column.type), column)
        columns[f.column] = column
    table = pa.table(columns, schema=arrow_schema(collection))
    ids = table["sourcedId"]
    missing_id = (
        pc.or_(pc.is_null(ids), pc.equal(ids, "")).fill_null(True).to_numpy(zero_copy_only=False)
    )
    for i in np.flatnonzero(missing_id & ~bad):
        _flag(bad, reasons, int(i), "sourcedId: missing")
    if bad.any():
        for i in np.flatnonzero(bad):
            rejects.add(records[i].get("sourcedId"), str(reasons[i]), records[i])
        table = table.filter(pa.array(~bad))
    return table, rejects


def empty_table(collection: Collection) -> pa.Table:
    return arrow_schema(collection).empty_table()
