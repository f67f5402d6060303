"""What a domain step reports about its work, in plain Python, for the Dagster layer to record.

Values are numbers, strings, booleans, paths (a stored file), aware datetimes (when something
happened) and ``Markdown`` (a table or list the UI renders); nothing here knows Dagster.
"""

from __future__ import annotations

from typing import TypeAlias

Figures: TypeAlias = dict[str, object]


class Markdown(str):
    """Text the UI shows rendered as Markdown."""
