"""The executor a deployment chooses for its nightly runs, and the Celery workers' config."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import yaml
from dagster_celery.cli import get_validated_config

from sis_pipelines.canvas.package import ENTRY_TIME, build_zip
from sis_pipelines.core.errors import ConfigurationError
from sis_pipelines.defs.executor import CELERY_CONFIG, EXECUTOR_ENV, run_executor

WORKER_YAML = Path(__file__).parents[1] / "deploy" / "celery" / "worker.yaml"


def test_in_process_unless_the_deployment_chooses_celery(monkeypatch):
    monkeypatch.delenv(EXECUTOR_ENV, raising=False)
    assert run_executor().name == "in_process"
    monkeypatch.setenv(EXECUTOR_ENV, "celery")
    assert run_executor().name == "celery"


def test_an_unknown_executor_is_one_line_that_names_the_choices(monkeypatch):
    monkeypatch.setenv(EXECUTOR_ENV, "kubernetes")
    with pytest.raises(ConfigurationError, match="use one of in_process, celery"):
        run_executor()


def test_the_workers_start_with_the_executors_own_config(monkeypatch):
    monkeypatch.setenv("DAGSTER_CELERY_BROKER_URL", "pyamqp://u:p@broker:5672/sis")
    monkeypatch.setenv("DAGSTER_CELERY_BACKEND_URL", "redis://redis:6379/0")
    assert yaml.safe_load(WORKER_YAML.read_text())["execution"]["config"] == CELERY_CONFIG
    config = get_validated_config(str(WORKER_YAML))
    assert config["broker"] == "pyamqp://u:p@broker:5672/sis"
    # A killed worker's step goes back to the queue.
    assert config["config_source"]["task_acks_late"] is True
    assert config["config_source"]["task_reject_on_worker_lost"] is True


def test_a_zip_is_the_same_bytes_whenever_it_is_built():
    users = pd.DataFrame(
        {"user_id": ["U1"], "login_id": ["u1"], "first_name": ["A"], "last_name": ["B"]}
        | {"email": ["a@x"], "declared_user_type": ["student"], "status": ["active"]}
    )
    data = build_zip({"users": users})
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert [i.date_time for i in z.infolist()] == [ENTRY_TIME]
    assert build_zip({"users": users.copy()}) == data
