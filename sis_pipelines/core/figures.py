"""What a domain step reports about its work, in plain Python, for the Dagster layer to record.

Values are numbers, strings, booleans, paths (a stored file), aware datetimes (when something
happened) and ``Markdown`` (a table or list the UI renders); nothing here knows Dagster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

Figures: TypeAlias = dict[str, object]


class Markdown(str):
    """Text the UI shows rendered as Markdown."""


@dataclass(frozen=True)
class Check:
    """A check's outcome as the domain decides it; the Dagster layer records it as the asset
    check's result. ``severe``: when it does not pass, the night stops there (else it warns)."""

    name: str
    passed: bool
    description: str
    severe: bool = False
    table: Markdown | None = None  # the reasons, grouped, or what would be removed
    figures: Figures = field(default_factory=dict)
    table_name: str = "top_reasons"


def guard_check(
    name: str,
    *,
    passed: bool,
    overridden: bool,
    refused: str,
    table: Markdown,
    figures: Figures,
) -> Check:
    """A guard on what would destroy work: within its limit, over it and let through on
    purpose (the run's tag says who), or over it and stopped (``refused``: what is stopped)."""
    from .tags import ALLOW_MASS_REMOVAL

    if passed:
        description = "within the limit"
    elif overridden:
        description = f"over the limit, allowed on purpose by this run's {ALLOW_MASS_REMOVAL} tag"
    else:
        description = (
            f"over the limit{refused}. Re-run with the tag {ALLOW_MASS_REMOVAL}=true (or "
            "--allow-mass-removal) to let it through."
        )
    return Check(
        name,
        passed or overridden,
        description,
        severe=True,
        table=table,
        figures={"overridden": overridden, **figures},
        table_name="what_would_be_removed",
    )
