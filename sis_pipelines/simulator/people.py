"""The district's people: students, their guardians, teachers and principals, and the
students' demographics."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .calendar import EPOCH, school_year_of
from .population import FAMILY, GIVEN

if TYPE_CHECKING:
    from .district import District


def orgs(d: District, modified: pd.Timestamp) -> pd.DataFrame:
    schools = pd.DataFrame(
        {
            "sourcedId": d.school_ids,
            "name": [f"{lvl.title()} School {i + 1}" for i, lvl in enumerate(d.school_level)],
            "type": "school",
            "identifier": [f"{1000 + i}" for i in range(d.n_schools)],
            "parentSourcedId": d.district_id,
            "childSourcedIds": None,
        }
    )
    district = pd.DataFrame(
        {
            "sourcedId": [d.district_id],
            "name": ["Synthetic Unified School District"],
            "type": ["district"],
            "identifier": ["0001"],
            "parentSourcedId": [None],
            "childSourcedIds": [list(d.school_ids)],
        }
    )
    return pd.concat([district, schools], ignore_index=True).assign(
        status="active", dateLastModified=modified, metadata=None
    )


def users_and_demographics(
    d: District, night: date, day: int, modified: pd.Timestamp
) -> tuple[pd.DataFrame, pd.DataFrame]:
    here = d.present(night)
    idx = np.flatnonzero(here)
    y = school_year_of(night)
    grade_now = d.grade_in(y)[idx]
    renamed = d.rename_day[idx] <= day
    family = np.where(renamed, np.char.add(d.family[idx].astype(str), "-Rivera"), d.family[idx])
    given = d.given[idx]
    sid = d.stu_ids[idx]
    gid = np.char.replace(sid.astype(str), "stu-", "gdn-")
    schools = d.school_ids[d.school_in(y)[idx]]
    renamed_at = pd.Timestamp(EPOCH, tz="UTC") + pd.to_timedelta(
        np.minimum(d.rename_day[idx], day), unit="D"
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
            "userIds": [f'[{{"type":"studentNumber","identifier":"{900000 + i}"}}]' for i in idx],
            "givenName": given,
            "familyName": family,
            "middleName": None,
            "role": "student",
            "orgSourcedIds": [[s] for s in schools],
            "identifier": (900000 + idx).astype(str),
            "email": np.char.add(username, "@students.example.org"),
            "agentSourcedIds": [[g] for g in gid],
            "grades": [[g] for g in grade_now],
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
    # Names follow the teacher (home school and number), the school the year's placement.
    staff = d.teachers(y)
    t_school, t_no = staff["home"].to_numpy(), staff["number"].to_numpy()
    t_ids = staff["teacher_id"].to_numpy()
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
            "orgSourcedIds": [[s] for s in d.school_ids[staff["school"].to_numpy()]],
            "identifier": np.char.replace(t_ids.astype(str), "tch-", "T"),
            "email": np.char.add(t_user, "@staff.example.org"),
            "agentSourcedIds": None,
            "grades": None,
        }
    )
    admins = pd.DataFrame(
        {
            "sourcedId": [f"adm-{i + 1:04d}" for i in range(d.n_schools)],
            "status": "active",
            "dateLastModified": modified,
            "enabledUser": True,
            "username": [f"principal{i + 1}" for i in range(d.n_schools)],
            "userIds": None,
            "givenName": "Pat",
            "familyName": [f"Principal{i + 1}" for i in range(d.n_schools)],
            "middleName": None,
            "role": "administrator",
            "orgSourcedIds": [[s] for s in d.school_ids],
            "identifier": None,
            "email": [f"principal{i + 1}@staff.example.org" for i in range(d.n_schools)],
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
    grade_age = {
        g: 5 + i
        for i, g in enumerate(
            ["KG", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12"]
        )
    }
    age = pd.Series(grade_now).map(grade_age).to_numpy()
    birth = pd.to_datetime([f"{y - a}-09-01" for a in age]) - pd.to_timedelta(
        d.birth_offset[idx], unit="D"
    )
    race = d.race[idx]
    demographics = pd.DataFrame(
        {
            "sourcedId": sid,
            "status": "active",
            "dateLastModified": modified,
            "birthDate": birth.date,
            "sex": d.sex[idx],
            "americanIndianOrAlaskaNative": race == 0,
            "asian": race == 1,
            "blackOrAfricanAmerican": race == 2,
            "nativeHawaiianOrOtherPacificIslander": False,
            "white": race == 3,
            "demographicRaceTwoOrMoreRaces": race == 4,
            "hispanicOrLatinoEthnicity": d.hispanic[idx],
            "countryOfBirthCode": "US",
            "stateOfBirthAbbreviation": None,
            "cityOfBirth": None,
            "publicSchoolResidenceStatus": None,
            "metadata": None,
        }
    )
    return users, demographics
