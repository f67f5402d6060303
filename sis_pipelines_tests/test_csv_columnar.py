"""The columnar reading of OneRoster CSV files gives, for every file it takes, the table the
row path gives; every file it cannot take exactly goes to the row path."""

from __future__ import annotations

import io
import zipfile
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from sis_pipelines.oneroster.collections import COLLECTIONS
from sis_pipelines.oneroster.csv_bundle import FILE_NAMES, Bundle, load_bundle, read_collection
from sis_pipelines.oneroster.csv_columnar import read_file
from sis_pipelines.simulator.district import District
from sis_pipelines.simulator.export import export_bundle

from .realdata import EDFI, MOODLE_BUNDLES

BUNDLES = [*MOODLE_BUNDLES, EDFI]


def row_path(bundle: Bundle, name: str, previous: pa.Table | None = None):
    # A data-minimisation hook sees every record, so it keeps the row path.
    return read_collection(bundle, COLLECTIONS[name], previous, hook=lambda record: None)


def one_file_bundle(folder: Path, name: str, data: bytes) -> Bundle:
    """A OneRoster 1.1 bundle holding the collection's file alone."""
    path = folder / "b.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("manifest.csv", "propertyName,value\noneroster.version,1.1\n")
        z.writestr(f"{FILE_NAMES[name]}.csv", data)
    return load_bundle(path)


def same(a: pa.Table, b: pa.Table) -> None:
    assert a.schema == b.schema
    assert a.to_pylist() == b.to_pylist()


def test_a_simulated_districts_export_is_read_columnar_and_as_the_row_path_reads_it(tmp_path):
    path = export_bundle(District(300, 11), date(2026, 11, 20), tmp_path)
    bundle = load_bundle(path)
    taken = []
    for name in COLLECTIONS:
        data = bundle.files.get(f"{FILE_NAMES[name].lower()}.csv")
        if data is None:
            continue
        fast = read_file(COLLECTIONS[name], data, bundle.mode(name))
        if fast is not None:
            taken.append(name)
            same(fast, row_path(bundle, name).table)
        same(read_collection(bundle, COLLECTIONS[name], None).table, row_path(bundle, name).table)
    # The large files are the point: they must not fall back.
    assert {"enrollments", "classes", "courses"} <= set(taken), taken


@pytest.mark.parametrize("path", BUNDLES, ids=lambda p: p.name)
def test_every_real_bundle_reads_the_same_whichever_path_takes_a_file(path):
    bundle = load_bundle(path)
    for name in COLLECTIONS:
        fast = read_collection(bundle, COLLECTIONS[name], None)
        slow = row_path(bundle, name)
        same(fast.table, slow.table)
        assert fast.rejects.reasons == slow.rejects.reasons
        assert fast.rows_in_files == slow.rows_in_files


CELL = st.one_of(
    st.sampled_from(["", " ", "a", " b ", "x,y", " p , ,q ", "true", "FALSE", "2026-09-01"]),
    st.sampled_from(["2026-09-01T08:00:00Z", "not a date", "tobedeleted", "active", "é ü"]),
    # userIds as exports write them, and as they should not.
    st.sampled_from(["{studentNumber:42}", "{ a : b:c }, {x:2}", "{a:1}{b:2}", "{a:1} junk"]),
    st.sampled_from(['{q:"x\\y"}', "{:}", "{a}", "{a:1},"]),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=6),
)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    name=st.sampled_from(["classes", "enrollments", "users", "academic_sessions"]),
    rows=st.lists(st.lists(CELL, min_size=0, max_size=4), max_size=6),
    extra_header=st.sampled_from(["", "vendorCode", "password", "metadata.x"]),
    mode=st.sampled_from(["bulk", "delta"]),
)
def test_any_file_the_columnar_reading_takes_reads_as_the_row_path_reads_it(
    tmp_path_factory, name, rows, extra_header, mode
):
    collection = COLLECTIONS[name]
    columns = [f.column for f in collection.fields]
    if name == "users":
        columns = ["sourcedId", "userIds", "status", "enabledUser", "grades", "orgSourcedIds"]
    header = columns[:6] + ([extra_header] if extra_header else [])
    lines = [",".join(header)]
    for i, cells in enumerate(rows):
        values = [f"id{i}", *cells][: len(header)]
        values += [""] * (len(header) - len(values))
        lines.append(",".join('"' + v.replace('"', '""') + '"' for v in values))
    data = ("\n".join(lines) + "\n").encode()
    fast = read_file(collection, data, mode)
    event("row path" if fast is None else "columnar")
    if fast is None:
        return
    bundle = one_file_bundle(tmp_path_factory.mktemp("bundle"), name, data)
    bundle.manifest[f"file.{FILE_NAMES[name].lower()}"] = mode
    slow = row_path(bundle, name)
    assert not slow.rejects.reasons, "the columnar reading took a file the row path rejects from"
    same(fast, slow.table)


def test_user_ids_in_every_written_form_read_as_the_row_path_reads_them(tmp_path):
    cells = ["{studentNumber:42}", "{ a : b:c }, {x:2}", "{a:1}{b:2}", '{q:"x\\y"}', "", "{:}"]
    lines = ["sourcedId,userIds,givenName"]
    lines += [f'u{i},"{c.replace(chr(34), chr(34) * 2)}",N{i}' for i, c in enumerate(cells)]
    data = ("\n".join(lines) + "\n").encode()
    fast = read_file(COLLECTIONS["users"], data, "bulk")
    assert fast is not None
    same(fast, row_path(one_file_bundle(tmp_path, "users", data), "users").table)
    assert fast["userIds"][0].as_py() == '[{"type":"studentNumber","identifier":"42"}]'
    # A cell that is no list of pairs goes to the row path, which keeps it as text.
    assert (
        read_file(COLLECTIONS["users"], data.replace(b"{a:1}{b:2}", b"{a:1} and"), "bulk") is None
    )


def test_a_drop_replaced_while_its_night_is_read_is_read_as_it_was_hashed(tmp_path):
    from sis_pipelines.oneroster.csv_source import locate_local

    night = date(2026, 11, 20)
    path = export_bundle(District(60, 1), night, tmp_path)
    located = locate_local(str(tmp_path), night)
    before = located.bundle.files["users.csv"]
    # The district uploads another export of the night while the run reads the first.
    export_bundle(District(90, 2), night, tmp_path)
    assert path.exists() and located.bundle.files["users.csv"] == before
    assert read_collection(located.bundle, COLLECTIONS["users"], None).table.num_rows > 0


def test_vendor_and_metadata_columns_read_as_the_row_path_keeps_them(tmp_path):
    data = (
        "sourcedId,status,name,type,vendorCode, metadata.x ,password\n"
        "o1,active,A,school,V1,,secret\n"
        "o2,,B,school,, ,\n"
        'o3,,C,district,"q""z \\\\ w",é,\n'
    ).encode()
    fast = read_file(COLLECTIONS["orgs"], data, "bulk")
    assert fast is not None
    same(fast, row_path(one_file_bundle(tmp_path, "orgs", data), "orgs").table)
    assert fast["metadata"].to_pylist()[:2] == ['{"vendorCode":"V1"}', None]
    assert "secret" not in str(fast.to_pylist())


def test_a_file_damaged_in_the_zip_is_one_line_naming_the_drop_and_the_file():
    import io

    from sis_pipelines.oneroster.csv_bundle import BundleError

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("manifest.csv", "propertyName,value\noneroster.version,1.1\n")
        z.writestr("users.csv", "".join(f"u{i},x{i * 7919 % 1000}\n" for i in range(3000)))
    data = bytearray(buffer.getvalue())
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo("users.csv")
    start = info.header_offset + 30 + len("users.csv") + 40  # inside its compressed bytes
    data[start : start + 30] = b"\xff" * 30
    bundle = load_bundle("drop.zip", bytes(data))  # listed: files are inflated when read
    with pytest.raises(BundleError, match=r"^drop\.zip: users\.csv is damaged in the zip"):
        bundle.files["users.csv"]


def _night_of(folder: Path, night: date, edit=None) -> Path:
    """The simulated district's drop for the night in ``folder``, a file edited if asked."""
    path = export_bundle(District(300, 11), night, folder)
    if edit is not None:
        with zipfile.ZipFile(path) as z:
            files = {i.filename: z.read(i) for i in z.infolist()}
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in files.items():
                z.writestr(name, edit(name, data))
    return path


def _take(folder: Path, night: date, name: str):
    from sis_pipelines.core.lake import Lake
    from sis_pipelines.core.tenant_night import TenantNight
    from sis_pipelines.core.tenants import parse_tenants
    from sis_pipelines.oneroster.snapshot import SnapshotRequest, take_snapshot
    from sis_pipelines.services.connect import Services

    text = f"""
tenants:
  d:
    vendor: generic
    oneroster: {{version: "1.1", source: csv, path: {folder}}}
"""
    tenant = parse_tenants(text).tenants["d"]
    lake = Lake.at(folder / "lake")
    request = SnapshotRequest(
        TenantNight("d", tenant, night), COLLECTIONS[name], force_refetch=True
    )
    return take_snapshot(lake, Services(lake), request, {})


def test_a_bulk_file_is_read_from_the_zip_a_block_at_a_time_never_inflated_whole(
    tmp_path, monkeypatch
):
    from sis_pipelines.oneroster import csv_columnar
    from sis_pipelines.oneroster.csv_bundle import Members
    from sis_pipelines.oneroster.validate import validate

    night = date(2026, 11, 20)
    path = _night_of(tmp_path, night)
    monkeypatch.setattr(csv_columnar, "READ_BLOCK", 1 << 12)
    monkeypatch.setattr(csv_columnar, "_BATCH_BYTES", 1 << 14)
    inflated = []
    whole = Members.__getitem__
    monkeypatch.setattr(Members, "__getitem__", lambda m, n: inflated.append(n) or whole(m, n))
    taken = _take(tmp_path, night, "enrollments")
    assert "enrollments.csv" not in inflated and taken.figures["csv_mode"] == "bulk"
    stored = pq.read_table(str(taken.stored.path))
    expected = validate(
        COLLECTIONS["enrollments"], row_path(load_bundle(path), "enrollments").table, {}
    )
    assert stored.num_rows == taken.stored.rows == len(expected.frame) > 1000
    assert stored.to_pylist() == pa.Table.from_pandas(expected.frame).to_pylist()


def test_a_block_the_columnar_reading_cannot_take_sends_the_whole_file_to_the_row_path(
    tmp_path, monkeypatch
):
    """Blocks already read are forgotten: the night's snapshot is the row path's, whole."""
    from sis_pipelines.oneroster import csv_columnar
    from sis_pipelines.oneroster.validate import validate

    def late_control_character(name: str, data: bytes) -> bytes:
        if name != "enrollments.csv":
            return data
        lines = data.split(b"\n")
        lines[-3] = lines[-3].replace(b",", b",\x07", 1)  # near the end: after many blocks
        return b"\n".join(lines)

    night = date(2026, 11, 20)
    path = _night_of(tmp_path, night, late_control_character)
    monkeypatch.setattr(csv_columnar, "READ_BLOCK", 1 << 12)
    monkeypatch.setattr(csv_columnar, "_BATCH_BYTES", 1 << 14)
    blocks = []
    canonical = csv_columnar._canonical_batch
    monkeypatch.setattr(
        csv_columnar,
        "_canonical_batch",
        lambda *a: blocks.append(a[2].num_rows) or canonical(*a),
    )
    taken = _take(tmp_path, night, "enrollments")
    assert len(blocks) > 5  # the columnar reading got far before it gave the file up
    expected = validate(
        COLLECTIONS["enrollments"], row_path(load_bundle(path), "enrollments").table, {}
    )
    stored = pq.read_table(str(taken.stored.path))
    assert taken.stored.rows == len(expected.frame) == stored.num_rows
    assert stored.to_pylist() == pa.Table.from_pandas(expected.frame).to_pylist()
    assert taken.quarantined == len(expected.quarantine)


def test_small_read_blocks_are_gathered_into_batches_in_order_none_lost(tmp_path, monkeypatch):
    """Arrow reads ahead some forty blocks: blocks are read small (memory) and gathered into
    batches (few compute calls), and the file comes out whole and in order."""
    from sis_pipelines.oneroster import csv_columnar

    bundle = load_bundle(export_bundle(District(300, 11), date(2026, 11, 20), tmp_path))
    data = bundle.files["enrollments.csv"]
    whole = read_file(COLLECTIONS["enrollments"], data, "bulk")
    monkeypatch.setattr(csv_columnar, "READ_BLOCK", 1 << 12)
    monkeypatch.setattr(csv_columnar, "_BATCH_BYTES", 1 << 15)
    reads = []
    gathered = csv_columnar._gathered
    monkeypatch.setattr(
        csv_columnar,
        "_gathered",
        lambda blocks: gathered(b for b in blocks if reads.append(b.num_rows) or True),
    )
    parts = list(
        csv_columnar.file_batches(COLLECTIONS["enrollments"], lambda: io.BytesIO(data), "bulk")
    )
    assert len(reads) > 4 * len(parts) > 4
    assert sum(p.num_rows for p in parts) == sum(reads) == whole.num_rows
    same(pa.concat_tables(parts), whole)
