"""Atomic Parquet writes and paths that cannot leave the data directory."""

from __future__ import annotations

import threading
import time

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from upath import UPath

from sis_pipelines.core import storage
from sis_pipelines.core.lake import Lake
from sis_pipelines.core.storage import atomic_write_table, read_frame, write_frame


def test_paths_follow_the_interface(tmp_path):
    path = Lake.at(tmp_path).snapshot("users", "2026-11-21", "demo-genesis")
    assert str(path).endswith("oneroster/users/2026-11-21/demo-genesis.parquet")


@pytest.mark.parametrize(
    ("kind", "night", "tenant"),
    [
        ("users", "2026-11-21", "../x"),
        ("users", "../..", "a"),
        ("../users", "2026-11-21", "a"),
        ("users", "2026-11-21", "a/b"),
    ],
)
def test_hostile_segments_are_refused(tmp_path, kind, night, tenant):
    with pytest.raises(ValueError):
        Lake.at(tmp_path).file("oneroster", kind, night, tenant)


def test_a_failed_write_leaves_the_previous_file_and_no_partial_file(tmp_path, monkeypatch):
    path = UPath(tmp_path) / "oneroster" / "users" / "2026-11-21" / "t.parquet"
    write_frame(pd.DataFrame({"sourcedId": ["a", "b"]}), path)

    def broken_write(table, where, **kwargs):
        where.write(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(storage.pq, "write_table", broken_write)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_table(pa.table({"sourcedId": ["c"]}), path)
    monkeypatch.undo()
    assert list(read_frame(path)["sourcedId"]) == ["a", "b"]
    assert [p.name for p in path.parent.iterdir()] == ["t.parquet"]


def test_round_trip_keeps_types(tmp_path):
    path = UPath(tmp_path) / "x.parquet"
    frame = pa.table(
        {
            "l": pa.array([["a"], None], pa.list_(pa.string())),
            "d": pa.array([None, None], pa.date32()),
        }
    ).to_pandas(types_mapper=pd.ArrowDtype)
    write_frame(frame, path)
    assert pq.read_schema(path.path).field("l").type == pa.list_(pa.string())
    assert read_frame(path)["l"].tolist()[0] == ["a"]


def test_dictionary_columns_are_stored_as_their_values(tmp_path):
    # Canvas enrollments are held as codes into a district's ids; the stored file must read
    # back as plain strings, as every earlier night's file does.
    path = UPath(tmp_path) / "x.parquet"
    ids = pa.DictionaryArray.from_arrays(pa.array([1, 0, 1, None], pa.int32()), ["s1", "s2"])
    write_frame(
        pa.table({"section_id": ids, "status": ["active"] * 4}).to_pandas(
            types_mapper=pd.ArrowDtype
        ),
        path,
    )
    back = pq.read_table(path.path)
    assert back.schema == pa.schema([("section_id", pa.string()), ("status", pa.string())])
    assert back["section_id"].to_pylist() == ["s2", "s1", "s2", None]


def test_a_snapshot_read_and_stored_again_is_the_same_bytes(tmp_path):
    # A step that finds its night stored (a re-run, a Celery task given again after its worker
    # died) stores what it read: the same bytes, list columns included.
    table = pa.table(
        {
            "sourcedId": ["a", "b"],
            "grades": pa.array([["09", "10"], None], pa.list_(pa.string())),
        }
    )
    first, second = UPath(tmp_path / "first.parquet"), UPath(tmp_path / "second.parquet")
    atomic_write_table(table, first)
    write_frame(read_frame(first), second)
    assert first.read_bytes() == second.read_bytes()


def test_read_ahead_gives_every_batch_in_order_and_reads_one_ahead(tmp_path):
    path = UPath(tmp_path / "t.parquet")
    storage.write_tables(
        (pa.table({"n": list(range(start, start + 3))}) for start in range(0, 12, 3)), path
    )
    read: list[int] = []

    def batches():
        for frame in storage.read_batches(path, rows=3):
            read.append(int(frame["n"].iloc[0]))
            yield frame

    ahead = storage.read_ahead(batches())
    first = next(ahead)
    assert list(first["n"]) == [0, 1, 2]
    # The second batch was read while the first was in use.
    for _ in range(500):
        if read == [0, 3]:
            break
        time.sleep(0.01)
    assert read == [0, 3]
    assert [list(f["n"]) for f in ahead] == [[3, 4, 5], [6, 7, 8], [9, 10, 11]]


def test_read_ahead_raises_the_sources_error_where_it_is_read():
    def failing():
        yield 1
        raise OSError("disk gone")

    ahead = storage.read_ahead(failing())
    assert next(ahead) == 1
    with pytest.raises(OSError, match="disk gone"):
        next(ahead)


def test_write_behind_keeps_one_write_in_flight_and_writes_in_order():
    done: list[int] = []
    gate = threading.Event()
    writes = storage.WriteBehind("test-writes")
    writes.submit(lambda: (gate.wait(5), done.append(1)))
    # The next write waits for the one in flight: what it holds is let go in turn.
    second = threading.Thread(target=writes.submit, args=(done.append, 2))
    second.start()
    time.sleep(0.2)
    assert done == [] and second.is_alive()
    gate.set()
    second.join(5)
    writes.close()
    assert done == [1, 2]
