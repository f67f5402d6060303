"""School years, their sessions (a year, two semesters, grading periods) and the epoch
from which the district's night-by-night changes count."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd

EPOCH = date(2026, 1, 1)
ROLLOVER_MONTH_DAY = (8, 1)


def school_year_of(night: date) -> int:
    """The starting calendar year of the school year that a night belongs to."""
    return night.year if (night.month, night.day) >= ROLLOVER_MONTH_DAY else night.year - 1


@dataclass(frozen=True)
class Calendar:
    year: int

    @property
    def sessions(self) -> pd.DataFrame:
        y = self.year
        rows = [
            (
                f"sy-{y}",
                f"{y}-{y + 1} School Year",
                "schoolYear",
                date(y, 8, 1),
                date(y + 1, 6, 30),
                None,
            ),
            (f"term-{y}-1", f"Fall {y}", "semester", date(y, 8, 15), date(y + 1, 1, 15), f"sy-{y}"),
            (
                f"term-{y}-2",
                f"Spring {y + 1}",
                "semester",
                date(y + 1, 1, 16),
                date(y + 1, 6, 10),
                f"sy-{y}",
            ),
            (
                f"gp-{y}-1-1",
                f"Q1 {y}",
                "gradingPeriod",
                date(y, 8, 15),
                date(y, 10, 31),
                f"term-{y}-1",
            ),
            (
                f"gp-{y}-1-2",
                f"Q2 {y}",
                "gradingPeriod",
                date(y, 11, 1),
                date(y + 1, 1, 15),
                f"term-{y}-1",
            ),
            (
                f"gp-{y}-2-1",
                f"Q3 {y}",
                "gradingPeriod",
                date(y + 1, 1, 16),
                date(y + 1, 3, 31),
                f"term-{y}-2",
            ),
            (
                f"gp-{y}-2-2",
                f"Q4 {y}",
                "gradingPeriod",
                date(y + 1, 4, 1),
                date(y + 1, 6, 10),
                f"term-{y}-2",
            ),
        ]
        frame = pd.DataFrame(
            rows, columns=["sourcedId", "title", "type", "startDate", "endDate", "parentSourcedId"]
        )
        children = frame.groupby("parentSourcedId")["sourcedId"].agg(list)
        frame["childSourcedIds"] = frame["sourcedId"].map(children)
        frame["schoolYear"] = str(y + 1)
        return frame

    @property
    def terms(self) -> list[tuple[str, date, date]]:
        s = self.sessions
        s = s[s["type"] == "semester"]
        return list(zip(s["sourcedId"], s["startDate"], s["endDate"], strict=True))
