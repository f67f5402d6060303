"""Hostile and careless drops: links out of the drop, two members that are one file, control
characters and encodings. Each is refused in one line naming the file, or read whole: never
another district's data, never a file silently lost."""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

import pytest

from sis_pipelines.cli import run_tenant_night
from sis_pipelines.nights import latest_complete_night
from sis_pipelines.oneroster.collections import COLLECTIONS
from sis_pipelines.oneroster.csv_bundle import BundleError, load_bundle, read_collection
from sis_pipelines.oneroster.csv_source import locate_local
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
