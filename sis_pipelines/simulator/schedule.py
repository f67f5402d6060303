"""The district's schedule: courses and classes each school offers, and who sits in them."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .calendar import EPOCH, Calendar
from .population import CLASS_SIZE, LEVELS, SUBJECTS

if TYPE_CHECKING:
    from .district import District


def sections(d: District, year: int) -> pd.DataFrame:
    """(school, grade, slot, sections) for every course offered in a school year."""
    counts = d.school_grade_counts(year)
    rows = []
    for school, grade, n in counts.itertuples(index=False):
        level = d.school_level[school]
        for slot, subject in enumerate(SUBJECTS[level]):
            rows.append((school, grade, slot, subject, max(1, -(-int(n) // CLASS_SIZE))))
    return pd.DataFrame(rows, columns=["school", "grade", "slot", "subject", "sections"])


def courses_and_classes(
    d: District, cal: Calendar, modified: pd.Timestamp
) -> tuple[pd.DataFrame, pd.DataFrame]:
    y = cal.year
    offer = sections(d, y)
    offer["school_id"] = d.school_ids[offer["school"]]
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
    # Teachers: each school's classes dealt round-robin to the teachers there this year.
    staff = d.teachers(y).sort_values(["school", "home", "number"], kind="stable")
    count = np.bincount(staff["school"], minlength=d.n_schools)
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    school = cls["school"].to_numpy()
    dealt = start[school] + cls.groupby("school").cumcount().to_numpy() % count[school]
    cls["teacher_id"] = staff["teacher_id"].to_numpy()[dealt]
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


def enrollments(
    d: District, cal: Calendar, night: date, day: int, classes: pd.DataFrame, modified: pd.Timestamp
) -> pd.DataFrame:
    here = np.flatnonzero(d.present(night))
    y = cal.year
    offer = sections(d, y).set_index(["school", "grade", "slot"])["sections"]
    school_of, grade_of = d.school_in(y), d.grade_in(y)
    parts = []
    for t, (_term_id, start, end) in enumerate(cal.terms):
        for slot in range(max(s for _, s in LEVELS.values())):
            school = school_of[here]
            grade = grade_of[here]
            key = pd.MultiIndex.from_arrays([school, grade, np.full(len(here), slot)])
            n_sections = offer.reindex(key).to_numpy()
            has = ~np.isnan(n_sections)
            if not has.any():
                continue
            i = here[has]
            changed = d.change_day[i, slot] <= day
            section = (d.section_salt[i, slot] + changed * 7919 + t * 31) % n_sections[has].astype(
                int
            )
            class_id = (
                "cls-"
                + str(y)
                + "-"
                + pd.Series(d.school_ids[school_of[i]]).str[4:]
                + "-"
                + pd.Series(grade_of[i])
                + "-"
                + str(slot)
                + "-"
                + str(t + 1)
                + "-"
                + pd.Series(section).astype(str)
            )
            first_day = np.maximum(d.arrive[i], (start - EPOCH).days)
            begin_date = (pd.Timestamp(EPOCH) + pd.to_timedelta(first_day, unit="D")).date
            parts.append(
                pd.DataFrame(
                    {
                        "userSourcedId": d.stu_ids[i],
                        "classSourcedId": class_id.to_numpy(),
                        "schoolSourcedId": d.school_ids[school_of[i]],
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
