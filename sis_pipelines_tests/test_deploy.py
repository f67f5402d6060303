"""The production and scale-out instance files are valid Dagster configuration."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from dagster._config import Shape, process_config
from dagster._core.instance.config import dagster_instance_config

from sis_pipelines.core.nights import partition_budget

ROOT = Path(__file__).parents[1]
PG_ENV = {
    "DAGSTER_PG_HOST": "db",
    "DAGSTER_PG_PORT": "5432",
    "DAGSTER_PG_USER": "dagster",
    "DAGSTER_PG_PASSWORD": "x",
    "DAGSTER_PG_DB": "dagster",
}


@pytest.mark.parametrize("folder", [ROOT, ROOT / "deploy" / "k8s"])
def test_instance_files_validate(folder, monkeypatch):
    for key, value in PG_ENV.items():
        monkeypatch.setenv(key, value)
    config, _ = dagster_instance_config(str(folder))
    assert config["storage"]["postgres"]["postgres_db"]["db_name"] == {"env": "DAGSTER_PG_DB"}
    assert config["telemetry"]["enabled"] is False
    limits = config["concurrency"]["runs"]["tag_concurrency_limits"]
    assert {
        "key": "dagster/partition/tenant",
        "value": {"applyLimitPerUniqueValue": True},
        "limit": 1,
    } in limits
    for section in ("run_launcher", "run_coordinator"):
        if section not in config:
            continue
        entry = config[section]
        # Dagster resolves its legacy `dagster.core` module names itself; so do we.
        module = entry["module"].replace("dagster.core.", "dagster._core.", 1)
        cls = getattr(importlib.import_module(module), entry["class"])
        fields = cls.config_type()
        result = process_config(
            Shape(fields) if isinstance(fields, dict) else fields, entry.get("config") or {}
        )
        assert result.success, (section, [e.message for e in result.errors])


def test_the_partition_budget_warns_before_dagsters_limit():
    assert partition_budget(tenants=100, nights=365).within_limit
    over = partition_budget(tenants=500, nights=365)
    assert not over.within_limit
    assert over.max_nights == 200
