"""A night of a synthetic district as a OneRoster 1.1 CSV bundle (zip with manifest.csv)."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

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


def _texts(series: pd.Series, column: str) -> pa.Array:
    """A column's cells as CSV text, as ``_cell`` writes them: in bulk where the column's
    type allows (a district's ten million enrollments), value by value where it does not."""
    if column == "userIds":
        return pa.array([_user_ids(v) for v in series.tolist()], pa.string())
    if isinstance(series.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(series):
        texts = series.dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + "Z"
        return pa.array(texts.where(series.notna(), ""), pa.string())
    if pd.api.types.is_bool_dtype(series):
        return pa.array(np.where(series.to_numpy(bool), "true", "false"), pa.string())
    values = series.to_numpy(object)
    plain = [v for v in values[:1000] if isinstance(v, str | date) and not isinstance(v, bool)]
    if len(plain) == sum(v is not None and not _missing(v) for v in values[:1000]):
        # Text and dates only (str(date) is its ISO form): converted by pandas in one pass.
        texts = pd.Series(values, dtype=object).astype(str)
        return pa.array(texts.where(~pd.isna(values), ""), pa.string())
    return pa.array([_cell(v) for v in values], pa.string())


def _missing(value: object) -> bool:
    return not isinstance(value, list | tuple) and bool(pd.isna(value))


_NEEDS_QUOTES = '[",\r\n]'


def _csv(table: pa.Table) -> bytes:
    """Rows as csv.writer writes them (minimal quoting, CRLF), every step an Arrow kernel."""
    cells = []
    for text in table.columns:
        quoted = pc.binary_join_element_wise('"', pc.replace_substring(text, '"', '""'), '"', "")
        cells.append(pc.if_else(pc.match_substring_regex(text, _NEEDS_QUOTES), quoted, text))
    lines = pc.binary_join_element_wise(*cells, ",") if cells else pa.array([], pa.string())
    lines = pc.binary_join_element_wise(lines, "\r\n", "").combine_chunks()
    if not len(lines):
        return b""
    offsets = np.frombuffer(lines.buffers()[1], np.int32)[
        lines.offset : lines.offset + len(lines) + 1
    ]
    return lines.buffers()[2].to_pybytes()[offsets[0] : offsets[-1]]


SLICE_ROWS = 1 << 20


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
            csv.writer(buffer, lineterminator="\r\n").writerow(header)
            # A slice at a time: an xl district's enrollments are a gigabyte of text.
            with bundle.open(filename, "w", force_zip64=True) as member:
                member.write(buffer.getvalue().encode())
                for start in range(0, len(frame), SLICE_ROWS):
                    part = frame.iloc[start : start + SLICE_ROWS]
                    columns = {
                        c: _texts(part[c], c)
                        if c in part.columns
                        else pa.nulls(len(part), pa.string())
                        for c in header
                    }
                    member.write(
                        _csv(pa.table({c: pc.fill_null(t, "") for c, t in columns.items()}))
                    )
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
