"""Instructure's CSV Gateway: a district without a OneRoster API drops Canvas-format SIS CSV
files each night (a zip or a folder per night, locally or on SFTP). Each file is classified by
its header as Canvas's importer does, its rows checked by the importer's column rules, and
the usable rows become the night's Canvas files, which flow through the same delta, guard,
package, upload and tracking as a OneRoster tenant's mapping.

A row is rejected only when Canvas would refuse it (a required cell empty, a status or date it
does not take, a second row with the same key); it is kept with its file, line, column and
reason. A file the drop leaves out stays as the last night had it: only what a drop holds
changes, as with Canvas's own importer.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
import pandas as pd

from ..core.figures import Figures, Markdown
from ..core.lake import CANVAS_MAPPING, Lake
from ..core.storage import write_frame
from ..core.tenant_night import TenantNight
from ..oneroster.csv_bundle import MAX_DROP_BYTES, BundleError, folder_members, zip_members
from ..oneroster.csv_source import locate_drop
from ..oneroster.shown import MAX_SHOWN
from .compare import read_whole
from .conversion import renamed_files, renames
from .files import FILES, ORDER, WHOLE, ZIP_ORDER
from .package import CONTROL, identify
from .provision import write_canvas_file

if TYPE_CHECKING:
    from ..services.connect import Services

REJECT_COLUMNS = ["file", "line", "column", "reason", "row"]


@dataclass
class CanvasDrop:
    """The CSV files of one night's drop, by file name."""

    source: str
    files: Mapping[str, bytes] = field(default_factory=dict)  # a zip's inflated when read


def load_drop(
    path: Path | str, data: bytes | BinaryIO | None = None, max_bytes: int = MAX_DROP_BYTES
) -> CanvasDrop:
    """A zip (or its bytes), or a folder holding the CSV files."""
    source = str(path)
    drop = CanvasDrop(source)
    if data is not None or Path(path).is_file():
        drop.files = zip_members(path, data, max_bytes)
    elif Path(path).is_dir():
        drop.files = folder_members(path, max_bytes)
    else:
        raise BundleError(f"{source}: no such drop")
    if not drop.files:
        raise BundleError(f"{source}: no CSV file in the drop")
    return drop


@dataclass
class ReadDrop:
    files: dict[str, pd.DataFrame]  # Canvas file kind -> its usable rows (FILES columns)
    rejected: pd.DataFrame  # file, line, column, reason, row
    sources: dict[str, str]  # kind -> the drop's file name(s)


def read_drop(drop: CanvasDrop) -> ReadDrop:
    """Each file classified by its header, its rows checked by the importer's rules."""
    files: dict[str, list[pd.DataFrame]] = {}
    sources: dict[str, list[str]] = {}
    rejects = []
    for name, data in sorted(drop.files.items()):
        frame = _csv(name, data)
        kind = identify(list(frame.columns))
        if kind is None:
            raise BundleError(
                f"{drop.source}: {name}: header {', '.join(frame.columns)} is not one a Canvas "
                f"SIS importer takes ({', '.join(ZIP_ORDER)}); take the file out of the drop"
            )
        good, bad = _checked(name, kind, frame)
        files.setdefault(kind, []).append(good)
        sources.setdefault(kind, []).append(name)
        rejects.append(bad)
    merged = {}
    for kind, parts in files.items():
        frame = pd.concat(parts, ignore_index=True)
        frame, dup = _first_of_key(kind, frame)
        merged[kind] = frame.drop(columns=["_file", "_line"])
        rejects.append(dup)
    rejected = pd.concat(rejects, ignore_index=True) if rejects else _rejects()
    return ReadDrop(merged, rejected, {k: ", ".join(v) for k, v in sources.items()})


def _csv(name: str, data: bytes) -> pd.DataFrame:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252")  # exports from Windows tools
    frame = pd.read_csv(
        io.StringIO(text), dtype=str, keep_default_na=False, na_filter=False, skipinitialspace=True
    )
    frame.columns = [str(c).strip().lower() for c in frame.columns]  # as Canvas reads it
    return frame


def _rejects(rows: list[dict] | None = None) -> pd.DataFrame:
    return pd.DataFrame(rows or [], columns=REJECT_COLUMNS).astype(
        {"file": "string", "line": "Int64", "column": "string", "reason": "string", "row": "string"}
    )


def _checked(name: str, kind: str, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows Canvas would take, in FILES' columns; the others with file, line and column."""
    spec = FILES[kind]
    lines = pd.Series(np.arange(len(frame)) + 2, index=frame.index)  # the header is line 1
    out = pd.DataFrame(index=frame.index)
    # Every documented column the file has is kept; one it lacks is left out (not an empty
    # cell: Canvas keeps what it holds for a column a file does not have).
    needed = {*spec.key, *spec.required, *(c for g in spec.one_of for c in g)}
    needed |= {"status"} if spec.statuses else set()
    for column in spec.columns:
        if column in frame or column in needed:
            out[column] = frame[column].str.strip() if column in frame else ""
    reason = pd.Series("", index=frame.index, dtype=object)
    column_of = pd.Series("", index=frame.index, dtype=object)

    def fail(mask: pd.Series, column: str, why: pd.Series | str) -> None:
        new = mask & (reason == "")
        reason[new] = why[new] if isinstance(why, pd.Series) else why
        column_of[new] = column

    for column in out.columns:
        # A drop's row goes to Canvas as written: a control character (a NUL in a user_id, a
        # bare carriage return in a name) is refused with the row, never passed on.
        held = out[column].str.contains(CONTROL.pattern, regex=True)
        fail(held, column, f"{column} holds a control character (NUL, CR, LF, tab…)")
    for column in spec.required:
        fail(out[column] == "", column, f"{column} is required")
    for group in spec.one_of:
        fail(
            (out[list(group)] == "").all(axis=1), group[0], f"one of {', '.join(group)} is required"
        )
    for column, allowed in spec.choices:
        fail(
            ~out[column].isin(allowed),
            column,
            f'{column} "'
            + out[column]
            + '" is not one Canvas takes ('
            + ", ".join(sorted(allowed))
            + ")",
        )
    if spec.statuses:
        status = out["status"]
        fail(
            ~status.isin(spec.statuses),
            "status",
            'Improper status "' + status + '" (takes ' + ", ".join(sorted(spec.statuses)) + ")",
        )
    for column in (c for c in spec.dates if c in out):
        value = out[column]
        parsed = pd.to_datetime(
            value.where(value != ""), errors="coerce", utc=True, format="ISO8601"
        )
        shaped = value.str.match(r"^\d{4}-\d{2}-\d{2}")
        fail(
            (value != "") & (parsed.isna() | ~shaped),
            column,
            column + " '" + value.str.slice(0, MAX_SHOWN) + "' is not ISO 8601",
        )
    bad = reason != ""
    rejected = _rejects(
        [
            {
                "file": name,
                "line": int(lines[i]),
                "column": column_of[i],
                "reason": reason[i],
                "row": ",".join(frame.loc[i].astype(str)),
            }
            for i in frame.index[bad]
        ]
    )
    good = out[~bad].copy()
    good["_file"], good["_line"] = name, lines[~bad]
    return good, rejected


def _first_of_key(kind: str, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A second row with a key already seen is rejected, naming the first."""
    key = list(FILES[kind].key)
    dup = frame.duplicated(key, keep="first")
    if not dup.any():
        return frame, _rejects()
    first = frame[~dup].set_index(key)[["_file", "_line"]]
    seen = frame[dup].join(first, on=key, rsuffix="_first")
    rejected = _rejects(
        [
            {
                "file": r["_file"],
                "line": int(r["_line"]),
                "column": ",".join(key),
                "reason": f"a second {kind} row for {'/'.join(str(r[k]) for k in key)} "
                f"(the first is {r['_file_first']} line {int(r['_line_first'])}); Canvas would take only one",
                "row": ",".join(str(r[c]) for c in FILES[kind].columns if c in r),
            }
            for r in seen.to_dict("records")
        ]
    )
    return frame[~dup], rejected


def gateway_night(lake: Lake, services: Services, tn: TenantNight) -> Figures:
    """The night's drop as the night's Canvas files (and its rejected rows); a file the drop
    leaves out is the previous night's."""
    tenant_id, tenant, night = tn.id, tn.tenant, tn.night
    cfg = tenant.canvas_csv
    assert cfg is not None
    located = locate_drop(tenant_id, cfg, night, load_drop, services.env)
    drop = read_drop(located.bundle)
    earlier = [n for n in lake.stored_nights(CANVAS_MAPPING, "users", tenant_id) if n < str(night)]
    carried = []
    by_type = renames(drop.files.get("change_sis_id"))
    for kind in WHOLE:  # sent the night they come, never carried to the next
        path = lake.canvas_file(kind, night, tenant_id)
        if kind in drop.files:
            write_canvas_file(kind, drop.files[kind].reset_index(drop=True), path)
        elif path.exists():
            path.unlink()
    for kind in ORDER:
        path = lake.canvas_file(kind, night, tenant_id)
        if kind in drop.files:
            write_canvas_file(kind, drop.files[kind].reset_index(drop=True), path)
        elif earlier and lake.canvas_file(kind, earlier[-1], tenant_id).exists():
            last = read_whole(lake.canvas_file(kind, earlier[-1], tenant_id))
            # Renamed by tonight's change_sis_id like everything Canvas holds.
            write_canvas_file(kind, renamed_files({kind: last}, by_type)[kind], path)
            carried.append(kind)
        elif path.exists():
            path.unlink()  # a re-run of the night: nothing stale stays
    write_frame(drop.rejected, lake.gateway_rejects(night, tenant_id))
    figures: Figures = {
        "drop": located.name,
        "drop_sha256": located.sha256,
        **{f"{kind}_rows": len(frame) for kind, frame in drop.files.items()},
        "rejected_rows": len(drop.rejected),
        "files": Markdown(
            "| Canvas file | from the drop's |\n|---|---|\n"
            + "\n".join(
                f"| {k} | {drop.sources[k]}{' (sent whole, as Canvas takes it)' if k in WHOLE else ''} |"
                for k in ZIP_ORDER
                if k in drop.sources
            )
            + "".join(f"\n| {k} | (not in the drop: last night's, unchanged) |" for k in carried)
        ),
    }
    if len(drop.rejected):
        figures["rejected"] = Markdown(
            "| file | line | column | reason |\n|---|---|---|---|\n"
            + "\n".join(
                f"| {r.file} | {r.line} | {r.column} | {r.reason} |"
                for r in drop.rejected.head(50).itertuples()
            )
        )
    return figures
