"""A deterministic synthetic school district that changes from night to night.

The district is a pure function of (students, seed, night): the same arguments always give
the same records, so any night can be served again. Sizes follow realistic ratios
(about 650 students per school, 15 per teacher, 25 per class, one guardian per student,
4 to 7 classes per student and semester). Night by night students arrive and withdraw,
schedules change and names are corrected; on 1 August the school year rolls over (new
sessions, courses, classes and enrollments), the known term-rollover date.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import lru_cache

import numpy as np
import pandas as pd

from .calendar import EPOCH, Calendar, school_year_of
from .people import orgs, users_and_demographics
from .population import (
    FAMILY,
    GIVEN,
    HORIZON_DAYS,
    LEVELS,
    STUDENTS_PER_SCHOOL,
    STUDENTS_PER_TEACHER,
)
from .schedule import courses_and_classes, enrollments


class District:
    """A synthetic district of about ``students`` students."""

    def __init__(self, students: int = 2000, seed: int = 1, district_id: str = "district"):
        if students < 1:
            raise ValueError("a district needs at least one student")
        self.students = students
        self.seed = seed
        self.district_id = district_id
        rng = np.random.default_rng(seed)
        self.n_schools = max(3, round(students / STUDENTS_PER_SCHOOL))
        # Half elementary, a quarter each middle and high, at least one of each.
        pos = (np.arange(self.n_schools) + 0.5) / self.n_schools
        self.school_level = np.where(
            pos < 0.5, "elementary", np.where(pos < 0.75, "middle", "high")
        )
        self.school_ids = np.array([f"sch-{i + 1:04d}" for i in range(self.n_schools)])
        # Candidates: the population at some point in time; some arrive later, some leave.
        n = int(students * 1.06) + 1
        self.n_candidates = n
        self.stu_school = rng.integers(0, self.n_schools, n)
        grade_idx = rng.random(n)
        self.stu_grade = np.empty(n, dtype=object)
        for level, (grades, _) in LEVELS.items():
            mask = self.school_level[self.stu_school] == level
            self.stu_grade[mask] = np.array(grades)[(grade_idx[mask] * len(grades)).astype(int)]
        never = 10**6
        arrives = rng.random(n) < 0.12
        self.arrive = np.where(arrives, rng.integers(1, HORIZON_DAYS, n), -never)
        leaves = rng.random(n) < 0.12
        self.leave = np.where(leaves, rng.integers(1, HORIZON_DAYS, n), never)
        self.rename_day = np.where(rng.random(n) < 0.05, rng.integers(1, HORIZON_DAYS, n), never)
        self.given = GIVEN[rng.integers(0, len(GIVEN), n)]
        self.family = FAMILY[rng.integers(0, len(FAMILY), n)]
        self.birth_offset = rng.integers(0, 365, n)
        self.sex = np.array(["male", "female"])[rng.integers(0, 2, n)]
        self.race = rng.integers(0, 5, n)
        self.hispanic = rng.random(n) < 0.3
        max_slots = max(s for _, s in LEVELS.values())
        # One schedule change per (student, slot) for ~15 % of pairs.
        self.change_day = np.where(
            rng.random((n, max_slots)) < 0.15, rng.integers(1, HORIZON_DAYS, (n, max_slots)), never
        )
        self.section_salt = rng.integers(0, 1 << 30, (n, max_slots))
        self.stu_ids = np.array([f"stu-{i:07d}" for i in range(n)])

    # ---------------------------------------------------------------- helpers

    def present(self, night: date) -> np.ndarray:
        d = (night - EPOCH).days
        return (self.arrive <= d) & (d < self.leave)

    def school_grade_counts(self) -> pd.DataFrame:
        frame = pd.DataFrame({"school": self.stu_school, "grade": self.stu_grade})
        return frame.value_counts().rename("n").reset_index()

    @lru_cache(maxsize=1)  # noqa: B019 - districts are few and long-lived
    def teachers_per_school(self) -> pd.Series:
        per_school = np.bincount(self.stu_school, minlength=self.n_schools)
        return pd.Series(np.maximum(1, -(-per_school // STUDENTS_PER_TEACHER)))

    @lru_cache(maxsize=8)  # noqa: B019 - districts are few and long-lived
    def snapshot(self, night: date) -> dict[str, pd.DataFrame]:
        """Every collection as seen by the SIS at the end of ``night`` (canonical columns)."""
        cal = Calendar(school_year_of(night))
        modified = pd.Timestamp(datetime(cal.year, 7, 15, tzinfo=UTC))
        day = (night - EPOCH).days
        sessions = cal.sessions.assign(status="active", dateLastModified=modified, metadata=None)
        courses, classes = courses_and_classes(self, cal, modified)
        users, demographics = users_and_demographics(self, night, day, modified)
        return {
            "orgs": orgs(self, modified),
            "academic_sessions": sessions,
            "courses": courses,
            "classes": classes,
            "users": users,
            "enrollments": enrollments(self, cal, night, day, classes, modified),
            "demographics": demographics,
        }
