"""OneRoster snapshot to the Canvas SIS Import files, per option."""

from __future__ import annotations

import itertools
from datetime import date

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from upath import UPath

from sis_pipelines.canvas.files import FILES
from sis_pipelines.canvas.mapping import (
    LOGIN_FIELDS,
    MAPPED_AS_DICTIONARY,
    MAPPED_COLUMNS,
    map_snapshot,
    mapped_columns,
)
from sis_pipelines.core.storage import read_frame, write_frame
from sis_pipelines.core.tenants import Canvas
from sis_pipelines.simulator.district import District

from .support import canonical, canvas_night

NIGHT = date(2026, 11, 21)


@pytest.fixture(scope="module")
def snapshot():
    return canonical(District(300, 7).snapshot(NIGHT))


def cfg(**kw) -> Canvas:
    return Canvas(source="simulator", **kw)


def test_columns_are_exactly_canvas_columns(snapshot):
    files = map_snapshot(snapshot, cfg(), NIGHT)
    for name, frame in files.items():
        assert [c for c in frame.columns if c != "term_end_date"] == [
            c for c in FILES[name].columns if c in frame.columns
        ]
        for column in FILES[name].required:
            assert frame[column].notna().all(), (name, column)


def test_accounts_parents_first_with_prefix(snapshot):
    accounts = map_snapshot(snapshot, cfg(sis_id_prefix="d1-"), NIGHT)["accounts"]
    assert accounts["account_id"].iloc[0] == "d1-district"
    assert accounts["parent_account_id"].iloc[0] is None
    seen = set()
    for account, parent in zip(accounts["account_id"], accounts["parent_account_id"], strict=True):
        assert parent is None or parent in seen
        seen.add(account)
    assert (accounts["account_id"].str.startswith("d1-")).all()


def test_semesters_are_terms_and_grading_periods_roll_up(snapshot):
    classes = snapshot["classes"].copy()
    # A class scheduled in a grading period belongs to that period's semester.
    classes["termSourcedIds"] = pd.Series(
        [["gp-2026-1-1"]] * len(classes), dtype=classes["termSourcedIds"].dtype
    )
    files = map_snapshot({**snapshot, "classes": classes}, cfg(), NIGHT)
    assert set(files["terms"]["term_id"]) == {"term-2026-1", "term-2026-2"}
    assert set(files["courses"]["term_id"]) == {"term-2026-1"}
    assert files["terms"]["start_date"].iloc[0] == "2026-08-15T00:00:00Z"


def test_school_years_only_when_nothing_finer_exists(snapshot):
    sessions = snapshot["academic_sessions"]
    only_years = sessions[sessions["type"] == "schoolYear"]
    classes = snapshot["classes"].copy()
    classes["termSourcedIds"] = pd.Series(
        [["sy-2026"]] * len(classes), dtype=classes["termSourcedIds"].dtype
    )
    files = map_snapshot(
        {**snapshot, "academic_sessions": only_years, "classes": classes}, cfg(), NIGHT
    )
    assert list(files["terms"]["term_id"]) == ["sy-2026"]
    assert set(files["courses"]["term_id"]) == {"sy-2026"}
    chosen = map_snapshot(snapshot, cfg(term_session_types=["schoolYear"]), NIGHT)
    assert list(chosen["terms"]["term_id"]) == ["sy-2026"]


def test_one_course_per_class_by_default(snapshot):
    files = map_snapshot(snapshot, cfg(), NIGHT)
    classes = snapshot["classes"]
    assert len(files["courses"]) == len(classes) == len(files["sections"])
    assert (files["sections"]["section_id"] == files["sections"]["course_id"]).all()


def test_course_and_term_mode_has_a_section_per_class(snapshot):
    files = map_snapshot(snapshot, cfg(course_mode="course_term"), NIGHT)
    sections = files["sections"]
    assert len(sections) == len(snapshot["classes"])
    assert sections["course_id"].nunique() == len(files["courses"]) < len(sections)
    assert set(sections["course_id"]) == set(files["courses"]["course_id"])
    assert set(files["enrollments"]["course_id"]) <= set(files["courses"]["course_id"])


def test_users_login_field_types_and_observers(snapshot):
    plain = map_snapshot(snapshot, cfg(), NIGHT)
    users = plain["users"]
    assert "observer" not in set(users["declared_user_type"])
    assert {"student", "teacher", "administrative"} <= set(users["declared_user_type"])
    assert "user_observers" not in plain
    by_email = map_snapshot(snapshot, cfg(login_id_field="email", observers=True), NIGHT)
    assert by_email["users"]["login_id"].str.contains("@").all()
    assert "observer" in set(by_email["users"]["declared_user_type"])
    observers = by_email["user_observers"]
    assert len(observers) == (snapshot["users"]["role"] == "student").sum()
    prefixed = map_snapshot(snapshot, cfg(observers=True, sis_id_prefix="d1-"), NIGHT)
    ids = set(prefixed["users"]["user_id"])
    assert all(i.startswith("d1-") for i in ids)
    pairs = prefixed["user_observers"]
    assert len(pairs) == len(observers)
    assert set(pairs["observer_id"]) | set(pairs["student_id"]) <= ids
    assert set(prefixed["enrollments"]["user_id"]) <= ids


def test_disabled_users_are_suspended_and_users_without_login_are_counted(snapshot):
    users = snapshot["users"].copy()
    users.loc[0, "enabledUser"] = False
    users.loc[1, "identifier"] = None
    files = map_snapshot({**snapshot, "users": users}, cfg(login_id_field="identifier"), NIGHT)
    out = files["users"].set_index("user_id")
    assert out.loc[users.loc[0, "sourcedId"], "status"] == "suspended"
    assert users.loc[1, "sourcedId"] not in out.index
    assert files["users"].attrs["without_login"] >= 1


def test_role_mapping_custom_roles_and_dates(snapshot):
    enrollments = snapshot["enrollments"].copy()
    enrollments.loc[0, "role"] = "aide"
    enrollments.loc[1, "role"] = "administrator"
    enrollments.loc[2, "beginDate"] = None
    files = map_snapshot(
        {**snapshot, "enrollments": enrollments},
        cfg(role_map={"student": "student", "teacher": "Lead Teacher", "aide": "ta"}),
        NIGHT,
    )
    out = files["enrollments"]
    assert set(out["role"]) == {"student", "Lead Teacher", "ta"}
    assert len(out) == len(enrollments) - 1  # administrators are not enrolled by this map
    assert out["start_date"].notna().all() and out["end_date"].notna().all()


@pytest.mark.parametrize("code_space", [2**62, 2])  # 2: the group-by path
def test_enrollments_keep_the_first_of_a_pair_and_only_known_users_and_sections(
    snapshot, monkeypatch, code_space
):
    from sis_pipelines.canvas import enrollments as module

    monkeypatch.setattr(module, "CODE_SPACE", code_space)
    enrollments = snapshot["enrollments"]
    first = enrollments.iloc[[0]].copy()
    twice = first.assign(sourcedId="again", beginDate=pd.NA)  # same section, user and role
    inactive = enrollments.iloc[[1]].assign(sourcedId="gone", status="tobedeleted")
    stranger = enrollments.iloc[[2]].assign(sourcedId="stranger", userSourcedId="nobody")
    nowhere = enrollments.iloc[[3]].assign(sourcedId="nowhere", classSourcedId="no-class")
    extra = pd.concat([twice, inactive, stranger, nowhere], ignore_index=True)
    rows = pd.concat([enrollments.drop(index=1), extra], ignore_index=True)
    out = map_snapshot({**snapshot, "enrollments": rows}, cfg(sis_id_prefix="d1-"), NIGHT)[
        "enrollments"
    ]
    assert len(out) == len(enrollments) - 1
    key = ["section_id", "user_id", "role"]
    assert not out.duplicated(key).any()
    pair = out[
        (out["section_id"] == "d1-" + first["classSourcedId"].iloc[0])
        & (out["user_id"] == "d1-" + first["userSourcedId"].iloc[0])
    ]
    assert pair["start_date"].tolist() == [str(first["beginDate"].iloc[0]) + "T00:00:00Z"]
    assert "d1-" + inactive["classSourcedId"].iloc[0] not in set(
        out.loc[out["user_id"] == "d1-" + inactive["userSourcedId"].iloc[0], "section_id"]
    )
    assert all(course.startswith("d1-") for course in out["course_id"])
    assert out["term_end_date"].notna().all()


@pytest.mark.parametrize("code_space", [2**62, 2])
def test_first_of_each_key_in_file_order(monkeypatch, code_space):
    import numpy as np
    import pyarrow as pa

    from sis_pipelines.canvas import enrollments

    monkeypatch.setattr(enrollments, "CODE_SPACE", code_space)  # 2: the group-by path
    table = pa.table(
        {
            "section": [0, 1, 0, 0, 1],  # codes, as canvas_enrollments makes them
            "user": [0, 0, 0, 1, 0],
            "role": [0, 0, 0, 0, 1],
        }
    )
    key = ["section", "user", "role"]
    combined = enrollments._combined([np.asarray(table[k]) for k in key], [2, 2, 2])
    first = (
        enrollments._first_by_group(table, key)
        if combined is None
        else enrollments.first_positions(combined)
    )
    assert (combined is None) == (code_space == 2)
    assert list(first) == [0, 1, 3, 4]
    assert enrollments.first_positions(np.array([3, 1, 2], np.int64)) is None  # no repeat


@pytest.fixture(scope="module")
def loaded(snapshot, tmp_path_factory):
    """The snapshot as the mapping step loads it: its columns only, some as dictionaries."""
    folder = UPath(tmp_path_factory.mktemp("stored"))
    out = {}
    for name, columns in MAPPED_COLUMNS.items():
        write_frame(snapshot[name], folder / f"{name}.parquet")
        out[name] = read_frame(folder / f"{name}.parquet", columns, MAPPED_AS_DICTIONARY.get(name))
    return out


@pytest.mark.parametrize("login_id_field", ["username", "email", "identifier"])
@pytest.mark.parametrize("course_mode", ["class", "course_term"])
def test_mapping_as_its_step_loads_the_snapshot(snapshot, loaded, login_id_field, course_mode):
    # A column the mapping reads beyond MAPPED_COLUMNS would fail here (KeyError); one that
    # it cannot read as a dictionary would change the result.
    assert any(
        isinstance(c.dtype, pd.ArrowDtype) and "dictionary" in str(c.dtype)
        for _, c in loaded["enrollments"].items()
    )
    for observers in (True, False):
        options = cfg(login_id_field=login_id_field, course_mode=course_mode, observers=observers)
        whole = map_snapshot(snapshot, options, NIGHT)
        # Only the columns read for the tenant: its login field, its observers' if any.
        read = {n: f[mapped_columns(n, options)] for n, f in loaded.items()}
        assert ("agentSourcedIds" in read["users"]) == observers
        assert {*LOGIN_FIELDS} & {*read["users"]} == {login_id_field, "email"}
        as_loaded = map_snapshot(read, options, NIGHT)
        assert whole.keys() == as_loaded.keys()
        for name in whole:
            pd.testing.assert_frame_equal(as_loaded[name], whole[name], check_dtype=True)


def test_the_night_mapped_a_batch_and_a_slice_at_a_time_stores_what_the_whole_maps(
    tmp_path, monkeypatch
):
    """map_night reads enrollments a row group at a time and writes Canvas enrollments a
    slice at a time: the stored files are the whole snapshot's mapping, row for row."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sis_pipelines.canvas import enrollments as canvas_enrollments
    from sis_pipelines.canvas import provision
    from sis_pipelines.canvas.provision import map_night
    from sis_pipelines.core.lake import Lake

    night = date(2026, 12, 20)
    snapshot = canonical(District(300, 5).snapshot(night))
    lake = Lake(UPath(tmp_path))
    for name, frame in snapshot.items():
        path = lake.snapshot(name, night, "t")
        path.parent.mkdir(parents=True, exist_ok=True)
        # Row groups of 97 records: many batches, none aligned with a slice.
        table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
        pq.write_table(table, str(path), 97)
    monkeypatch.setattr(canvas_enrollments, "SLICE_ROWS", 89)
    monkeypatch.setattr(provision, "ENROLLMENT_BATCH_ROWS", 150)  # two row groups a batch
    config = cfg(sis_id_prefix="d1-")
    figures = map_night(lake, canvas_night("t", config, night))
    whole = map_snapshot(snapshot, config, night)
    assert figures["enrollments_rows"] == len(whole["enrollments"]) > 89 * 3
    for name, frame in whole.items():
        path = str(lake.canvas_file(name, night, "t"))
        assert pq.ParquetFile(path).num_row_groups > 1 or name != "enrollments"
        stored = pq.read_table(path)
        stored = without_fingerprints_checked(name, stored, frame)
        pd.testing.assert_frame_equal(
            stored.to_pandas().astype(object),
            frame.reset_index(drop=True).astype(object),
            check_dtype=False,
        )


def without_fingerprints_checked(name: str, stored: pa.Table, frame: pd.DataFrame) -> pa.Table:
    """A stored Canvas file carries each row's fingerprints, equal to those the delta
    computes in SQL from the text; the table without them."""
    import duckdb

    from sis_pipelines.canvas import fingerprint
    from sis_pipelines.canvas.delta import key_and_values

    key, values = key_and_values(name, list(frame.columns))
    layout = fingerprint.Layout.from_metadata(stored.schema.metadata)
    assert layout == fingerprint.Layout.of(key, values)
    text = stored.drop_columns(list(fingerprint.COLUMNS))
    computed = duckdb.sql(
        f"select {fingerprint.key_hash_sql(key)} as k, "
        f"{fingerprint.row_hash_sql(key, values)} as r from text"
    ).fetch_arrow_table()
    assert computed["k"].to_pylist() == stored[fingerprint.KEY_HASH].to_pylist()
    assert computed["r"].to_pylist() == stored[fingerprint.ROW_HASH].to_pylist()
    assert len(set(computed["k"].to_pylist())) == stored.num_rows  # one key, one hash
    assert stored.num_rows > 0
    return text


def test_a_class_without_a_term_or_a_known_course_maps_as_before():
    """The class part is mapped in Arrow: a class's first term (none for a null or empty
    list), and in course_term mode its course and term, or nowhere when its course is unknown."""
    import pyarrow as pa

    from sis_pipelines.canvas.enrollments import first_items
    from sis_pipelines.canvas.mapping import _classes_and_courses

    lists = pa.chunked_array([pa.array([["t1", "t2"], [], None, ["t3"]], pa.list_(pa.string()))])
    assert first_items(lists).to_pylist() == ["t1", None, None, "t3"]
    classes = pd.DataFrame(
        {
            "sourcedId": ["c1", "c2", "c3", "c4"],
            "title": ["Maths", "Art", None, "Maths B"],
            "classCode": [None, "ART", "X", "MB"],
            "courseSourcedId": ["k1", "k2", "unknown", "k1"],
            "schoolSourcedId": ["s1", "s1", "s1", "s2"],
            "termSourcedIds": [["t1"], [], ["t1"], ["t1", "t2"]],
        }
    )
    courses = pd.DataFrame(
        {
            "sourcedId": ["k1", "k2"],
            "title": ["Mathematics", None],
            "courseCode": [None, "A1"],
            "orgSourcedId": ["s1", "s1"],
        }
    )
    cls, made = _classes_and_courses(classes, courses, {"t1": "T1"}, {"T1": "Fall"}, "course_term")
    assert cls["class"].to_pylist() == ["c1", "c2", "c4"]  # c3's course is unknown
    assert cls["course_id"].to_pylist() == ["k1-T1", "k2-no-term", "k1-T1"]
    assert {k: v.to_pylist() for k, v in made.items()} == {
        "course_id": ["k1-T1", "k2-no-term"],
        "short_name": ["Mathematics", "A1"],
        "long_name": ["Mathematics (Fall)", " ()"],
        "account_id": ["s1", "s1"],
        "term_id": ["T1", None],
        "status": ["active", "active"],
    }
    cls, made = _classes_and_courses(classes, courses, {"t1": "T1"}, {"T1": "Fall"}, "class")
    assert made["course_id"].to_pylist() == ["c1", "c2", "c3", "c4"]
    assert made["short_name"].to_pylist() == ["Maths", "ART", "X", "MB"]
    assert made["term_id"].to_pylist() == ["T1", None, "T1", "T1"]


@settings(max_examples=60, deadline=None)
@given(
    codes=st.lists(st.integers(0, 6), min_size=1, max_size=40),
    cuts=st.lists(st.integers(0, 40), max_size=4),
)
def test_first_rows_of_each_code_are_taken_part_by_part_as_from_the_whole(codes, cuts):
    import numpy as np
    import pyarrow as pa

    from sis_pipelines.canvas import enrollments

    values = np.array(codes, dtype=np.int64)
    first = enrollments.first_positions(values)
    expected = np.sort(np.unique(values, return_index=True)[1])
    if len(expected) == len(values):
        assert first is None
        return
    assert first.tolist() == expected.tolist()
    bounds = sorted({0, len(codes), *(c for c in cuts if c <= len(codes))})
    whole = pa.table({"code": values, "row": np.arange(len(values))})
    parts = [whole.slice(a, b - a) for a, b in itertools.pairwise(bounds)]
    taken = pa.concat_tables(enrollments._taken(parts, first))
    assert taken.to_pylist() == whole.take(pa.array(first)).to_pylist()


def test_a_diffing_import_sends_the_whole_files_with_canvas_columns_only(tmp_path):
    """In diffing mode the night's whole Canvas files go in the zip, as stored but without
    the rows' fingerprints (the zip's CSVs hold Canvas's columns only)."""
    import io
    import zipfile

    import pyarrow.parquet as pq

    from sis_pipelines.canvas.provision import delta_night, map_night
    from sis_pipelines.core.lake import Lake

    night = date(2026, 12, 20)
    lake = Lake(UPath(tmp_path))
    for name, frame in canonical(District(60, 5).snapshot(night)).items():
        path = lake.snapshot(name, night, "t")
        path.parent.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
        pq.write_table(table, str(path))
    config = cfg(import_mode="diffing")
    figures = map_night(lake, canvas_night("t", config, night))
    delta_night(lake, canvas_night("t", config, night), allow_mass_removal=False)
    with zipfile.ZipFile(io.BytesIO(lake.sis_import_zip(night, "t").read_bytes())) as bundle:
        for member in bundle.namelist():
            name = member.removesuffix(".csv")
            rows = pd.read_csv(bundle.open(member), dtype=str)
            assert set(rows.columns) <= set(FILES[name].columns), name
            assert len(rows) == figures[f"{name}_rows"], name
