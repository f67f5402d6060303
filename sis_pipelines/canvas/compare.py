"""Which rows of a Canvas file were added, removed or changed between two nights, by key.

The largest districts have ten million enrollments a night, so the comparison runs in
DuckDB: it reads stored Parquet itself, joins with every core and spills to disk beyond
its memory limit, so the delta's memory does not grow with the district. The join carries
the key, the row's position and a 64-bit hash of its values only; just the few rows that
differ are then read whole. A changed row whose values hash alike would be missed: about
one chance in 10^19 per changed row, far below any other cause of a wrong import. A key
of several columns (enrollments: section, user, role) is joined as two 64-bit hashes of its
columns in two orders; two keys pair up wrongly only if both agree: when they differ in one
column that column's own 64-bit hash must collide (about one chance in 10^11 a night for ten
million enrollments), else both hashes must (one in 10^38).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from upath import UPath

from ..duck import bounded
from ..storage import parquet_rows, read_frame

# One Canvas file of a night: in memory, or as the mapping stored it.
FileSource = pd.DataFrame | UPath

# Beyond this DuckDB spills to a temporary folder: a night within 1 GB at xl (at 2 GB the
# delta step peaked at 1.17 GB; at 256 MB it took a second more).
MEMORY_LIMIT = "512MB"
ROW = "_row"


def _arrow(frame: pd.DataFrame, columns: list[str]) -> pa.Table:
    """Text columns as Arrow strings (None stays null), whatever the frame's dtypes."""
    return pa.table({c: pa.array(frame[c], type=pa.string(), from_pandas=True) for c in columns})


def _local(path: UPath) -> str | None:
    return path.path if path.protocol in ("", "file", "local") else None


def columns_of(source: FileSource) -> list[str]:
    if isinstance(source, pd.DataFrame):
        return list(source.columns)
    with source.open("rb") as fh:
        return pq.read_schema(fh).names


def rows_in(source: FileSource | None) -> int:
    if source is None:
        return 0
    return len(source) if isinstance(source, pd.DataFrame) else parquet_rows(source)


def read_whole(source: FileSource) -> pd.DataFrame:
    return source if isinstance(source, pd.DataFrame) else read_frame(source)


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


@dataclass
class Comparison:
    added: np.ndarray  # positions in the current file, ascending
    removed: np.ndarray  # positions in the previous file, ascending
    changed_was: np.ndarray  # positions in the previous file ...
    changed_now: np.ndarray  # ... and in the current one, by the current position


class NightFile:
    """One night's file as a DuckDB relation with every column as text and a row position."""

    def __init__(
        self, con: duckdb.DuckDBPyConnection, name: str, source: FileSource, columns: list[str]
    ) -> None:
        self.con, self.name = con, name
        present = set(columns_of(source))
        self.table: pa.Table | None = None
        path = None if isinstance(source, pd.DataFrame) else _local(source)
        if path is None:
            frame = read_whole(source)
            self.table = _arrow(frame, [c for c in columns if c in present])
            self.table = self.table.append_column(ROW, pa.array(np.arange(len(frame))))
            con.register(f"{name}_source", self.table)
            scan = f"select * from {name}_source"
        else:
            quoted = path.replace("'", "''")
            scan = f"select *, file_row_number as {ROW} from read_parquet('{quoted}', file_row_number = true)"
        cells = [
            f'cast("{c}" as varchar) as "{c}"' if c in present else f'null::varchar as "{c}"'
            for c in columns
        ]
        con.execute(f"create temp view {name} as select {', '.join(cells)}, {ROW} from ({scan})")

    def rows(self, positions: np.ndarray, columns: list[str]) -> pd.DataFrame:
        """The rows at ``positions`` (ascending), as object columns with None for missing."""
        if not len(positions):
            picked = pa.table({c: pa.array([], pa.string()) for c in columns})
        elif self.table is not None:
            picked = self.table.take(pa.array(positions, pa.int64())).select(columns)
        else:
            names = ", ".join(f'"{c}"' for c in columns)
            self.con.register("wanted", pa.table({"p": pa.array(positions, pa.int64())}))
            picked = self.con.sql(
                f"select {names} from {self.name} "
                f"where {ROW} in (select p from wanted) order by {ROW}"
            ).fetch_arrow_table()
            self.con.unregister("wanted")
        frame = pd.DataFrame({c: picked[c].to_numpy(zero_copy_only=False) for c in columns})
        return frame.astype(object).where(frame.notna(), None)


@contextmanager
def comparing(
    previous: FileSource, current: FileSource, columns: list[str]
) -> Iterator[tuple[NightFile, NightFile]]:
    with bounded(MEMORY_LIMIT, "delta") as con:
        yield NightFile(con, "old", previous, columns), NightFile(con, "new", current, columns)


def compare(old: NightFile, new: NightFile, key: list[str], values: list[str]) -> Comparison:
    hashed = "hash(" + ", ".join(f'"{v}"' for v in values) + ")" if values else "0"
    if len(key) > 1:
        # A key of several columns joins as two 64-bit hashes of them, in two orders: ints
        # join a third faster than three strings (ten million enrollments), and two keys
        # that differ pair up only if both hashes agree.
        quoted = [f'"{k}"' for k in key]
        keys = f"hash({', '.join(quoted)}) as k1, hash({', '.join(reversed(quoted))}) as k2"
        on = "o.k1 = n.k1 and o.k2 = n.k2"
    else:
        keys = f'"{key[0]}"'
        on = f'o."{key[0]}" = n."{key[0]}"'
    pairs = old.con.sql(
        f"""
        with o as (select {keys}, {hashed} as h, {ROW} from {old.name}),
             n as (select {keys}, {hashed} as h, {ROW} from {new.name})
        select o.{ROW} as was, n.{ROW} as now
        from o full outer join n on {on}
        where o.{ROW} is null or n.{ROW} is null or o.h <> n.h
        """
    ).fetch_arrow_table()
    was = pc.fill_null(pairs["was"], -1).to_numpy().astype(np.int64)
    now = pc.fill_null(pairs["now"], -1).to_numpy().astype(np.int64)
    both = (was >= 0) & (now >= 0)
    order = np.argsort(now[both], kind="stable")
    return Comparison(
        added=np.sort(now[was < 0]),
        removed=np.sort(was[now < 0]),
        changed_was=was[both][order],
        changed_now=now[both][order],
    )
