"""A snapshot validated batch by batch as its pages arrive keeps and quarantines exactly what
validating the whole collection at once does: re-served copies (the last wins) and duplicates
(every copy quarantined) are told over the whole collection, whatever the batches."""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sis_pipelines.oneroster import batches
from sis_pipelines.oneroster.batches import SnapshotWriter
from sis_pipelines.oneroster.collections import COLLECTIONS
from sis_pipelines.oneroster.ids import id_hashes as real_hashes
from sis_pipelines.oneroster.normalise import Rejects
from sis_pipelines.oneroster.paging import keep_last_by_id
from sis_pipelines.oneroster.validate import validate
from sis_pipelines_tests.test_schemas import REFS, enrollment, table

ENROLLMENTS = COLLECTIONS["enrollments"]

rows = st.lists(
    st.builds(
        lambda n, user, role: enrollment(f"e{n}", userSourcedId=user, role=role),
        st.integers(0, 6),
        st.sampled_from(["u1", "u2", "nobody"]),  # "nobody": not found in users
        st.sampled_from(["student", "teacher", "wizard"]),  # "wizard": not a role
    ),
    max_size=14,
)


def written(pages: list[list[dict]], keep_last: bool) -> tuple[list[dict], dict, int]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "enrollments.parquet"
        writer = SnapshotWriter(ENROLLMENTS, REFS, None, path)
        for page in pages:
            writer.add(table("enrollments", page), Rejects())
        result = writer.finish(keep_last)
        stored = pq.read_table(path)
        assert stored.num_rows == result.rows
        return stored.to_pylist(), _reasons(result.quarantine), result.superseded


def _reasons(quarantine) -> dict:
    """Each quarantined record's reasons, as a set (their order aside), copies counted."""
    out: dict = {}
    for sid, reason in zip(quarantine["sourcedId"], quarantine["reason"], strict=True):
        out.setdefault(sid, []).append(frozenset(reason.split("; ")))
    return {k: sorted(v, key=sorted) for k, v in out.items()}


def whole(records: list[dict], keep_last: bool) -> tuple[list[dict], dict, int]:
    whole_table = table("enrollments", records)
    dropped = 0
    if keep_last and records:
        whole_table, dropped = keep_last_by_id(whole_table)
    result = validate(ENROLLMENTS, whole_table, REFS)
    kept = pa.Table.from_pandas(result.frame, preserve_index=False).to_pylist()
    return kept, _reasons(result.quarantine), dropped


@settings(max_examples=60, deadline=None)
@given(
    records=rows,
    cuts=st.lists(st.integers(0, 14), max_size=4),
    batch=st.integers(1, 5),
    keep_last=st.booleans(),
)
def test_batches_keep_and_quarantine_what_the_whole_collection_does(
    records, cuts, batch, keep_last, monkeypatch_module
):
    monkeypatch_module.setattr(batches, "BATCH_ROWS", batch)
    bounds = sorted({0, len(records), *(c for c in cuts if c <= len(records))})
    pages = [records[a:b] for a, b in itertools.pairwise(bounds)]
    assert written(pages, keep_last) == whole(records, keep_last)


@settings(max_examples=40, deadline=None)
@given(records=rows, batch=st.integers(1, 5), keep_last=st.booleans())
def test_ids_whose_hashes_collide_are_told_apart_by_the_ids_themselves(
    records, batch, keep_last, monkeypatch_module
):
    """The hashes only pick the records read back: with two hashes in all (most ids
    colliding), what is kept and quarantined is still what the whole collection gives."""
    monkeypatch_module.setattr(batches, "BATCH_ROWS", batch)
    monkeypatch_module.setattr(batches, "id_hashes", lambda v: real_hashes(v) % np.uint64(2))
    pages = [records[i : i + 3] for i in range(0, len(records), 3)]
    assert written(pages, keep_last) == whole(records, keep_last)
    monkeypatch_module.setattr(batches, "id_hashes", real_hashes)


def test_a_record_served_again_wins_over_its_earlier_copy_even_when_invalid(monkeypatch):
    monkeypatch.setattr(batches, "BATCH_ROWS", 1)
    pages = [
        [enrollment("e2"), enrollment("e1")],  # not ascending: the ids are resolved at the end
        [enrollment("e3"), enrollment("e1", role="wizard")],
    ]
    kept, quarantined, superseded = written(pages, keep_last=True)
    assert [r["sourcedId"] for r in kept] == ["e2", "e3"]
    assert list(quarantined) == ["e1"] and superseded == 1


def test_duplicates_are_quarantined_with_their_record(monkeypatch):
    monkeypatch.setattr(batches, "BATCH_ROWS", 2)
    pages = [[enrollment("e1"), enrollment("e2")], [enrollment("e1", role="teacher")]]
    kept, quarantined, superseded = written(pages, keep_last=False)
    assert [r["sourcedId"] for r in kept] == ["e2"]
    assert quarantined == {"e1": [frozenset({"sourcedId: duplicate 'e1'"})] * 2}
    assert superseded == 0


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@settings(max_examples=80, deadline=None)
@given(
    ids=st.lists(st.sampled_from([f"u{i}" for i in range(12)]), max_size=30),
    values=st.lists(st.one_of(st.none(), st.sampled_from([f"u{i}" for i in range(16)]))),
)
def test_lookups_among_ids_answer_as_arrow_does(ids, values, monkeypatch_module):
    """A batch's references looked up by hash among a collection's ids give Arrow's answers
    (ids that repeat, and so collide, included)."""
    from sis_pipelines.oneroster import ids as lookups

    monkeypatch_module.setattr(lookups, "SMALL", 0)  # the hashed path, however few the ids
    id_array, value_array = pa.array(ids, pa.string()), pa.array(values, pa.string())
    id_set = lookups.IdSet(id_array)
    assert id_set.contains(value_array).equals(pc.is_in(value_array, value_set=id_array))
    assert id_set.index(value_array).equals(pc.index_in(value_array, value_set=id_array))


@settings(max_examples=40, deadline=None)
@given(
    ids=st.lists(st.sampled_from([f"u{i}" for i in range(12)]), unique=True, max_size=12),
    values=st.lists(st.sampled_from([None, *(f"u{i}" for i in range(16))]), min_size=40),
)
def test_repeated_references_are_looked_up_once_with_arrows_answers(
    ids, values, monkeypatch_module
):
    """A batch naming each id many times (enrollments served student by student) looks its
    distinct values up and gives every row Arrow's answer."""
    from sis_pipelines.oneroster import ids as lookups

    monkeypatch_module.setattr(lookups, "SMALL", 0)
    values = sorted(values, key=lambda v: (v is None, v or ""))  # each id's rows together
    id_array, value_array = pa.array(ids, pa.string()), pa.array(values, pa.string())
    id_set = lookups.IdSet(id_array)
    assert id_set.contains(value_array).equals(pc.is_in(value_array, value_set=id_array))
    assert id_set.index(value_array).equals(pc.index_in(value_array, value_set=id_array))


def test_a_batch_write_that_fails_on_the_writers_thread_fails_the_snapshot(tmp_path, monkeypatch):
    """Row groups are written on a thread of their own: an error there (a full disk) is
    raised by the snapshot, and the writer can still be given up."""

    def full_disk(writer, table):
        raise OSError("No space left on device")

    monkeypatch.setattr(batches, "append", full_disk)
    monkeypatch.setattr(batches, "BATCH_ROWS", 1)
    writer = SnapshotWriter(ENROLLMENTS, REFS, None, tmp_path / "enrollments.parquet")
    with pytest.raises(OSError, match="No space left"):
        writer.add(table("enrollments", [enrollment("e1")]))
        writer.add(table("enrollments", [enrollment("e2")]))
        writer.finish(keep_last=False)
    writer.abandon()


def test_a_collection_checked_whole_is_refused_beyond_its_bound(monkeypatch, tmp_path):
    """Orgs are held whole (their parents are among them): a runaway file is refused in one
    line before it fills memory, not held."""

    monkeypatch.setattr(batches, "MAX_WHOLE_ROWS", 5)
    writer = SnapshotWriter(COLLECTIONS["orgs"], {}, None, tmp_path / "orgs.parquet")
    orgs = [
        {"sourcedId": f"o{i}", "status": "active", "name": "x", "type": "school"} for i in range(4)
    ]
    writer.add(table("orgs", orgs))
    with pytest.raises(ValueError, match=r"orgs: more than 5 records, checked whole"):
        writer.add(table("orgs", orgs))
    writer.abandon()
