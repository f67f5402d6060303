"""A night of a synthetic district as a OneRoster 1.1 CSV bundle (zip with manifest.csv)."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import date
from pathlib import Path

import pandas as pd

from .district import District

# OneRoster 1.1 CSV files and their headers (the canonical columns are CSV binding names).
CSV_FILES: dict[str, tuple[str, list[str]]] = {
    "orgs": (
        "orgs.csv",
        [
            "sourcedId",
            "status",
            "dateLastModified",
            "name",
            "type",
            "identifier",
            "parentSourcedId",
        ],
    ),
    "academic_sessions": (
        "academicSessions.csv",
        [
            "sourcedId",
            "status",
            "dateLastModified",
            "title",
            "type",
            "startDate",
            "endDate",
            "parentSourcedId",
            "schoolYear",
        ],
    ),
    "courses": (
        "courses.csv",
        [
            "sourcedId",
            "status",
            "dateLastModified",
            "schoolYearSourcedId",
            "title",
            "courseCode",
            "grades",
            "orgSourcedId",
            "subjects",
            "subjectCodes",
        ],
    ),
    "classes": (
        "classes.csv",
        [
            "sourcedId",
            "status",
            "dateLastModified",
            "title",
            "grades",
            "courseSourcedId",
            "classCode",
            "classType",
            "location",
            "schoolSourcedId",
            "termSourcedIds",
            "subjects",
            "subjectCodes",
            "periods",
        ],
    ),
    "users": (
        "users.csv",
        [
            "sourcedId",
            "status",
            "dateLastModified",
            "enabledUser",
            "orgSourcedIds",
            "role",
            "username",
            "userIds",
            "givenName",
            "familyName",
            "middleName",
            "identifier",
            "email",
            "sms",
            "phone",
            "agentSourcedIds",
            "grades",
            "password",
        ],
    ),
    "enrollments": (
        "enrollments.csv",
        [
            "sourcedId",
            "status",
            "dateLastModified",
            "classSourcedId",
            "schoolSourcedId",
            "userSourcedId",
            "role",
            "primary",
            "beginDate",
            "endDate",
        ],
    ),
    "demographics": (
        "demographics.csv",
        [
            "sourcedId",
            "status",
            "dateLastModified",
            "birthDate",
            "sex",
            "americanIndianOrAlaskaNative",
            "asian",
            "blackOrAfricanAmerican",
            "nativeHawaiianOrOtherPacificIslander",
            "white",
            "demographicRaceTwoOrMoreRaces",
            "hispanicOrLatinoEthnicity",
            "countryOfBirthCode",
            "stateOfBirthAbbreviation",
            "cityOfBirth",
            "publicSchoolResidenceStatus",
        ],
    ),
}


def _cell(value: object) -> str:
    if value is None or (not isinstance(value, list | tuple) and pd.isna(value)):
        return ""
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _user_ids(value: object) -> str:
    import orjson

    if not isinstance(value, str):
        return ""
    return ",".join(f"{{{u['type']}:{u['identifier']}}}" for u in orjson.loads(value))


def export_bundle(district: District, night: date, out: Path) -> Path:
    """Write ``oneroster-<night>.zip`` into ``out`` and return its path."""
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"oneroster-{night.isoformat()}.zip"
    snapshot = district.snapshot(night)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        manifest = [("manifest.version", "1.0"), ("oneroster.version", "1.1")]
        for name, (filename, header) in CSV_FILES.items():
            frame = snapshot[name]
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\r\n")
            writer.writerow(header)
            columns = [
                frame[c].tolist() if c in frame.columns else [None] * len(frame) for c in header
            ]
            user_ids = header.index("userIds") if "userIds" in header else None
            for row in zip(*columns, strict=True):
                cells = [_cell(v) for v in row]
                if user_ids is not None:
                    cells[user_ids] = _user_ids(row[user_ids])
                writer.writerow(cells)
            bundle.writestr(filename, buffer.getvalue())
            manifest.append((f"file.{filename[:-4]}", "bulk"))
        for absent in (
            "categories",
            "classResources",
            "courseResources",
            "lineItems",
            "resources",
            "results",
        ):
            manifest.append((f"file.{absent}", "absent"))
        manifest += [
            ("source.systemName", "sis_pipelines simulator"),
            ("source.systemCode", district.district_id),
        ]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(["propertyName", "value"])
        writer.writerows(manifest)
        bundle.writestr("manifest.csv", buffer.getvalue())
    return target
