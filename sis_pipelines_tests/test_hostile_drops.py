"""Hostile and careless drops: links out of the drop, two members that are one file, control
characters and encodings. Each is refused in one line naming the file, or read whole: never
another district's data, never a file silently lost."""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sis_pipelines.core.nights import latest_complete_night
from sis_pipelines.oneroster.collections import COLLECTIONS
from sis_pipelines.oneroster.csv_bundle import BundleError, load_bundle, read_collection
from sis_pipelines.oneroster.csv_source import locate_local
from sis_pipelines.operate import run_tenant_night
from sis_pipelines.simulator.district import District
from sis_pipelines.simulator.export import export_bundle

from .sftp_server import SftpServer

TENANT = """
tenants:
  csv-a:
    vendor: generic
    oneroster: {{version: "1.1", source: csv, path: "{path}"{extra}}}
"""


def unpacked(zip_path: Path, folder: Path) -> Path:
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(folder)
    return folder


@pytest.fixture
def night():
    return latest_complete_night()


@pytest.fixture
def two_districts(tmp_path, night):
    """District A's drops (a folder per night) beside district B's."""
    a = unpacked(
        export_bundle(District(60, 3), night, tmp_path / "zips-a"),
        tmp_path / "a" / f"oneroster-{night}",
    )
    b = unpacked(
        export_bundle(District(90, 4), night, tmp_path / "zips-b"),
        tmp_path / "b" / f"oneroster-{night}",
    )
    return a, b


def test_a_linked_file_in_a_drop_folder_is_refused_naming_it(two_districts, tmp_path, night):
    a, b = two_districts
    (a / "users.csv").unlink()
    (a / "users.csv").symlink_to(b / "users.csv")  # the other district's users
    with pytest.raises(BundleError) as caught:
        locate_local(str(a.parent), night)
    message = str(caught.value)
    assert "users.csv: a symbolic link" in message and "\n" not in message
    # /etc/passwd is no better, and a file swapped for a link after listing is not followed.
    (a / "users.csv").unlink()
    (a / "users.csv").symlink_to("/etc/passwd")
    with pytest.raises(BundleError, match="symbolic link"):
        locate_local(str(a.parent), night)


def test_a_night_folder_that_is_a_link_is_refused(two_districts, tmp_path, night):
    _, b = two_districts
    drops = tmp_path / "drops-c"
    drops.mkdir()
    (drops / f"oneroster-{night}").symlink_to(b, target_is_directory=True)
    with pytest.raises(BundleError, match=f"oneroster-{night}: a symbolic link"):
        locate_local(str(drops), night)


def test_a_linked_file_opened_after_listing_is_not_followed(two_districts):
    a, b = two_districts
    bundle = load_bundle(a)
    (a / "users.csv").unlink()
    (a / "users.csv").symlink_to(b / "users.csv")  # swapped between listing and reading
    with pytest.raises(BundleError, match=r"users\.csv: cannot be read"):
        read_collection(bundle, COLLECTIONS["users"], None)


def test_a_link_in_a_zip_is_refused(tmp_path, night):
    path = export_bundle(District(40, 2), night, tmp_path / "drops")
    with zipfile.ZipFile(path, "a") as z:
        link = zipfile.ZipInfo("extra.csv")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        z.writestr(link, "/etc/passwd")
    with pytest.raises(BundleError, match=r"extra\.csv is a symbolic link"):
        locate_local(str(path.parent), night)


def test_two_members_that_are_one_file_are_refused(tmp_path, night):
    path = export_bundle(District(40, 2), night, tmp_path / "drops")
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("sub/USERS.csv", "sourcedId,status\n")
    with pytest.raises(BundleError) as caught:
        locate_local(str(path.parent), night)
    assert "users.csv and sub/USERS.csv are both users.csv" in str(caught.value)
    folder = unpacked(path, tmp_path / "folder")
    (folder / "Users.CSV").write_text("sourcedId,status\n")
    with pytest.raises(BundleError, match=r"are both users\.csv"):
        load_bundle(folder)


def test_a_linked_drop_over_sftp_is_refused(workspace, tmp_path, monkeypatch, night):
    instance, data, tenants = workspace
    root = tmp_path / "sftp-root"
    (root / "outbox").mkdir(parents=True)
    other = export_bundle(District(90, 4), night, tmp_path / "other-district")
    (root / "outbox" / other.name).symlink_to(other)
    monkeypatch.setenv("SFTP_PASSWORD", "s3cret-sftp")
    with SftpServer(root, "district", password="s3cret-sftp") as server:
        tenants.write_text(
            TENANT.format(
                path=f"sftp://district@127.0.0.1:{server.port}/outbox",
                extra=f', sftp_password_env: SFTP_PASSWORD, sftp_host_key: "{server.host_key_line}"',
            )
        )
        outcome = run_tenant_night(instance, "csv-a", night, select="key:oneroster/orgs")
    assert not outcome.success
    assert any(f"oneroster-{night}.zip: a symbolic link" in e for e in outcome.errors)
    assert not (data / "oneroster" / "orgs").exists()


def test_an_end_to_end_night_never_carries_another_districts_users(workspace, two_districts, night):
    instance, data, tenants = workspace
    a, b = two_districts
    (a / "users.csv").unlink()
    os.symlink(b / "users.csv", a / "users.csv")
    tenants.write_text(TENANT.format(path=a.parent, extra=""))
    outcome = run_tenant_night(instance, "csv-a", night, select="group:oneroster")
    assert not outcome.success
    assert any("users.csv: a symbolic link" in e for e in outcome.errors)
    assert not list(data.rglob("*.parquet")), "nothing stored for the night"


def rewrite_users(folder: Path, change) -> list[list[str]]:
    """users.csv of a drop folder rewritten row by row (quoted as Python's writer quotes)."""
    import csv
    import io

    rows = list(csv.reader(io.StringIO((folder / "users.csv").read_text(), newline="")))
    rows = change(rows)
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    (folder / "users.csv").write_bytes(out.getvalue().encode())
    return rows


def test_control_characters_are_repaired_or_refused_per_record_and_reach_canvas_safely(
    workspace, tmp_path, night, monkeypatch
):
    """A carriage return in a quoted familyName is repaired (recorded); one in an unquoted field
    quarantines its row with file and line; NUL in a name or an id quarantines the record.
    The rest of the district reaches Canvas, and the zip reads back as written."""
    from sis_pipelines.core.storage import read_frame
    from sis_pipelines.simulator.canvas import CanvasSimulator

    instance, data, tenants = workspace
    folder = unpacked(
        export_bundle(District(60, 3), night, tmp_path / "zips"),
        tmp_path / "drops" / f"oneroster-{night}",
    )
    students = {}

    def damage(rows):
        header = rows[0]
        given, family, sid = (
            header.index("givenName"),
            header.index("familyName"),
            header.index("sourcedId"),
        )
        learners = [r for r in rows[1:] if r[header.index("role")] == "student"]
        a, b, c = learners[:3]
        a[family] = "Smith\rJones"  # quoted by the writer
        b[given] = "Ann\x00"
        c[sid] = c[sid] + "\x00x"
        students.update(repaired=a[sid], nul_name=b[sid], nul_id=c[sid])
        return rows

    rewrite_users(folder, damage)
    # And one row with a bare carriage return in an unquoted field.
    text = (folder / "users.csv").read_bytes()
    lines = text.split(b"\r\n")
    victim = lines[-2].split(b",")
    students["unquoted"] = victim[0].decode()
    lines[-2] = b",".join([*victim[:-1], victim[-1] + b"\rX"]) if victim[-1] else lines[-2] + b"\rX"
    (folder / "users.csv").write_bytes(b"\r\n".join(lines))
    monkeypatch.setenv("CANVAS_T", "canvas-token-xyz")
    with CanvasSimulator(token="canvas-token-xyz") as canvas:
        tenants.write_text(
            TENANT.format(path=folder.parent, extra="")
            + f'    canvas: {{base_url: "{canvas.base_url}", token_env: CANVAS_T, max_removal_share: 1.0}}\n'
        )
        outcome = run_tenant_night(instance, "csv-a", night)
        assert outcome.success, outcome.errors
        users = canvas.active("users")
    assert users[students["repaired"]]["last_name"] == "Smith Jones"
    assert not any(
        "\r" in (v or "") or "\x00" in (v or "") for u in users.values() for v in u.values()
    )
    quarantine = read_frame(data / "quarantine" / "users" / str(night) / "csv-a.parquet")
    reasons = dict(
        zip(quarantine["sourcedId"].astype(object), quarantine["reason"].astype(str), strict=False)
    )
    assert "holds a NUL character" in reasons[students["nul_name"]]
    assert "holds a control character" in reasons[students["nul_id"]]
    [unquoted] = [r for r in quarantine["reason"].astype(str) if "inside an unquoted field" in r]
    assert unquoted.startswith("users.csv line ")
    repairs = read_frame(data / "repairs" / "users" / str(night) / "csv-a.parquet")
    fixed = repairs[repairs["sourcedId"] == students["repaired"]]
    assert list(fixed["value"]) == ["Smith\rJones"]
    assert "control characters replaced by a space" in fixed["reason"].iloc[0]
    for sid in ("nul_name", "nul_id", "repaired"):
        assert students[sid] not in users or sid == "repaired"


@pytest.mark.parametrize("encoding", ["utf-16", "latin-1", "cp1252", "utf-8-sig"])
def test_every_encoding_a_district_exports_is_read_as_written(tmp_path, night, encoding):
    folder = unpacked(export_bundle(District(40, 2), night, tmp_path / "zips"), tmp_path / "drop")
    name = "Zoë Ångström-Çelik" if encoding != "utf-16" else "Zoë 张 Ångström"

    def rename(rows):
        rows[1][rows[0].index("givenName")] = name
        return rows

    rows = rewrite_users(folder, rename)
    # Each encoding as its tools write it (CRLF lines; UTF-16 with its byte-order mark).
    text = (folder / "users.csv").read_bytes().decode()
    (folder / "users.csv").write_bytes(text.encode(encoding))
    read = read_collection(load_bundle(folder), COLLECTIONS["users"], None)
    names = dict(
        zip(read.table["sourcedId"].to_pylist(), read.table["givenName"].to_pylist(), strict=True)
    )
    assert names[rows[1][rows[0].index("sourcedId")]] == name
    assert read.table.num_rows == len(rows) - 1


@given(
    st.lists(
        # Any character UTF-8 can hold (lone surrogates cannot be text in a file at all).
        st.text(
            alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
            max_size=20,
        ),
        min_size=1,
        max_size=5,
    )
)
def test_any_text_but_nul_round_trips_through_the_canvas_csv(names):
    """What the Canvas zip holds reads back as written, control characters and all (CR inside
    quotes): no value can break a row of Canvas's reader."""
    import pandas as pd

    from sis_pipelines.canvas.package import build_zip, read_zip

    frame = pd.DataFrame(
        {
            "user_id": [f"u{i}" for i in range(len(names))],
            "login_id": [f"l{i}" for i in range(len(names))],
            "first_name": names,
            "last_name": names[::-1],
            "status": "active",
        }
    )
    rows = read_zip(build_zip({"users": frame}))["users"]
    assert [r["first_name"] for r in rows] == names
    assert [r["last_name"] for r in rows] == names[::-1]


def test_a_file_repeating_each_id_a_hundred_times_is_refused_in_one_line(
    workspace, tmp_path, night
):
    """A broken export's join: 2,000 users each written 100 times. Settling them would read
    every copy back; beyond the tenant's quarantine share the collection is refused first."""
    instance, data, tenants = workspace
    folder = unpacked(
        export_bundle(District(40, 2), night, tmp_path / "zips"),
        tmp_path / "drops" / f"oneroster-{night}",
    )
    text = (folder / "users.csv").read_bytes().decode()
    header, first = text.split("\r\n")[:2]
    cells = first.split(",")
    rows = [",".join([f"u{i:05d}", *cells[1:]]) for i in range(2_000)] * 100
    (folder / "users.csv").write_bytes(("\r\n".join([header, *rows]) + "\r\n").encode())
    tenants.write_text(TENANT.format(path=folder.parent, extra=""))
    outcome = run_tenant_night(
        instance, "csv-a", night, select="key:oneroster/orgs or key:oneroster/users"
    )
    assert not outcome.success
    [error] = [e for e in outcome.errors if "share their sourcedId" in e]
    assert "200,000 of 200,000 records" in error and "up to 100 times" in error
    assert "\n" not in error
    assert not (data / "oneroster" / "users").exists()


def test_a_zip_larger_than_the_drop_may_be_is_refused_before_it_is_copied(tmp_path, night):
    path = export_bundle(District(40, 2), night, tmp_path / "drops")
    with pytest.raises(BundleError, match=r"the zip alone is above the tenant's max_drop_bytes"):
        locate_local(str(path.parent), night, max_bytes=path.stat().st_size - 1)
    assert locate_local(str(path.parent), night, max_bytes=path.stat().st_size).sha256
