"""The Dagster instance in DAGSTER_HOME, and how runs made here log."""

from __future__ import annotations

import os

from ..core.errors import UsageError


def dagster_instance():
    import dagster as dg
    from dagster._core.errors import DagsterHomeNotSetError

    try:
        return dg.DagsterInstance.get()
    except DagsterHomeNotSetError:
        raise UsageError(
            "DAGSTER_HOME is not set: point it at the folder of the Dagster instance "
            "(make demo and make ui use ./.dagster_home)"
        ) from None
    except dg.DagsterInvariantViolationError as exc:
        raise UsageError(first_line(str(exc))) from None


def first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def quiet_dagster(verbose: bool = False) -> None:
    """Dagster's warnings about its own beta APIs are not the operator's business."""
    import warnings

    import dagster as dg

    if not verbose:
        for category in (dg.BetaWarning, dg.PreviewWarning):
            warnings.filterwarnings("ignore", category=category)


def console(verbose: bool) -> dict:
    """The run config of a run made here: Dagster's console log only with --verbose."""
    level = "INFO" if verbose else os.environ.get("SIS_PIPELINES_LOG_LEVEL", "CRITICAL")
    return {"loggers": {"console": {"config": {"log_level": level}}}}
