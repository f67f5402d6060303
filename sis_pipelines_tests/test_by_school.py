"""Both rostering service configurations: a SIS whose bulk endpoints time out is read school by
school (/schools/{id}/courses, /classes, /enrollments), and the night's snapshot is the same,
byte for byte; ``auto`` falls back to it when a bulk collection fails."""

from __future__ import annotations

import dagster as dg

from sis_pipelines.core.nights import latest_complete_night
from sis_pipelines.operate import run_tenant_night

from .support import SECRET

TENANT = """
  {name}:
    vendor: focus
    oneroster:
      version: "1.1"
      source: rest
      base_url: {base_url}
      auth: {{type: oauth2, token_url: "{token_url}", client_id_env: BS_ID, client_secret_env: BS_SECRET}}
      service: {service}
      retry_attempts: 2
      retry_backoff_s: 0.01
      step_retries: 0
"""
READ_BY_SCHOOL = ("courses", "classes", "enrollments")


def test_bulk_and_by_school_give_the_same_snapshot_and_auto_falls_back(workspace, sis, monkeypatch):
    instance, data, tenants = workspace
    monkeypatch.setenv("BS_ID", "district-id")
    monkeypatch.setenv("BS_SECRET", SECRET)
    night = latest_complete_night()
    tenants.write_text(
        "tenants:"
        + "".join(
            TENANT.format(
                name=name, service=service, base_url=sis.base_url, token_url=sis.token_url
            )
            for name, service in (("bulk", "bulk"), ("school", "by_school"), ("auto", "auto"))
        )
    )
    for name in ("bulk", "school"):
        outcome = run_tenant_night(instance, name, night, select="group:oneroster")
        assert outcome.success, outcome.errors
    # The bulk enrollments endpoint fails tonight: auto reads it school by school.
    sis.add_fault(path="v1p1/enrollments", status=504, times=1000)
    outcome = run_tenant_night(instance, "auto", night, select="group:oneroster")
    assert outcome.success, outcome.errors
    for collection in READ_BY_SCHOOL:
        bulk = (data / "oneroster" / collection / str(night) / "bulk.parquet").read_bytes()
        for other in ("school", "auto"):
            path = data / "oneroster" / collection / str(night) / f"{other}.parquet"
            assert path.read_bytes() == bulk, (collection, other)
    records = instance.fetch_materializations(
        dg.AssetKey(["oneroster", "enrollments"]), limit=10
    ).records
    endpoint = {
        r.partition_key.split("|")[1]: r.asset_materialization.metadata["endpoint"].value
        for r in records
    }
    assert endpoint["bulk"].endswith("/enrollments") and "schools" not in endpoint["bulk"]
    for other in ("school", "auto"):
        assert endpoint[other].startswith("schools/{id}/enrollments"), endpoint
