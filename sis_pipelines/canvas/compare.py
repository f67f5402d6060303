"""Which rows of a Canvas file were added, removed or changed between two nights, by key.

The largest districts have ten million enrollments a night, so the comparison runs in
DuckDB: it reads stored Parquet itself, joins with every core and spills to disk beyond
its memory limit, so the delta's memory does not grow with the district. Rows are compared
by their fingerprints (``fingerprint``: a 64-bit hash of the key, one of the whole row),
read from the file where the mapping stored them, else computed from the text. With stored
fingerprints a first pass sums each night up in 65,536 buckets of key hashes (a count and
an XOR of the row hashes, each hashed again): the buckets that agree hold the same rows, and only the rest are
joined. The join pairs rows by key hash, keeps the pairs whose row hashes differ, and reads
just those rows whole.

Two distinct keys may share a key hash (about one chance in 10^19 per pair, five in a
million a night at ten million enrollments): their rows pair up, their row hashes differ
(the row hash covers the key too), and the keys read back differ: every row of such a key
hash is then read from both nights and matched by its key's text, exactly. A changed row
whose row hash stays alike would be missed: about one chance in 10^19 per changed row, far
below any other cause of a wrong import.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from upath import UPath

from ..core.duck import bounded
from ..core.storage import parquet_rows, read_frame
from . import fingerprint
from .fingerprint import KEY_HASH, ROW_HASH, Layout

# One Canvas file of a night: in memory, or as the mapping stored it.
FileSource = pd.DataFrame | UPath

# Beyond this DuckDB spills to a temporary folder: a night within 1 GB at xl (at 2 GB the
# delta step peaked at 1.17 GB; at 256 MB it took a second more).
MEMORY_LIMIT = "512MB"
ROW = "_row"
# 65,536 buckets: at ten million rows the first pass's two tables stay small, and a night's
# few thousand changes leave most buckets alike (18 or 20 bits made the first pass slower).
BUCKET_SHIFT = 64 - 16


def _arrow(frame: pd.DataFrame, columns: list[str]) -> pa.Table:
    """Text columns as Arrow strings (None stays null), whatever the frame's dtypes."""
    return pa.table({c: pa.array(frame[c], type=pa.string(), from_pandas=True) for c in columns})


def _local(path: UPath) -> str | None:
    return path.path if path.protocol in ("", "file", "local") else None


def _schema(source: UPath) -> pa.Schema:
    with source.open("rb") as fh:
        return pq.read_schema(fh)


def columns_of(source: FileSource) -> list[str]:
    """A file's Canvas columns (its fingerprints are not among them)."""
    names = list(source.columns) if isinstance(source, pd.DataFrame) else _schema(source).names
    return [c for c in names if c not in fingerprint.COLUMNS]


def layout_of(source: FileSource) -> Layout | None:
    """What the file's stored fingerprints cover, if it has them."""
    if isinstance(source, pd.DataFrame):
        return None
    schema = _schema(source)
    if not set(fingerprint.COLUMNS) <= set(schema.names):
        return None
    return Layout.from_metadata(schema.metadata)


def rows_in(source: FileSource | None) -> int:
    if source is None:
        return 0
    return len(source) if isinstance(source, pd.DataFrame) else parquet_rows(source)


def read_whole(source: FileSource) -> pd.DataFrame:
    frame = source if isinstance(source, pd.DataFrame) else read_frame(source)
    return frame.drop(columns=[c for c in fingerprint.COLUMNS if c in frame.columns])


def count_where(source: FileSource | None, column: str, value: str) -> int:
    """Rows whose ``column`` equals ``value``, reading that one column only."""
    if source is None:
        return 0
    if isinstance(source, pd.DataFrame):
        return int((source[column].astype(object) == value).sum())
    with source.open("rb") as fh:
        values = pq.read_table(fh, columns=[column])[column]
    # Counted in Arrow: ten million statuses are never ten million Python strings.
    return int(pc.sum(pc.equal(values, value)).as_py() or 0)


def _scan(con: duckdb.DuckDBPyConnection, source: UPath) -> str:
    path = _local(source)
    if path is None:
        con.register("scanned", pa.Table.from_pandas(read_frame(source), preserve_index=False))
        return "scanned"
    return "read_parquet('{}')".format(path.replace("'", "''"))


def distinct(source: UPath, column: str) -> list[str]:
    """The distinct values of one column of a stored file (a district's ten million
    enrollments name half a million courses), read by DuckDB."""
    with bounded(MEMORY_LIMIT, "delta") as con:
        table = con.sql(
            f'select distinct cast("{column}" as varchar) as v from {_scan(con, source)} '
            f'where "{column}" is not null'
        ).fetch_arrow_table()
    return table["v"].to_pylist()


def studying_users(source: FileSource | None, users: set[str], night: date) -> set[str]:
    """Which of ``users`` hold an enrollment in ``source`` whose term has not ended by
    ``night`` (the term's end date kept beside each enrollment by the mapping)."""
    if source is None or not users or not rows_in(source):
        return set()
    from .enrollments import INTERNAL

    if isinstance(source, pd.DataFrame):
        if INTERNAL not in source:
            return set()
        from .lifecycle import ended

        running = ~ended(source[INTERNAL], night)
        return set(source.loc[running, "user_id"].astype(str)) & users
    if INTERNAL not in _schema(source).names:
        return set()
    with bounded(MEMORY_LIMIT, "delta") as con:
        con.register("wanted", pa.table({"v": pa.array(sorted(users), pa.string())}))
        table = con.sql(
            f"select distinct cast(user_id as varchar) as v from {_scan(con, source)} "
            f"where user_id in (select v from wanted) and "
            f"coalesce(try_cast(try_cast({INTERNAL} as timestamptz) as date) >= date '{night}', true)"
        ).fetch_arrow_table()
    return set(table["v"].to_pylist())


@dataclass
class Comparison:
    """The rows that differ, whole, each group in its file's order."""

    added: pd.DataFrame  # rows only tonight has
    removed: pd.DataFrame  # rows only the night before had
    changed_was: pd.DataFrame  # rows of a key both nights have, as they were ...
    changed_now: pd.DataFrame  # ... and as they are (their values may still be alike)


class NightFile:
    """One night's file as a DuckDB relation: every column as text, the row's position and
    its fingerprints (stored, or computed from the text)."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        name: str,
        source: FileSource,
        columns: list[str],
        hashes: tuple[str, str] | None,
    ) -> None:
        self.con, self.name, self.columns = con, name, columns
        self.stored = hashes is None
        present = set(columns_of(source))
        self.table: pa.Table | None = None
        path = None if isinstance(source, pd.DataFrame) else _local(source)
        if path is None:
            # In memory, or stored where DuckDB cannot read it itself.
            frame = source if isinstance(source, pd.DataFrame) else read_frame(source)
            self.table = _arrow(frame.reindex(columns=columns), columns)  # missing: empty
            if self.stored:
                for column in fingerprint.COLUMNS:
                    hashes = pa.array(frame[column], pa.uint64())
                    self.table = self.table.append_column(column, hashes)
            self.table = self.table.append_column(ROW, pa.array(np.arange(len(frame))))
            present = set(columns)
            con.register(f"{name}_source", self.table)
            scan = f"select * from {name}_source"
        else:
            quoted = path.replace("'", "''")
            scan = f"select *, file_row_number as {ROW} from read_parquet('{quoted}', file_row_number = true)"
        cells = [
            f'cast("{c}" as varchar) as "{c}"' if c in present else f'null::varchar as "{c}"'
            for c in columns
        ]
        kept = f'"{KEY_HASH}", "{ROW_HASH}", ' if self.stored else ""
        text = f"select {', '.join(cells)}, {kept}{ROW} from ({scan})"
        if hashes is not None:
            # Computed only where a query asks for them (DuckDB drops unused columns).
            key_sql, row_sql = hashes
            text = f"select *, {key_sql} as {KEY_HASH}, {row_sql} as {ROW_HASH} from ({text})"
        con.execute(f"create temp view {name} as {text}")

    def rows(self, positions: np.ndarray) -> pd.DataFrame:
        """The rows at ``positions`` (ascending), indexed by position: object columns, None
        for missing."""
        if not len(positions):
            picked = pa.table({c: pa.array([], pa.string()) for c in self.columns})
        elif self.table is not None:
            picked = self.table.take(pa.array(positions, pa.int64())).select(self.columns)
        else:
            picked = self._where_in(ROW, pa.array(positions, pa.int64()))
        return _objects(picked, self.columns, positions)

    def rows_of_key_hashes(self, hashes: np.ndarray) -> pd.DataFrame:
        """Every row whose key hash is among ``hashes``, indexed by position."""
        picked = self._where_in(KEY_HASH, pa.array(hashes, pa.uint64()))
        return _objects(picked, self.columns, picked[ROW].to_numpy())

    def _where_in(self, column: str, wanted: pa.Array) -> pa.Table:
        """The rows (with their position) whose ``column`` is among ``wanted``, in file order."""
        names = ", ".join(f'"{c}"' for c in self.columns)
        self.con.register("wanted", pa.table({"v": wanted}))
        try:
            return self.con.sql(
                f"select {names}, {ROW} from {self.name} "
                f"where {column} in (select v from wanted) order by {ROW}"
            ).fetch_arrow_table()
        finally:
            self.con.unregister("wanted")


def _objects(picked: pa.Table, columns: list[str], positions: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame(
        {c: picked[c].to_numpy(zero_copy_only=False) for c in columns},
        index=pd.Index(np.asarray(positions, np.int64)),
    )
    return frame.astype(object).where(frame.notna(), None)


@contextmanager
def comparing(
    previous: FileSource, current: FileSource, key: list[str], values: list[str], columns: list[str]
) -> Iterator[tuple[NightFile, NightFile]]:
    """The two nights' files, with fingerprints of ``key`` and ``values``: the stored ones
    when both files have them for exactly these columns, else computed alike for both."""
    wanted = Layout.of(key, values)
    stored = layout_of(previous) == wanted and layout_of(current) == wanted
    hashes = (
        None if stored else (fingerprint.key_hash_sql(key), fingerprint.row_hash_sql(key, values))
    )
    with bounded(MEMORY_LIMIT, "delta") as con:
        yield (
            NightFile(con, "old", previous, columns, hashes),
            NightFile(con, "new", current, columns, hashes),
        )


def _dirty_buckets(old: NightFile, new: NightFile) -> pa.Table:
    """The buckets of key hashes whose rows differ between the nights (by count and XOR of
    row hashes: rows alike give both alike, whatever their order). Each row hash is hashed
    again first: a row hash is an XOR of its cells' terms, so two rows of a bucket making
    the same change (a term's new end date), or swapping a value, would cancel out in a
    plain XOR and the bucket would look alike."""

    def summary(side: NightFile) -> str:
        return (
            f"select {KEY_HASH} >> {BUCKET_SHIFT} as b, bit_xor(hash({ROW_HASH})) as x, "
            f"count(*) as c from {side.name} group by b"
        )

    return old.con.sql(
        f"""
        with o as ({summary(old)}), n as ({summary(new)})
        select coalesce(o.b, n.b) as b from o full outer join n on o.b = n.b
        where o.b is null or n.b is null or o.x <> n.x or o.c <> n.c
        """
    ).fetch_arrow_table()


def _pairs(old: NightFile, new: NightFile) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions of rows that differ, as (was, now) pairs with -1 for a missing side, and
    their key hash."""
    where = ""
    if old.stored and new.stored:
        dirty = _dirty_buckets(old, new)
        if not dirty.num_rows:
            empty = np.array([], np.int64)
            return empty, empty, np.array([], np.uint64)
        old.con.register("dirty", dirty)
        where = f"where {KEY_HASH} >> {BUCKET_SHIFT} in (select b from dirty)"
    pairs = old.con.sql(
        f"""
        with o as (select {KEY_HASH} as k, {ROW_HASH} as h, {ROW} from {old.name} {where}),
             n as (select {KEY_HASH} as k, {ROW_HASH} as h, {ROW} from {new.name} {where})
        select o.{ROW} as was, n.{ROW} as now, coalesce(o.k, n.k) as k
        from o full outer join n on o.k = n.k
        where o.{ROW} is null or n.{ROW} is null or o.h <> n.h
        """
    ).fetch_arrow_table()
    was = pc.fill_null(pairs["was"], -1).to_numpy().astype(np.int64)
    now = pc.fill_null(pairs["now"], -1).to_numpy().astype(np.int64)
    return was, now, pairs["k"].to_numpy().astype(np.uint64)


def _rows_at(rows: pd.DataFrame, positions: np.ndarray) -> pd.DataFrame:
    return rows.loc[positions].reset_index(drop=True)


def _matched_by_key(
    old: pd.DataFrame, new: pd.DataFrame, key: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """(was, now) positions of rows matched by their key's text, -1 where one side has none."""
    both = old[key].assign(was=old.index).merge(new[key].assign(now=new.index), on=key, how="outer")
    return (
        both["was"].fillna(-1).to_numpy(np.int64),
        both["now"].fillna(-1).to_numpy(np.int64),
    )


def compare(old: NightFile, new: NightFile, key: list[str]) -> Comparison:
    was, now, hashes = _pairs(old, new)
    old_rows = old.rows(np.unique(was[was >= 0]))
    new_rows = new.rows(np.unique(now[now >= 0]))
    both = (was >= 0) & (now >= 0)
    before = old_rows.loc[was[both], key].to_numpy(dtype=object)
    after = new_rows.loc[now[both], key].to_numpy(dtype=object)
    shared = np.unique(hashes[both][(before != after).any(axis=1)])
    if len(shared):
        # Distinct keys with one key hash: every row of those hashes, matched exactly.
        keep = ~np.isin(hashes, shared)
        old_more, new_more = old.rows_of_key_hashes(shared), new.rows_of_key_hashes(shared)
        more_was, more_now = _matched_by_key(old_more, new_more, key)
        was = np.concatenate([was[keep], more_was])
        now = np.concatenate([now[keep], more_now])
        old_rows = pd.concat([old_rows, old_more])
        new_rows = pd.concat([new_rows, new_more])
        old_rows = old_rows[~old_rows.index.duplicated()]
        new_rows = new_rows[~new_rows.index.duplicated()]
        both = (was >= 0) & (now >= 0)
    order = np.argsort(now[both], kind="stable")
    return Comparison(
        added=_rows_at(new_rows, np.sort(now[was < 0])),
        removed=_rows_at(old_rows, np.sort(was[now < 0])),
        changed_was=_rows_at(old_rows, was[both][order]),
        changed_now=_rows_at(new_rows, now[both][order]),
    )
