"""One place picks the world: real clients (with a transport a test can hand in) or the
simulators, which are a plug-in that nothing in the product imports."""

from __future__ import annotations

import subprocess
import sys
from datetime import date

import httpx
import pytest

from sis_pipelines.core.errors import ConfigurationError, MissingSecretError, SisPipelinesError
from sis_pipelines.core.lake import Lake
from sis_pipelines.core.tenants import parse_tenants
from sis_pipelines.oneroster.collections import COLLECTIONS
from sis_pipelines.services.connect import Services

NIGHT = date(2026, 11, 21)
TENANTS = """
tenants:
  real-a:
    vendor: generic
    oneroster:
      version: "1.1"
      source: rest
      base_url: https://sis.district.example/ims/oneroster/v1p1
      auth: {type: bearer, token_env: SIS_TOKEN}
    canvas: {base_url: "https://district.instructure.example", account_id: 7, token_env: CANVAS_TOKEN}
  csv-a:
    vendor: generic
    oneroster: {version: "1.1", source: csv, path: /nowhere}
"""
ORG = {
    "sourcedId": "o1",
    "status": "active",
    "dateLastModified": "2026-01-01T00:00:00Z",
    "name": "Lakeside",
    "type": "school",
}


def _services(tmp_path, handler) -> Services:
    env = {"SIS_TOKEN": "sis-token", "CANVAS_TOKEN": "canvas-token"}
    return Services(Lake.at(tmp_path), env=env, transport=httpx.MockTransport(handler))


def test_a_real_sis_is_reached_through_the_transport_handed_in(tmp_path):
    seen: list[httpx.Request] = []

    def sis(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"orgs": [ORG] if "offset=0" in str(request.url) else []})

    tenant = parse_tenants(TENANTS).tenants["real-a"]
    with _services(tmp_path, sis).rostering("real-a", tenant, NIGHT) as client:
        result = client.fetch(COLLECTIONS["orgs"])
    assert result.table["sourcedId"].to_pylist() == ["o1"]
    assert seen and all(r.url.host == "sis.district.example" for r in seen)
    assert seen[0].headers["authorization"] == "Bearer sis-token"


def test_a_real_canvas_is_reached_through_the_transport_handed_in(tmp_path):
    seen: list[httpx.Request] = []

    def canvas(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": 5, "workflow_state": "imported"})

    tenant = parse_tenants(TENANTS).tenants["real-a"]
    with _services(tmp_path, canvas).canvas("real-a", tenant) as client:
        assert client.sis_import(5)["workflow_state"] == "imported"
    assert seen[0].url.host == "district.instructure.example"
    assert seen[0].url.path == "/api/v1/accounts/7/sis_imports/5"
    assert seen[0].headers["authorization"] == "Bearer canvas-token"


def test_a_missing_secret_and_a_non_rest_source_are_explained(tmp_path):
    tenants = parse_tenants(TENANTS).tenants
    services = Services(Lake.at(tmp_path), env={})
    with pytest.raises(MissingSecretError, match=r"'real-a'.*SIS_TOKEN \(auth.token_env\)"):
        services.rostering("real-a", tenants["real-a"], NIGHT)
    with pytest.raises(MissingSecretError, match=r"CANVAS_TOKEN \(canvas.token_env\)"):
        services.canvas("real-a", tenants["real-a"])
    with pytest.raises(ConfigurationError, match="not a REST source"):
        services.rostering("csv-a", tenants["csv-a"], NIGHT)
    assert issubclass(MissingSecretError, SisPipelinesError)


def test_the_product_loads_no_simulator_until_a_tenant_asks_for_one():
    code = (
        "import sys, sis_pipelines.definitions, sis_pipelines.services.connect, sis_pipelines.cli;"
        "print(sorted(m for m in sys.modules if m.startswith('sis_pipelines.simulator')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_simulated_tenant_gets_the_plugin(tmp_path):
    text = """
tenants:
  sim-a:
    vendor: progressbook
    oneroster: {version: "1.1", source: simulator, students: 30, seed: 2}
"""
    tenant = parse_tenants(text).tenants["sim-a"]
    with Services(Lake.at(tmp_path)).rostering("sim-a", tenant, NIGHT) as client:
        assert client.base_url.startswith("http://127.0.0.1:")
        assert client.fetch(COLLECTIONS["orgs"]).table.num_rows > 0


def test_a_simulated_sis_sends_the_flaws_its_tenant_asks_for(tmp_path):
    import pyarrow.parquet as pq

    from sis_pipelines.core.tenant_night import TenantNight
    from sis_pipelines.oneroster.snapshot import SnapshotRequest, take_snapshot

    text = """
tenants:
  sim-f:
    vendor: genesis
    oneroster: {version: "1.1", source: simulator, students: 40, seed: 3, simulator_flaws: {users: 2}}
"""
    tenant = parse_tenants(text).tenants["sim-f"]
    lake, services = Lake.at(tmp_path), Services(Lake.at(tmp_path))

    def take(name: str, refs: dict):
        request = SnapshotRequest(
            TenantNight("sim-f", tenant, NIGHT), COLLECTIONS[name], force_refetch=True
        )
        return take_snapshot(lake, services, request, refs)

    orgs = pq.read_table(str(take("orgs", {}).stored.path))
    taken = take("users", {"orgs": orgs["sourcedId"].combine_chunks()})
    assert taken.quarantined == 2
    quarantine = pq.read_table(str(lake.quarantine("users", NIGHT, "sim-f"))).to_pandas()
    assert all("wizard" in reason for reason in quarantine["reason"])
    users = pq.read_table(str(taken.stored.path)).to_pandas()
    assert taken.stored.rows == len(users) > 0 and "wizard" not in set(users["role"].astype(str))
