"""A deterministic synthetic school district that changes from night to night.

The district is a pure function of (students, seed, night): the same arguments always give
the same records, so any night can be served again. Sizes follow realistic ratios
(about 650 students per school, 15 per teacher, 25 per class, one guardian per student,
4 to 7 classes per student and semester). Night by night students arrive and withdraw,
schedules change and names are corrected. On 1 August the school year rolls over as real
districts do: new sessions, courses (course codes persist, sourcedIds and class ids change),
classes and enrollments; students move up a grade, and from elementary to middle to high
school; seniors graduate and leave; a kindergarten class and some transfers arrive; a few
teachers change schools. Some SIS keep last year's records as ``tobedeleted`` for a while
(``snapshot(night, keep_tobedeleted_days)``), some drop them at once.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

import numpy as np
import pandas as pd

from .calendar import EPOCH, ROLLOVER_MONTH_DAY, Calendar, school_year_of
from .people import orgs, users_and_demographics
from .population import (
    FAMILY,
    GIVEN,
    GRADE_LEVEL,
    GRADES,
    HORIZON_DAYS,
    LEVELS,
    STUDENTS_PER_SCHOOL,
    STUDENTS_PER_TEACHER,
    TRANSFERS_AT_ROLLOVER,
)
from .schedule import courses_and_classes, enrollments

BASE_YEAR = school_year_of(EPOCH)  # the school year whose grades the candidates are drawn in
NEVER = 10**6
# Last year's records a SIS keeps as tobedeleted after the rollover (the rest go at once).
LEFTOVERS = ("academic_sessions", "courses", "classes", "enrollments", "users")


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
        never = NEVER
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
        self.grade_base = (
            pd.Series(self.stu_grade).map({g: i for i, g in enumerate(GRADES)}).to_numpy(int)
        )
        self._arrive_next_years(np.random.default_rng([seed, 2]))

    def _arrive_next_years(self, rng: np.random.Generator) -> None:
        """The students who arrive at the following rollovers (drawn after everything else,
        so that the first school year is what it always was): each year a kindergarten class
        and some transfers at other grades, present from their first school year on."""
        years = range(1, HORIZON_DAYS // 365 + 1)
        per_year = max(1, round(len(self.stu_ids) / len(GRADES)))
        transfers = max(1, round(len(self.stu_ids) * TRANSFERS_AT_ROLLOVER))
        base, arrive = [], []
        elementary = np.flatnonzero(self.school_level == "elementary")
        school = []
        for k in years:
            rollover = (date(BASE_YEAR + k, *ROLLOVER_MONTH_DAY) - EPOCH).days
            # Kindergarten in year BASE_YEAR + k: grade index -k in the first year.
            base.append(np.full(per_year, -k))
            arrive.append(np.full(per_year, -NEVER))
            school.append(elementary[rng.integers(0, len(elementary), per_year)])
            base.append(rng.integers(1, len(GRADES), transfers) - k)
            arrive.append(np.full(transfers, rollover))
            school.append(rng.integers(0, self.n_schools, transfers))
        base_a, arrive_a, school_a = (np.concatenate(x) for x in (base, arrive, school))
        m = len(base_a)
        n0 = len(self.stu_ids)
        max_slots = self.change_day.shape[1]
        self.grade_base = np.concatenate([self.grade_base, base_a])
        self.stu_school = np.concatenate([self.stu_school, school_a])
        self.stu_grade = np.concatenate([self.stu_grade, np.full(m, None, dtype=object)])
        self.arrive = np.concatenate([self.arrive, arrive_a])
        self.leave = np.concatenate([self.leave, np.full(m, NEVER)])
        self.rename_day = np.concatenate([self.rename_day, np.full(m, NEVER)])
        self.given = np.concatenate([self.given, GIVEN[rng.integers(0, len(GIVEN), m)]])
        self.family = np.concatenate([self.family, FAMILY[rng.integers(0, len(FAMILY), m)]])
        self.birth_offset = np.concatenate([self.birth_offset, rng.integers(0, 365, m)])
        self.sex = np.concatenate([self.sex, np.array(["male", "female"])[rng.integers(0, 2, m)]])
        self.race = np.concatenate([self.race, rng.integers(0, 5, m)])
        self.hispanic = np.concatenate([self.hispanic, rng.random(m) < 0.3])
        self.change_day = np.concatenate(
            [self.change_day, np.full((m, max_slots), NEVER, dtype=self.change_day.dtype)]
        )
        self.section_salt = np.concatenate(
            [self.section_salt, rng.integers(0, 1 << 30, (m, max_slots))]
        )
        self.stu_ids = np.concatenate(
            [self.stu_ids, np.array([f"stu-{i:07d}" for i in range(n0, n0 + m)])]
        )

    # ---------------------------------------------------------------- the school year

    def grade_index(self, year: int) -> np.ndarray:
        """Each candidate's grade index (0 = KG … 12) in a school year; outside is no grade."""
        return self.grade_base + (year - BASE_YEAR)

    def grade_in(self, year: int) -> np.ndarray:
        idx = self.grade_index(year)
        valid = (idx >= 0) & (idx < len(GRADES))
        return np.where(
            valid, np.array(GRADES, dtype=object)[np.clip(idx, 0, len(GRADES) - 1)], None
        )

    def school_in(self, year: int) -> np.ndarray:
        """Each candidate's school in a school year: the same while its level fits the grade,
        else a school of the grade's level (elementary → middle → high)."""
        idx = np.clip(self.grade_index(year), 0, len(GRADES) - 1)
        level = np.array(GRADE_LEVEL, dtype=object)[idx]
        school = self.stu_school.copy()
        for name in LEVELS:
            here = np.flatnonzero(self.school_level == name)
            move = (level == name) & (self.school_level[school] != name)
            school[move] = here[np.flatnonzero(move) % len(here)]
        return school

    def teachers(self, year: int) -> pd.DataFrame:
        """The district's teachers (id, school) in a school year: each keeps its id; from the
        second year on, the last teacher of each school with several moves to another."""
        per_school = self.teachers_per_school().to_numpy()
        school = np.repeat(np.arange(self.n_schools), per_school)
        number = np.concatenate([np.arange(k) for k in per_school])
        ids = np.array([f"tch-{s + 1:04d}-{k:03d}" for s, k in zip(school, number, strict=True)])
        now = school.copy()
        shift = year - BASE_YEAR
        if shift > 0:
            moves = (number == per_school[school] - 1) & (per_school[school] > 1)
            now[moves] = (school[moves] + shift) % self.n_schools
        return pd.DataFrame({"teacher_id": ids, "school": now, "home": school, "number": number})

    # ---------------------------------------------------------------- helpers

    def present(self, night: date) -> np.ndarray:
        """Enrolled tonight: arrived, not left, and in a grade (graduates are not)."""
        d = (night - EPOCH).days
        idx = self.grade_index(school_year_of(night))
        return (self.arrive <= d) & (d < self.leave) & (idx >= 0) & (idx < len(GRADES))

    def school_grade_counts(self, year: int = BASE_YEAR) -> pd.DataFrame:
        grade = self.grade_in(year)
        known = grade != None  # noqa: E711 - an object array
        frame = pd.DataFrame({"school": self.school_in(year)[known], "grade": grade[known]})
        return frame.value_counts().rename("n").reset_index()

    @lru_cache(maxsize=1)  # noqa: B019 - districts are few and long-lived
    def teachers_per_school(self) -> pd.Series:
        per_school = np.bincount(self.stu_school, minlength=self.n_schools)
        return pd.Series(np.maximum(1, -(-per_school // STUDENTS_PER_TEACHER)))

    @lru_cache(maxsize=8)  # noqa: B019 - districts are few and long-lived
    def snapshot(self, night: date, keep_tobedeleted_days: int = 0) -> dict[str, pd.DataFrame]:
        """Every collection as seen by the SIS at the end of ``night`` (canonical columns).

        ``keep_tobedeleted_days``: for that many nights after the rollover the SIS still
        serves last year's sessions, courses, classes, enrollments and graduates, marked
        ``tobedeleted`` (as some SIS do); 0 drops them at once."""
        now = self._snapshot(night)
        rollover = date(school_year_of(night), *ROLLOVER_MONTH_DAY)
        if not keep_tobedeleted_days or (night - rollover).days >= keep_tobedeleted_days:
            return now
        last = self._snapshot(rollover - timedelta(days=1))
        marked = pd.Timestamp(datetime(rollover.year, rollover.month, rollover.day, tzinfo=UTC))
        out = dict(now)
        for name in LEFTOVERS:
            gone = last[name][~last[name]["sourcedId"].isin(now[name]["sourcedId"])]
            gone = gone.assign(status="tobedeleted", dateLastModified=marked)
            gone.attrs = {}
            kept = now[name].copy()
            kept.attrs = {}
            out[name] = pd.concat([kept, gone], ignore_index=True)
            out[name].attrs = now[name].attrs
        return out

    @lru_cache(maxsize=8)  # noqa: B019 - districts are few and long-lived
    def _snapshot(self, night: date) -> dict[str, pd.DataFrame]:
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
