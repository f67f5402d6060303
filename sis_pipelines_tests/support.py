"""Helpers the tests share (fixtures live in conftest.py): a night, fast retries, a client for
a simulator, simulator snapshots as stored frames, OneRoster records as providers send them."""

from __future__ import annotations

from datetime import date

from sis_pipelines.oneroster.auth import ClientCredentials, OAuth1HmacSha256, default_scope
from sis_pipelines.oneroster.client import OneRosterClient, RetryPolicy
from sis_pipelines.simulator.server import SimulatorServer

NIGHT = date(2026, 11, 21)
SECRET = "S3CRET-client-secret-8f1e"  # a SIS client secret that must never appear anywhere
# Every secret a test plants: after each test, no file it wrote (its lake, its Dagster
# instance, its drops) holds any of them (conftest.py).
PLANTED_SECRETS = (
    SECRET,
    "canvas-T0KEN-never-shown",
    "PLANTED-client-secret-4f1c",
    "PLANTED-canvas-token-9a2e",
    "PLANTED-hash-salt-77b1",
    "PLANTED-vendor-secret-3d5a",
    "s3cret-sftp",
    "crash-canvas-token",
)
FAST_RETRY = RetryPolicy(
    max_attempts=5,
    max_elapsed_s=30,
    backoff_base_s=0.001,
    backoff_cap_s=0.01,
    max_retry_after_s=0.05,
)


def auth_for(sim: SimulatorServer, tenant: str = "t1", secret: str | None = None):
    secret = secret or sim.client_secret
    if sim.profile.auth == "oauth1":
        return OAuth1HmacSha256(sim.client_id, secret)
    return ClientCredentials(
        tenant, sim.token_url, sim.client_id, secret, default_scope(sim.profile.version)
    )


def client_for(sim: SimulatorServer, page_size: int = 100, **kwargs: object) -> OneRosterClient:
    kwargs.setdefault("retry", FAST_RETRY)
    auth = kwargs.pop("auth", None) or auth_for(sim)
    return OneRosterClient("t1", sim.base_url, auth, page_size=page_size, **kwargs)  # type: ignore[arg-type]


def canonical(snapshot: dict) -> dict:
    """A simulator snapshot as the stored, validated snapshot frames look (Arrow-backed)."""
    import pandas as pd
    import pyarrow as pa

    from sis_pipelines.oneroster.collections import COLLECTIONS
    from sis_pipelines.oneroster.normalise import arrow_schema

    out = {}
    for name, frame in snapshot.items():
        schema = arrow_schema(COLLECTIONS[name])
        plain = pd.DataFrame({c: frame[c] for c in COLLECTIONS[name].columns})
        out[name] = pa.Table.from_pandas(plain, schema=schema, preserve_index=False).to_pandas(
            types_mapper=pd.ArrowDtype
        )
    return out


def REF(kind: str, sid: str) -> dict:
    return {"href": f"https://sis/{kind}/{sid}", "sourcedId": sid, "type": kind}


def enrollment_1p1(**fields) -> dict:
    """A 1.1 enrollment as an Ed-Fi based provider sends it."""
    return {
        "sourcedId": "e1",
        "status": "active",
        "dateLastModified": "2026-01-01T10:00:00.123Z",
        "user": REF("users", "u1"),
        "class": REF("classes", "c1"),
        "school": REF("orgs", "s1"),
        "role": "student",
        "primary": "false",
        "beginDate": "2025-08-14T22:00:00.000Z",  # midnight in a UTC+2 server
        "endDate": "2026-06-10",
    } | fields


def latest_meta(instance, key: str) -> dict:
    """The latest materialization's metadata of an asset (``"gpb/push"``), as plain values."""
    import dagster as dg

    record = instance.fetch_materializations(dg.AssetKey(key.split("/")), limit=1).records[0]
    return {k: v.value for k, v in record.asset_materialization.metadata.items()}


def canvas_matches(sim, files: dict) -> None:
    """Canvas (a CanvasSimulator) holds exactly the night's state as its rows say (the mapping
    active, retained rows as they were left); anything else is no longer active."""
    from sis_pipelines.canvas.files import FILES
    from sis_pipelines.canvas.mapping import INTERNAL

    for name, frame in files.items():
        spec = FILES[name]
        expected = {}
        for row in frame.drop(columns=[INTERNAL], errors="ignore").to_dict("records"):
            key = "|".join(str(row[k]) for k in spec.key)
            expected[key] = {k: ("" if v is None else str(v)) for k, v in row.items()}
        state = sim.state[name]
        for key, row in expected.items():
            assert key in state, (name, key)
            assert {k: state[key].get(k, "") for k in row} == row, (name, key)
        for key, row in state.items():
            if key not in expected:
                assert row["status"] != "active", (name, key)


def canvas_night(tenant_id: str, canvas, night: date):
    """A tenant-night of a simulated OneRoster tenant with this canvas section (the Canvas
    steps read only it)."""
    from sis_pipelines.core.tenant_night import TenantNight
    from sis_pipelines.core.tenants import Tenant

    tenant = Tenant(
        vendor="generic", oneroster={"version": "1.1", "source": "simulator"}, canvas=canvas
    )
    return TenantNight(tenant_id, tenant, night)
