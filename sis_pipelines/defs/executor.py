"""Where the steps of a nightly run execute: in the run's own process (the default), or on
Celery workers on other hosts (``SIS_PIPELINES_EXECUTOR=celery``; deploy/celery).

The choice belongs to the deployment, not to a run: the webserver, the daemon, the run workers
and the Celery workers all load the code location with the same environment.
"""

import os
from typing import Any

import dagster as dg

from ..core.errors import ConfigurationError

EXECUTOR_ENV = "SIS_PIPELINES_EXECUTOR"
EXECUTORS = ("in_process", "celery")

# The executor's config, the same block the workers start with (deploy/celery/worker.yaml).
# The broker and results URLs come from the environment: they carry passwords.
CELERY_CONFIG: dict[str, Any] = {
    "broker": {"env": "DAGSTER_CELERY_BROKER_URL"},
    "backend": {"env": "DAGSTER_CELERY_BACKEND_URL"},
    "config_source": {
        # A worker killed mid-step gives its step back to the queue, and another worker runs
        # it again (steps publish atomically, so a second attempt finds nothing half-done).
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # One step at a time per worker process: a large tenant's step is memory-heavy.
        "worker_prefetch_multiplier": 1,
        "broker_connection_retry_on_startup": True,
    },
}


def run_executor() -> dg.ExecutorDefinition:
    """The executor of the nightly and term-change jobs, as the deployment chose it."""
    choice = os.environ.get(EXECUTOR_ENV, "in_process") or "in_process"
    if choice == "in_process":
        # One process per tenant-night: steps are short and a subprocess per step costs seconds.
        return dg.in_process_executor
    if choice == "celery":
        try:
            from dagster_celery import celery_executor
        except ImportError:
            raise ConfigurationError(
                f"{EXECUTOR_ENV}=celery needs dagster-celery: pip install 'sis_pipelines[celery]'"
            ) from None
        return celery_executor.configured(CELERY_CONFIG, name="celery")
    raise ConfigurationError(
        f"{EXECUTOR_ENV}={choice!r} is not an executor; use one of {', '.join(EXECUTORS)}"
    )
