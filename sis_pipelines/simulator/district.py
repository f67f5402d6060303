"""A deterministic synthetic school district that changes from night to night.

The district is a pure function of (students, seed, night): the same arguments always give
the same records, so any night can be served again. Sizes follow realistic ratios
(about 650 students per school, 15 per teacher, 25 per class, one guardian per student,
4 to 7 classes per student and semester). Night by night students arrive and withdraw,
schedules change and names are corrected; on 1 August the school year rolls over (new
sessions, courses, classes and enrollments), the known term-rollover date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache

import numpy as np
import pandas as pd

EPOCH = date(2026, 1, 1)
ROLLOVER_MONTH_DAY = (8, 1)
HORIZON_DAYS = 730  # churn events are spread over this many days after EPOCH
STUDENTS_PER_SCHOOL = 650
STUDENTS_PER_TEACHER = 15
CLASS_SIZE = 25

GIVEN = np.array(
    [
        "Ava",
        "Ben",
        "Chloe",
        "Daniel",
        "Emma",
        "Felix",
        "Grace",
        "Hugo",
        "Isla",
        "Jack",
        "Kai",
        "Lena",
        "Mateo",
        "Nora",
        "Omar",
        "Priya",
        "Quinn",
        "Ravi",
        "Sofia",
        "Theo",
        "Uma",
        "Victor",
        "Willa",
        "Xavier",
        "Yara",
        "Zane",
    ]
)
FAMILY = np.array(
    [
        "Garcia",
        "Smith",
        "Nguyen",
        "Johnson",
        "Patel",
        "Brown",
        "Kim",
        "Lopez",
        "Williams",
        "Chen",
        "Davis",
        "Martinez",
        "Wilson",
        "Anderson",
        "Thomas",
        "Taylor",
        "Moore",
        "Jackson",
        "Lee",
        "Harris",
        "Clark",
        "Lewis",
        "Walker",
        "Young",
        "Allen",
        "King",
    ]
)
LEVELS = {  # school level -> (grades, slots per semester)
    "elementary": (["KG", "01", "02", "03", "04", "05"], 4),
    "middle": (["06", "07", "08"], 6),
    "high": (["09", "10", "11", "12"], 7),
}
SUBJECTS = {
    "elementary": ["Homeroom", "Art", "Music", "Physical Education"],
    "middle": ["Mathematics", "English", "Science", "Social Studies", "Physical Education", "Art"],
    "high": [
        "Algebra",
        "English",
        "Biology",
        "History",
        "Physical Education",
        "Spanish",
        "Computer Science",
    ],
}


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

    def _school_grade_counts(self) -> pd.DataFrame:
        frame = pd.DataFrame({"school": self.stu_school, "grade": self.stu_grade})
        return frame.value_counts().rename("n").reset_index()

    # ---------------------------------------------------------------- collections

    @lru_cache(maxsize=8)  # noqa: B019 - districts are few and long-lived
    def snapshot(self, night: date) -> dict[str, pd.DataFrame]:
        """Every collection as seen by the SIS at the end of ``night`` (canonical columns)."""
        cal = Calendar(school_year_of(night))
        modified = pd.Timestamp(datetime(cal.year, 7, 15, tzinfo=UTC))
        day = (night - EPOCH).days
        orgs = self._orgs(modified)
        sessions = cal.sessions.assign(status="active", dateLastModified=modified, metadata=None)
        courses, classes = self._courses_and_classes(cal, modified)
        users, demographics = self._users(night, day, modified)
        enrollments = self._enrollments(cal, night, day, classes, modified)
        return {
            "orgs": orgs,
            "academic_sessions": sessions,
            "courses": courses,
            "classes": classes,
            "users": users,
            "enrollments": enrollments,
            "demographics": demographics,
        }

    def _orgs(self, modified: pd.Timestamp) -> pd.DataFrame:
        schools = pd.DataFrame(
            {
                "sourcedId": self.school_ids,
                "name": [
                    f"{lvl.title()} School {i + 1}" for i, lvl in enumerate(self.school_level)
                ],
                "type": "school",
                "identifier": [f"{1000 + i}" for i in range(self.n_schools)],
                "parentSourcedId": self.district_id,
                "childSourcedIds": None,
            }
        )
        district = pd.DataFrame(
            {
                "sourcedId": [self.district_id],
                "name": ["Synthetic Unified School District"],
                "type": ["district"],
                "identifier": ["0001"],
                "parentSourcedId": [None],
                "childSourcedIds": [list(self.school_ids)],
            }
        )
        return pd.concat([district, schools], ignore_index=True).assign(
            status="active", dateLastModified=modified, metadata=None
        )

    def _sections(self) -> pd.DataFrame:
        """(school, grade, slot, sections) for every course offered."""
        counts = self._school_grade_counts()
        rows = []
        for school, grade, n in counts.itertuples(index=False):
            level = self.school_level[school]
            for slot, subject in enumerate(SUBJECTS[level]):
                rows.append((school, grade, slot, subject, max(1, -(-int(n) // CLASS_SIZE))))
        return pd.DataFrame(rows, columns=["school", "grade", "slot", "subject", "sections"])

    def _courses_and_classes(
        self, cal: Calendar, modified: pd.Timestamp
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        offer = self._sections()
        y = cal.year
        offer["school_id"] = self.school_ids[offer["school"]]
        offer["course_id"] = (
            "crs-"
            + str(y)
            + "-"
            + offer["school_id"].str[4:]
            + "-"
            + offer["grade"]
            + "-"
            + offer["slot"].astype(str)
        )
        courses = pd.DataFrame(
            {
                "sourcedId": offer["course_id"],
                "status": "active",
                "dateLastModified": modified,
                "title": offer["subject"] + " " + offer["grade"],
                "schoolYearSourcedId": f"sy-{y}",
                "courseCode": offer["subject"].str[:4].str.upper() + "-" + offer["grade"],
                "grades": offer["grade"].map(lambda g: [g]),
                "subjects": offer["subject"].map(lambda s: [s]),
                "orgSourcedId": offer["school_id"],
                "subjectCodes": None,
                "metadata": None,
            }
        )
        parts = []
        for t, (term_id, _, _) in enumerate(cal.terms):
            rep = offer.loc[offer.index.repeat(offer["sections"])].copy()
            rep["section"] = rep.groupby(level=0).cumcount()
            rep["term_id"] = term_id
            rep["t"] = t
            parts.append(rep)
        cls = pd.concat(parts, ignore_index=True)
        cls["class_id"] = (
            "cls-"
            + cls["course_id"].str[4:]
            + "-"
            + (cls["t"] + 1).astype(str)
            + "-"
            + cls["section"].astype(str)
        )
        # Teachers: each school's classes dealt round-robin to its teachers.
        cls["teacher_no"] = cls.groupby("school").cumcount() % cls["school"].map(
            self._teachers_per_school()
        )
        cls["teacher_id"] = (
            "tch-" + cls["school_id"].str[4:] + "-" + cls["teacher_no"].astype(str).str.zfill(3)
        )
        classes = pd.DataFrame(
            {
                "sourcedId": cls["class_id"],
                "status": "active",
                "dateLastModified": modified,
                "title": cls["subject"]
                + " "
                + cls["grade"]
                + " ("
                + (cls["section"] + 1).astype(str)
                + ")",
                "classCode": cls["subject"].str[:4].str.upper()
                + "-"
                + cls["grade"]
                + "-"
                + (cls["section"] + 1).astype(str),
                "classType": np.where(cls["subject"] == "Homeroom", "homeroom", "scheduled"),
                "location": "Room " + (100 + cls["section"] + 10 * cls["slot"]).astype(str),
                "grades": cls["grade"].map(lambda g: [g]),
                "subjects": cls["subject"].map(lambda s: [s]),
                "courseSourcedId": cls["course_id"],
                "schoolSourcedId": cls["school_id"],
                "termSourcedIds": cls["term_id"].map(lambda t: [t]),
                "subjectCodes": None,
                "periods": (cls["slot"] + 1).astype(str).map(lambda p: [p]),
                "metadata": None,
            }
        )
        classes.attrs["teacher"] = cls["teacher_id"].to_numpy()
        return courses, classes

    @lru_cache(maxsize=1)  # noqa: B019
    def _teachers_per_school(self) -> pd.Series:
        per_school = np.bincount(self.stu_school, minlength=self.n_schools)
        return pd.Series(np.maximum(1, -(-per_school // STUDENTS_PER_TEACHER)))

    def _users(
        self, night: date, day: int, modified: pd.Timestamp
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        here = self.present(night)
        idx = np.flatnonzero(here)
        renamed = self.rename_day[idx] <= day
        family = np.where(
            renamed, np.char.add(self.family[idx].astype(str), "-Rivera"), self.family[idx]
        )
        given = self.given[idx]
        sid = self.stu_ids[idx]
        gid = np.char.replace(sid.astype(str), "stu-", "gdn-")
        schools = self.school_ids[self.stu_school[idx]]
        renamed_at = pd.Timestamp(EPOCH, tz="UTC") + pd.to_timedelta(
            np.minimum(self.rename_day[idx], day), unit="D"
        )
        stu_modified = pd.Series(renamed_at).where(renamed, modified).to_numpy()
        username = np.char.lower(
            np.char.add(
                np.char.add(given.astype(str), "."),
                np.char.add(np.char.replace(family.astype(str), "-", ""), idx.astype(str)),
            )
        )
        students = pd.DataFrame(
            {
                "sourcedId": sid,
                "status": "active",
                "dateLastModified": stu_modified,
                "enabledUser": True,
                "username": username,
                "userIds": [
                    f'[{{"type":"studentNumber","identifier":"{900000 + i}"}}]' for i in idx
                ],
                "givenName": given,
                "familyName": family,
                "middleName": None,
                "role": "student",
                "orgSourcedIds": [[s] for s in schools],
                "identifier": (900000 + idx).astype(str),
                "email": np.char.add(username, "@students.example.org"),
                "agentSourcedIds": [[g] for g in gid],
                "grades": [[g] for g in self.stu_grade[idx]],
            }
        )
        guardians = pd.DataFrame(
            {
                "sourcedId": gid,
                "status": "active",
                "dateLastModified": modified,
                "enabledUser": True,
                "username": np.char.add("parent.", username),
                "userIds": None,
                "givenName": "Parent",
                "familyName": family,
                "middleName": None,
                "role": "guardian",
                "orgSourcedIds": [[s] for s in schools],
                "identifier": None,
                "email": np.char.add(np.char.add("parent.", username), "@example.net"),
                "agentSourcedIds": [[s] for s in sid],
                "grades": None,
            }
        )
        per_school = self._teachers_per_school()
        t_school = np.repeat(np.arange(self.n_schools), per_school.to_numpy())
        t_no = np.concatenate([np.arange(k) for k in per_school.to_numpy()])
        t_ids = np.array([f"tch-{s + 1:04d}-{k:03d}" for s, k in zip(t_school, t_no, strict=True)])
        t_given = GIVEN[(t_school * 7 + t_no) % len(GIVEN)]
        t_family = FAMILY[(t_school * 3 + t_no * 5) % len(FAMILY)]
        t_user = np.char.lower(
            np.char.add(
                np.char.add(t_given.astype(str), "."),
                np.char.add(t_family.astype(str), np.char.replace(t_ids.astype(str), "tch-", "")),
            )
        )
        teachers = pd.DataFrame(
            {
                "sourcedId": t_ids,
                "status": "active",
                "dateLastModified": modified,
                "enabledUser": True,
                "username": t_user,
                "userIds": None,
                "givenName": t_given,
                "familyName": t_family,
                "middleName": None,
                "role": "teacher",
                "orgSourcedIds": [[s] for s in self.school_ids[t_school]],
                "identifier": np.char.replace(t_ids.astype(str), "tch-", "T"),
                "email": np.char.add(t_user, "@staff.example.org"),
                "agentSourcedIds": None,
                "grades": None,
            }
        )
        admins = pd.DataFrame(
            {
                "sourcedId": [f"adm-{i + 1:04d}" for i in range(self.n_schools)],
                "status": "active",
                "dateLastModified": modified,
                "enabledUser": True,
                "username": [f"principal{i + 1}" for i in range(self.n_schools)],
                "userIds": None,
                "givenName": "Pat",
                "familyName": [f"Principal{i + 1}" for i in range(self.n_schools)],
                "middleName": None,
                "role": "administrator",
                "orgSourcedIds": [[s] for s in self.school_ids],
                "identifier": None,
                "email": [f"principal{i + 1}@staff.example.org" for i in range(self.n_schools)],
                "agentSourcedIds": None,
                "grades": None,
            }
        )
        users = pd.concat([students, teachers, admins, guardians], ignore_index=True)
        for col in (
            "preferredFirstName",
            "preferredMiddleName",
            "preferredLastName",
            "pronouns",
            "roles",
            "primaryOrgSourcedId",
            "userMasterIdentifier",
            "sms",
            "phone",
            "metadata",
            "userProfiles",
        ):
            users[col] = None
        users["primaryOrgSourcedId"] = users["orgSourcedIds"].str[0]
        y = school_year_of(night)
        grade_age = {
            g: 5 + i
            for i, g in enumerate(
                ["KG", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12"]
            )
        }
        age = pd.Series(self.stu_grade[idx]).map(grade_age).to_numpy()
        birth = pd.to_datetime([f"{y - a}-09-01" for a in age]) - pd.to_timedelta(
            self.birth_offset[idx], unit="D"
        )
        race = self.race[idx]
        demographics = pd.DataFrame(
            {
                "sourcedId": sid,
                "status": "active",
                "dateLastModified": modified,
                "birthDate": birth.date,
                "sex": self.sex[idx],
                "americanIndianOrAlaskaNative": race == 0,
                "asian": race == 1,
                "blackOrAfricanAmerican": race == 2,
                "nativeHawaiianOrOtherPacificIslander": False,
                "white": race == 3,
                "demographicRaceTwoOrMoreRaces": race == 4,
                "hispanicOrLatinoEthnicity": self.hispanic[idx],
                "countryOfBirthCode": "US",
                "stateOfBirthAbbreviation": None,
                "cityOfBirth": None,
                "publicSchoolResidenceStatus": None,
                "metadata": None,
            }
        )
        return users, demographics

    def _enrollments(
        self, cal: Calendar, night: date, day: int, classes: pd.DataFrame, modified: pd.Timestamp
    ) -> pd.DataFrame:
        here = np.flatnonzero(self.present(night))
        offer = self._sections().set_index(["school", "grade", "slot"])["sections"]
        parts = []
        y = cal.year
        for t, (_term_id, start, end) in enumerate(cal.terms):
            for slot in range(max(s for _, s in LEVELS.values())):
                school = self.stu_school[here]
                grade = self.stu_grade[here]
                key = pd.MultiIndex.from_arrays([school, grade, np.full(len(here), slot)])
                sections = offer.reindex(key).to_numpy()
                has = ~np.isnan(sections)
                if not has.any():
                    continue
                i = here[has]
                changed = self.change_day[i, slot] <= day
                section = (self.section_salt[i, slot] + changed * 7919 + t * 31) % sections[
                    has
                ].astype(int)
                class_id = (
                    "cls-"
                    + str(y)
                    + "-"
                    + pd.Series(self.school_ids[self.stu_school[i]]).str[4:]
                    + "-"
                    + pd.Series(self.stu_grade[i])
                    + "-"
                    + str(slot)
                    + "-"
                    + str(t + 1)
                    + "-"
                    + pd.Series(section).astype(str)
                )
                first_day = np.maximum(self.arrive[i], (start - EPOCH).days)
                begin_date = (pd.Timestamp(EPOCH) + pd.to_timedelta(first_day, unit="D")).date
                parts.append(
                    pd.DataFrame(
                        {
                            "userSourcedId": self.stu_ids[i],
                            "classSourcedId": class_id.to_numpy(),
                            "schoolSourcedId": self.school_ids[self.stu_school[i]],
                            "beginDate": begin_date,
                            "endDate": end,
                            "dateLastModified": pd.Series(
                                pd.Timestamp(night, tz="UTC"), index=range(len(i))
                            )
                            .where(changed, modified)
                            .to_numpy(),
                        }
                    )
                )
        students = pd.concat(parts, ignore_index=True)
        students["role"] = "student"
        students["primary"] = False
        teachers = pd.DataFrame(
            {
                "userSourcedId": classes.attrs["teacher"],
                "classSourcedId": classes["sourcedId"].to_numpy(),
                "schoolSourcedId": classes["schoolSourcedId"].to_numpy(),
                "beginDate": classes["termSourcedIds"]
                .str[0]
                .map({t: b for t, b, _ in cal.terms})
                .to_numpy(),
                "endDate": classes["termSourcedIds"]
                .str[0]
                .map({t: e for t, _, e in cal.terms})
                .to_numpy(),
                "dateLastModified": modified,
                "role": "teacher",
                "primary": True,
            }
        )
        out = pd.concat([teachers, students], ignore_index=True)
        out.insert(
            0,
            "sourcedId",
            "enr-" + out["userSourcedId"].str[4:] + "-" + out["classSourcedId"].str[4:],
        )
        out.insert(1, "status", "active")
        out["metadata"] = None
        return out
