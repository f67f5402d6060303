"""`sis-pipelines tenants check`: each tenant's services answer, a line per check, OK or FAIL
with the service's own reason, a non-zero exit on any FAIL, and never a secret."""

from __future__ import annotations

import socket

import pytest

from sis_pipelines.cli import main
from sis_pipelines.simulator.canvas import CanvasSimulator

from .realdata import EDFI
from .support import SECRET

CANVAS_TOKEN = "canvas-T0KEN-never-shown"


@pytest.fixture
def tenants_file(tmp_path, monkeypatch):
    path = tmp_path / "tenants.yaml"
    monkeypatch.setenv("SIS_PIPELINES_TENANTS", str(path))
    monkeypatch.setenv("SIS_PIPELINES_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("REST_A_ID", "district-id")
    monkeypatch.setenv("REST_A_SECRET", SECRET)
    monkeypatch.setenv("CANVAS_A_TOKEN", CANVAS_TOKEN)
    return path


def _rest(sis, base_url: str | None = None, canvas: str = "") -> str:
    return f"""
tenants:
  rest-a:
    vendor: focus
    oneroster:
      version: "1.1"
      source: rest
      base_url: {base_url or sis.base_url}
      auth: {{type: oauth2, token_url: "{sis.token_url}", client_id_env: REST_A_ID, client_secret_env: REST_A_SECRET}}
      retry_attempts: 1
{canvas}"""


def _check(capsys, *args: str) -> tuple[int, list[str]]:
    code = main(["tenants", "check", *args])
    out = capsys.readouterr()
    text = out.out + out.err
    assert SECRET not in text and CANVAS_TOKEN not in text
    assert "Traceback" not in text
    return code, out.out.splitlines()


def test_every_service_answers_ok(tenants_file, sis, capsys):
    bundle = EDFI
    with CanvasSimulator(token=CANVAS_TOKEN) as canvas:
        tenants_file.write_text(
            _rest(
                sis,
                canvas=f"    canvas: {{base_url: {canvas.base_url}, account_id: 1, token_env: CANVAS_A_TOKEN}}",
            )
            + f"""
  csv-b:
    vendor: generic
    oneroster: {{version: "1.1", source: csv, path: "{bundle}"}}
  sim-c:
    vendor: genesis
    oneroster: {{version: "1.1", source: simulator, students: 400, seed: 2}}
"""
        )
        code, lines = _check(capsys)
    assert code == 0, lines
    assert all(" OK " in line for line in lines), lines
    rows = {(line.split()[0], " ".join(line.split()[1:3])): line for line in lines}
    users = rows[("rest-a", "oneroster users")]
    assert "records on the first page of" in users and "the SIS reports" in users
    assert ("rest-a", "canvas account") in rows and ("rest-a", "canvas sis") in rows
    assert "edfi-lms-toolkit-oneroster-v1p1 for" in rows[("csv-b", "csv drop")]
    # Demographics are not the tenant's to fetch by default: not even asked for.
    assert not any("oneroster demographics" in line for line in lines)
    # The simulated Genesis serves 500 records a page whatever is asked, without saying so.
    assert "pages clamped to 500 (asked 1000)" in rows[("sim-c", "oneroster users")]


def test_a_wrong_secret_fails_once_with_the_sis_words(tenants_file, sis, capsys, monkeypatch):
    tenants_file.write_text(_rest(sis))
    monkeypatch.setenv("REST_A_SECRET", "not-the-secret")
    code, lines = _check(capsys, "rest-a")
    assert code == 1
    [line] = lines  # the first request failed: said once, not for every collection
    assert "FAIL" in line and "rest-a" in line and "401" in line, line


def test_a_wrong_base_url_fails(tenants_file, sis, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    tenants_file.write_text(_rest(sis, base_url=f"http://127.0.0.1:{closed}/ims/oneroster/v1p1"))
    code, lines = _check(capsys)
    assert code == 1
    assert "FAIL" in lines[0] and "connection" in lines[0].lower(), lines


def test_a_canvas_token_without_rights_fails(tenants_file, sis, capsys):
    with CanvasSimulator(token=CANVAS_TOKEN) as canvas:
        canvas.may_import = False
        tenants_file.write_text(
            _rest(
                sis,
                canvas=f"    canvas: {{base_url: {canvas.base_url}, account_id: 1, token_env: CANVAS_A_TOKEN}}",
            )
        )
        code, lines = _check(capsys)
    assert code == 1
    [failed] = [line for line in lines if "FAIL" in line]
    assert "canvas sis imports" in failed and "user not authorized" in failed


def test_an_unknown_tenant_is_one_line(tenants_file, sis, capsys):
    tenants_file.write_text(_rest(sis))
    assert main(["tenants", "check", "nobody"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "tenant 'nobody' is not in the tenants file" in err


def test_infinite_campus_gradebook_needs_its_vendor_header(
    tenants_file, small_district, capsys, monkeypatch
):
    from sis_pipelines.simulator.server import SimulatorServer
    from sis_pipelines.simulator.sis_gradebook import SisGradebook

    book = SisGradebook("1.2", vendor_authorization="gb-key:gb-secret")
    with (
        SimulatorServer(
            "infinite_campus",
            district=small_district,
            client_id="district-id",
            client_secret=SECRET,
            gradebook=book,
        ) as sis,
        CanvasSimulator(token=CANVAS_TOKEN) as canvas,
    ):
        tenants_file.write_text(
            f"""
tenants:
  ic-a:
    vendor: infinite_campus
    oneroster:
      version: "1.2"
      source: rest
      base_url: {sis.base_url}
      auth: {{type: oauth2, token_url: "{sis.token_url}", client_id_env: REST_A_ID, client_secret_env: REST_A_SECRET}}
      retry_attempts: 1
    canvas: {{base_url: {canvas.base_url}, token_env: CANVAS_A_TOKEN}}
    gpb: {{endpoints: standard, base_url: "{sis.base_url.replace("rostering", "gradebook")}", vendor_key_env: GB_KEY, vendor_secret_env: GB_SECRET}}
"""
        )
        monkeypatch.setenv("GB_KEY", "gb-key")
        monkeypatch.setenv("GB_SECRET", "wrong")
        code, lines = _check(capsys)
        [gradebook] = [line for line in lines if "gradebook" in line]
        assert code == 1 and "FAIL" in gradebook
        assert "gradebook calls need x-vendor-authorization" in gradebook
        monkeypatch.setenv("GB_SECRET", "gb-secret")
        _, lines = _check(capsys)
        [gradebook] = [line for line in lines if "gradebook" in line]
        assert " OK " in gradebook and "categories" in gradebook
