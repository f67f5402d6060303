"""The delta read from stored Parquet (as the pipeline runs it) equals the delta of frames
in memory, and both equal the delta worked out by hand, row for row and in file order."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from upath import UPath

from sis_pipelines.canvas import fingerprint
from sis_pipelines.canvas.compare import comparing
from sis_pipelines.canvas.delta import compute_delta, deletion_guard, file_delta, key_and_values
from sis_pipelines.canvas.files import FILES
from sis_pipelines.canvas.fingerprint import fingerprinted
from sis_pipelines.canvas.mapping import INTERNAL, map_snapshot
from sis_pipelines.core.storage import write_frame, write_tables
from sis_pipelines.core.tenants import Canvas
from sis_pipelines.simulator.district import District

from .support import canonical

CFG = Canvas(source="simulator", observers=True, max_removal_share=1.0)
NIGHTS = (date(2026, 12, 20), date(2027, 1, 20))  # over the end of the fall term


def stored(files: dict[str, pd.DataFrame], folder: UPath) -> dict[str, UPath]:
    paths = {}
    for name, frame in files.items():
        paths[name] = folder / f"{name}.parquet"
        write_frame(frame, paths[name])
    return paths


def same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(
        a.reset_index(drop=True).astype(object), b.reset_index(drop=True).astype(object)
    )


def test_a_district_over_a_term_end_gives_the_same_delta_from_files_and_frames(tmp_path):
    district = District(300, 5)
    before, after = (map_snapshot(canonical(district.snapshot(n)), CFG, n) for n in NIGHTS)
    in_memory = compute_delta(before, after, CFG, NIGHTS[1])
    from_files = compute_delta(
        stored(before, UPath(tmp_path) / "it's night 1"),  # a quote in the path
        stored(after, UPath(tmp_path) / "night 2"),
        CFG,
        NIGHTS[1],
    )
    assert set(in_memory.changes["action"]) >= {"add", "complete"}
    same(in_memory.changes, from_files.changes)
    assert in_memory.files.keys() == from_files.files.keys()
    for name in in_memory.files:
        same(in_memory.files[name], from_files.files[name])
    guard = deletion_guard(before, after, in_memory, 0.05)
    assert guard == deletion_guard(
        stored(before, UPath(tmp_path) / "g1"),
        stored(after, UPath(tmp_path) / "g2"),
        in_memory,
        0.05,
    )


def test_a_column_missing_or_untyped_on_one_night_compares_as_empty_cells(tmp_path):
    old = pd.DataFrame(
        {"user_id": ["U1", "U2"], "login_id": ["u1", "u2"], "status": ["active", "active"]}
    )
    new = old.assign(email=[None, "u2@example.org"])  # a column that did not exist before
    path = UPath(tmp_path) / "old.parquet"
    # All-empty object columns are stored by pandas with Arrow's null type.
    pq.write_table(
        pa.Table.from_pandas(old.assign(first_name=None), preserve_index=False), path.path
    )
    assert pq.read_schema(path.path).field("first_name").type == pa.null()
    rows, changes = file_delta("users", path, new, CFG, NIGHTS[0])
    assert list(changes["action"]) == ["update"]
    assert list(changes["reason"]) == ["changed: email"]
    assert rows["user_id"].tolist() == ["U2"]


KEYS = st.sampled_from(["S1", "S2", "S3"])
USERS = st.sampled_from(["U1", "U2", "U3", "U4"])
VALUE = st.sampled_from([None, "", "2026-08-15T00:00:00Z", "2027-01-15T00:00:00Z"])
ROW = st.tuples(KEYS, USERS, st.sampled_from(["student", "teacher"]), VALUE, VALUE)


def frame(rows: list[tuple]) -> pd.DataFrame:
    unique = list({r[:3]: r for r in rows}.values())  # a Canvas key is unique in its file
    return pd.DataFrame(
        [
            {
                "course_id": s,
                "section_id": s,
                "user_id": u,
                "role": r,
                "status": "active",
                "start_date": a,
                "end_date": b,
                INTERNAL: "2027-01-15T00:00:00Z",
            }
            for s, u, r, a, b in unique
        ],
        columns=[*FILES["enrollments"].columns, INTERNAL],
    )


def by_hand(old: pd.DataFrame, new: pd.DataFrame) -> list[tuple[str, str]]:
    def key(row) -> str:
        return f"{row.section_id}|{row.user_id}|{row.role}"

    before = {key(r): r for r in old.itertuples()}
    now = {key(r): r for r in new.itertuples()}
    values = ("course_id", "status", "start_date", "end_date")
    adds = [(k, "add") for k in now if k not in before]
    updates = [
        (k, "update")
        for k in now
        if k in before and any(getattr(now[k], v) != getattr(before[k], v) for v in values)
    ]
    removals = [(k, "delete") for k in before if k not in now]
    return adds + updates + removals


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(old=st.lists(ROW, max_size=14), new=st.lists(ROW, max_size=14))
def test_the_enrollments_delta_is_the_one_worked_out_by_hand(tmp_path, old, new):
    a, b = frame(old), frame(new)
    expected = by_hand(a, b)
    night = date(2026, 11, 21)  # before the term ends: removals delete
    for previous, current in (
        (a, b),
        (stored({"enrollments": a}, UPath(tmp_path) / "a")["enrollments"], b),
        (a, stored({"enrollments": b}, UPath(tmp_path) / "b")["enrollments"]),
    ):
        rows, changes = file_delta("enrollments", previous, current, CFG, night)
        assert list(zip(changes["sis_id"], changes["action"], strict=True)) == expected
        assert len(rows) == len(changes)


def fingerprinted_file(rows: pd.DataFrame, path: UPath) -> UPath:
    """``rows`` stored as the mapping stores enrollments: with each row's fingerprints."""
    key, values = key_and_values("enrollments", list(rows.columns))
    table = pa.Table.from_pandas(rows, preserve_index=False).replace_schema_metadata(None)
    write_tables(fingerprinted([table], key, values), path, fingerprint.COLUMNS)
    return path


# A key hash of two bits (and two of the buckets'): distinct keys share it all the time.
WEAK_KEY_HASHES = [fingerprint.EVERY_BIT, 0x3, 0xC000_0000_0000_0003]


@pytest.mark.parametrize("mask", WEAK_KEY_HASHES, ids=["64 bits", "2 bits", "2+2 bits"])
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(old=st.lists(ROW, max_size=14), new=st.lists(ROW, max_size=14))
def test_stored_fingerprints_give_the_delta_worked_out_by_hand_even_when_keys_share_a_hash(
    tmp_path, mask, old, new
):
    a, b = frame(old), frame(new)
    expected = by_hand(a, b)
    night = date(2026, 11, 21)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fingerprint, "KEY_MASK", mask)
        folder = UPath(tmp_path) / f"{mask:x}"
        folder.mkdir(exist_ok=True)
        before = fingerprinted_file(a, folder / "a.parquet")
        after = fingerprinted_file(b, folder / "b.parquet")
        key, values = key_and_values("enrollments", list(b.columns))
        for previous, current in ((before, after), (before, b), (a, after)):
            with comparing(previous, current, key, values, list(b.columns)) as (one, other):
                # Read from both files, or computed alike for both.
                assert one.stored == other.stored == (previous is before and current is after)
            rows, changes = file_delta("enrollments", previous, current, CFG, night)
            assert list(zip(changes["sis_id"], changes["action"], strict=True)) == expected
            assert len(rows) == len(changes)
            assert fingerprint.KEY_HASH not in rows.columns


def test_a_change_many_rows_make_alike_is_seen_in_every_row(tmp_path):
    """A term's end date moves: every enrollment of it changes the same way. Rows of one
    bucket making the same change must not cancel out in the bucket's summary (about 30
    pairs of 2,000 rows share one of the 65,536 buckets)."""
    rows = [(f"S{i % 40}", f"U{i}", "student", None, "2027-01-15T00:00:00Z") for i in range(2000)]
    a = frame(rows)
    b = a.assign(end_date="2027-01-22T00:00:00Z")
    before = fingerprinted_file(a, UPath(tmp_path) / "a.parquet")
    after = fingerprinted_file(b, UPath(tmp_path) / "b.parquet")
    _, changes = file_delta("enrollments", before, after, CFG, date(2026, 11, 21))
    assert len(changes) == 2000 and set(changes["action"]) == {"update"}


def test_fingerprints_of_another_scheme_or_other_columns_are_not_trusted(tmp_path, monkeypatch):
    a = frame([("S1", "U1", "student", None, None), ("S2", "U2", "student", None, None)])
    b = a.assign(end_date=["2027-01-15T00:00:00Z", None])
    key, values = key_and_values("enrollments", list(a.columns))
    folder = UPath(tmp_path)
    before = fingerprinted_file(a, folder / "a.parquet")
    monkeypatch.setattr(fingerprint, "scheme", lambda: "duckdb-0.0.0-other")
    after = fingerprinted_file(b, folder / "b.parquet")
    monkeypatch.undo()
    with comparing(before, after, key, values, list(a.columns)) as (one, other):
        assert not one.stored and not other.stored
    with comparing(before, before, key, values[:-1], list(a.columns)) as (one, other):
        assert not one.stored  # the fingerprints cover a column this comparison leaves out
    _, changes = file_delta("enrollments", before, after, CFG, date(2026, 11, 21))
    assert list(zip(changes["sis_id"], changes["action"], strict=True)) == [
        ("S1|U1|student", "update")
    ]
    assert list(changes["reason"]) == ["changed: end_date"]


def test_stored_fingerprints_are_read_from_a_lake_duckdb_cannot_read_itself():
    """A lake on an fsspec file system (here in memory): the files are read into Arrow, with
    their fingerprints, and give the same delta."""
    a = frame([("S1", "U1", "student", None, None), ("S2", "U2", "student", None, None)])
    b = frame(
        [("S1", "U1", "student", None, "2027-01-15T00:00:00Z"), ("S3", "U3", "teacher", None, None)]
    )
    folder = UPath("memory://lake/enrollments")
    before = fingerprinted_file(a, folder / "a.parquet")
    after = fingerprinted_file(b, folder / "b.parquet")
    key, values = key_and_values("enrollments", list(a.columns))
    with comparing(before, after, key, values, list(a.columns)) as (one, other):
        assert one.stored and other.stored and one.table is not None
    _, changes = file_delta("enrollments", before, after, CFG, date(2026, 11, 21))
    assert list(zip(changes["sis_id"], changes["action"], strict=True)) == [
        ("S3|U3|teacher", "add"),
        ("S1|U1|student", "update"),
        ("S2|U2|student", "delete"),
    ]
