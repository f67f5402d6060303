"""Atomic writes and columnar reads of stored files (where they live is the lake's business).

Local files are written to a temporary name beside the target, flushed to disk and renamed
over it (POSIX rename is atomic): a reader sees the old file or the new one, never half of
one. On object stores a single PUT is already all-or-nothing.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from upath import UPath

T = TypeVar("T")

COMPRESSION = "zstd"


@dataclass(frozen=True)
class StoredFile:
    """A step's output its domain call has already published (a night's snapshot written batch
    by batch): the IO manager has nothing left to write."""

    path: UPath
    rows: int


def _local(path: UPath) -> Path | None:
    return Path(path.path) if path.protocol in ("", "file", "local") else None


ABANDONED_AFTER_S = 24 * 3600  # another host's file (or an older release's) of this age


def _writer() -> str:
    """Who writes a temporary file: its name carries the host and the process."""
    return f"{socket.gethostname().replace('.', '-')}-{os.getpid()}"


def _running(pid: int) -> bool:
    """Whether the process runs (a killed one its parent has not reaped yet does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def _abandoned(tmp: Path) -> bool:
    """Whether a temporary file's writer is gone: a process of this host that no longer runs,
    or a day without a write."""
    parts = tmp.name.rsplit(".", 3)  # .<target>.<host>-<pid>.<uuid>.tmp
    host, _, pid = parts[1].rpartition("-") if len(parts) == 4 else ("", "", "")
    if host == socket.gethostname().replace(".", "-") and pid.isdigit():
        return not _running(int(pid))
    try:
        return time.time() - tmp.stat().st_mtime > ABANDONED_AFTER_S
    except FileNotFoundError:
        return False


@contextmanager
def staged(path: UPath) -> Iterator[Path]:
    """A local file to write ``path`` in, published whole when the block ends, removed if it
    raises: readers see the old file or the whole new one, never a part."""
    target = _local(path)
    if target is None:  # an object store: staged locally, then one PUT (all-or-nothing)
        with tempfile.TemporaryDirectory() as folder:
            tmp = Path(folder) / path.name
            yield tmp
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "rb") as src, path.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 24)
        return
    # Folders made for the file go again if it is not published (a failed night leaves no
    # trace of itself).
    made = [p for p in (target.parent, *target.parent.parents) if not p.exists()]
    target.parent.mkdir(parents=True, exist_ok=True)
    # A writer killed mid-write leaves only a hidden temporary file; the next writer of the
    # same target clears it: only one whose writer is gone (another writer's file is live).
    for stale in target.parent.glob(f".{target.name}.*.tmp"):
        if _abandoned(stale):
            stale.unlink(missing_ok=True)
    tmp = target.with_name(f".{target.name}.{_writer()}.{uuid.uuid4().hex}.tmp")
    try:
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        for folder in made:
            try:
                folder.rmdir()
            except OSError:
                break  # not empty: another file lives there
        raise
    finally:
        tmp.unlink(missing_ok=True)
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def publish(path: UPath, write: Callable[[BinaryIO], object]) -> None:
    """Write a file so that readers see the old one or the whole new one, never a part."""
    with staged(path) as tmp, open(tmp, "wb") as fh:
        write(fh)


def atomic_write_bytes(data: bytes, path: UPath) -> None:
    publish(path, lambda fh: fh.write(data))


def _compliant_lists(table: pa.Table) -> pa.Table:
    """List columns with their values named ``element``, as Parquet names them and as they
    read back: a table built in Arrow (``item``) and the same table read and written again
    then store the same schema, so a re-stored snapshot is the same bytes."""
    renamed = [
        pa.types.is_list(f.type) and f.type.value_field.name != "element" for f in table.schema
    ]
    if not any(renamed):
        return table  # (Arrow's type equality ignores the values' name: asked directly)
    fields = [
        pa.field(f.name, pa.list_(pa.field("element", f.type.value_type)), f.nullable)
        if rename
        else f
        for f, rename in zip(table.schema, renamed, strict=True)
    ]
    return table.cast(pa.schema(fields, table.schema.metadata))


def stored_schema(schema: pa.Schema) -> pa.Schema:
    """The schema a table of ``schema`` is stored with (lists' values named ``element``)."""
    return _compliant_lists(schema.empty_table()).schema


def atomic_write_table(table: pa.Table, path: UPath) -> None:
    table = _compliant_lists(table)
    # A column held as a dictionary in memory (ten million Canvas enrollments as codes into
    # a district's sections and users) is stored as its values: without the Arrow schema in
    # the file, readers see plain strings, as on every night before. Parquet dictionary-encodes
    # such columns anyway, so nothing is lost on disk.
    coded = any(pa.types.is_dictionary(t) for t in table.schema.types)
    publish(
        path,
        lambda fh: pq.write_table(table, fh, compression=COMPRESSION, store_schema=not coded),
    )


def _values_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with each dictionary column as its values' type (its metadata kept)."""
    return pa.schema(
        [
            pa.field(f.name, f.type.value_type, f.nullable) if pa.types.is_dictionary(f.type) else f
            for f in schema
        ],
        schema.metadata,
    )


def as_stored(tables: Iterable[pa.Table]) -> Iterator[pa.Table]:
    """Each table with its dictionary columns as their values, as ``write_tables`` stores
    them: made ahead (``read_ahead``), the next slice's text is made while this one is
    written."""
    for table in tables:
        yield table.cast(_values_schema(table.schema))


def write_tables(tables: Iterable[pa.Table], path: UPath, plain: Sequence[str] = ()) -> None:
    """Tables of one schema (the first's) as one file, each a row group or more, published
    whole: a file of ten million rows never held at once. Dictionary columns are stored as
    their values, as ``atomic_write_table`` stores them; ``plain`` columns (hashes: random
    bits) without dictionary or compression, which cannot make them smaller and cost time."""
    with staged(path) as tmp:
        writer: pq.ParquetWriter | None = None
        coded = False
        try:
            for table in tables:
                table = _compliant_lists(table)
                if writer is None:
                    coded = any(pa.types.is_dictionary(t) for t in table.schema.types)
                    # Cast to values a slice at a time: Parquet given the district-wide
                    # dictionaries (two million users) in every row group takes half as long
                    # again to write the same file.
                    schema = _values_schema(table.schema)
                    writer = pq.ParquetWriter(
                        tmp,
                        schema,
                        compression={
                            f.name: "NONE" if f.name in plain else COMPRESSION for f in schema
                        },
                        use_dictionary=[f.name for f in schema if f.name not in plain],
                        store_schema=not coded,
                    )
                writer.write_table(table.cast(writer.schema))
            if writer is not None and coded and writer.schema.metadata:
                # Kept without the Arrow schema too (a coded table's is left out).
                writer.add_key_value_metadata(writer.schema.metadata)
        finally:
            if writer is not None:
                writer.close()


def read_batches(
    path: UPath,
    columns: list[str] | None = None,
    dictionary: list[str] | None = None,
    rows: int = 1,
) -> Iterator[pd.DataFrame]:
    """A stored frame a few row groups at a time, at least ``rows`` rows each but the last
    (see ``read_frame``)."""
    with path.open("rb") as fh:
        stored = pq.ParquetFile(fh, read_dictionary=dictionary)
        groups: list[int] = []
        held = 0
        for group in range(stored.num_row_groups):
            groups.append(group)
            held += stored.metadata.row_group(group).num_rows
            if held >= rows or group == stored.num_row_groups - 1:
                table = stored.read_row_groups(groups, columns=columns)
                yield table.to_pandas(types_mapper=pd.ArrowDtype)
                groups, held = [], 0


class WriteBehind:
    """Writes made on a thread of their own, one at a time, while the caller makes the next:
    Parquet's encoding and compression leave the GIL, so a write takes the other core. One
    write is in flight at most, so what it writes is let go as soon as it is written."""

    def __init__(self, name: str) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=name)
        self._pending: Future | None = None

    def wait(self) -> None:
        """Waits for the write in flight to end; its error is raised here."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def submit(self, write: Callable[..., object], *args: object) -> None:
        """``write(*args)`` on the thread, once the write before it has ended (in order)."""
        self.wait()
        self._pending = self._pool.submit(write, *args)

    def close(self) -> None:
        """Waits for the last write (its error raised) and ends the thread."""
        try:
            self.wait()
        finally:
            self._pool.shutdown()


_END = object()


def read_ahead(items: Iterator[T]) -> Iterator[T]:
    """``items``, the next one read on a thread of its own while this one is used: Parquet's
    reading and decoding leave the GIL, so a step mapping one batch reads the next on the
    other core."""
    with ThreadPoolExecutor(1, thread_name_prefix="read-ahead") as pool:
        pending = pool.submit(next, items, _END)
        while (item := pending.result()) is not _END:
            pending = pool.submit(next, items, _END)
            yield item


def frame_table(frame: pd.DataFrame) -> pa.Table:
    # Without pandas' schema metadata: the Arrow schema is the contract, and pandas cannot
    # read back its own names of nested Arrow dtypes.
    return pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)


def write_frame(frame: pd.DataFrame, path: UPath) -> None:
    atomic_write_table(frame_table(frame), path)


def read_frame(
    path: UPath, columns: list[str] | None = None, dictionary: list[str] | None = None
) -> pd.DataFrame:
    """A stored frame; ``dictionary`` columns come as dictionaries (codes into their values)."""
    with path.open("rb") as fh:
        table = pq.read_table(fh, columns=columns, read_dictionary=dictionary)
    return table.to_pandas(types_mapper=pd.ArrowDtype)


def read_typed(path: UPath, dtypes: dict[str, Any]) -> pd.DataFrame:
    """A stored frame with the columns of ``dtypes`` (a column the file lacks comes empty),
    each made its pandas dtype straight from Arrow: text as Arrow-backed strings without a
    Python string a cell (``astype`` from Arrow's own dtype goes through Python objects)."""
    with path.open("rb") as fh:
        present = set(pq.read_schema(fh).names)
        fh.seek(0)
        table = pq.read_table(fh, columns=[c for c in dtypes if c in present])
    columns, rows = {}, table.num_rows
    for name, dtype in dtypes.items():
        dtype = pd.api.types.pandas_dtype(dtype)
        if name not in present:
            columns[name] = pd.Series(pd.NA, index=range(rows), dtype=dtype)
            continue
        # As read, in the file's chunks (one buffer a column would hold the file twice over
        # while it is made: 0.27 GB more for an xl ledger).
        column = table[name]
        if isinstance(dtype, pd.StringDtype) and not pa.types.is_large_string(column.type):
            column = column.cast(pa.large_string())
        try:
            values = dtype.__from_arrow__(column)  # type: ignore[union-attr]
        except (TypeError, ValueError, pa.ArrowException):  # stored as another type
            values = column.to_pandas(types_mapper=pd.ArrowDtype).astype(dtype).array
        columns[name] = pd.Series(values, copy=False)
    return pd.DataFrame(columns)


def parquet_rows(path: UPath) -> int:
    with path.open("rb") as fh:
        return pq.ParquetFile(fh).metadata.num_rows
