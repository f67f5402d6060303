"""OneRoster CSV bundles (1.1 and 1.2): a zip or folder with manifest.csv, read into the same
canonical model as REST, with every refused row kept with file, line, column, value and reason.

Rows become REST-shaped records and go through the same normalisation; tolerated: header
case, CRLF, BOM, quoted lists, dates with or without times, ``metadata.*`` and vendor columns
(kept as metadata). Delta files apply on top of the previous snapshot; absent files keep it.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
import stat
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from ..core.errors import SourceError
from .client import FetchResult
from .collections import Collection, Kind
from .csv_columnar import SECRET_COLUMNS, fields_by_name, file_batches, read_file
from .normalise import Rejects, arrow_schema, normalise_page
from .paging import FetchStats
from .shown import shown

FILE_NAMES = {
    "orgs": "orgs",
    "academic_sessions": "academicSessions",
    "courses": "courses",
    "classes": "classes",
    "users": "users",
    "enrollments": "enrollments",
    "demographics": "demographics",
}
USER_ID = re.compile(r"\{([^:{}]*):([^{}]*)\}")
CHUNK = 50_000
# Rows a file may have where it is read row by row (each held as a record until normalised):
# the largest district's users, twice over.
MAX_ROW_PATH_ROWS = 5_000_000


class BundleError(SourceError, ValueError):
    """A bundle that cannot be read at all (no manifest, OneRoster 1.0, unreadable)."""


@dataclass
class Bundle:
    """The files of one OneRoster CSV bundle, by lower-case name."""

    source: str
    files: Mapping[str, bytes]  # by lower-case name; a zip's are inflated when read
    manifest: dict[str, str] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return self.manifest.get("oneroster.version", "")

    def mode(self, collection: str) -> str:
        """bulk | delta | absent for a collection's file (1.2 users also read roles and profiles)."""
        name = FILE_NAMES[collection]
        mode = self.manifest.get(f"file.{name.lower()}", "").lower()
        if not mode:
            mode = "bulk" if f"{name.lower()}.csv" in self.files else "absent"
        return mode

    def open(self, filename: str) -> BinaryIO:
        """A file of the bundle as a stream (a zip's member inflated as it is read)."""
        if isinstance(self.files, Members | FolderFiles):
            return self.files.open(filename)
        return io.BytesIO(self.files[filename])

    def encoding(self, filename: str) -> str:
        """UTF-16 when the file starts with its byte-order mark (Excel's "Unicode text");
        else UTF-8 (with or without its mark), or, for exports from Windows tools, cp1252
        (Latin-1 where cp1252 leaves a byte undefined): told by one pass over the file."""
        with self.open(filename) as fh:
            if fh.read(2) in UTF16_MARKS:
                return "utf-16"
        for encoding in ("utf-8-sig", "cp1252"):
            if self._decodes(filename, encoding):
                return encoding
        return "latin-1"  # every byte decodes

    def _decodes(self, filename: str, encoding: str) -> bool:
        decoder = codecs.getincrementaldecoder(encoding)()
        with self.open(filename) as fh:
            try:
                while block := fh.read(1 << 24):
                    decoder.decode(block)
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                return False
        return True

    def text(self, name: str) -> str | None:
        data = self.files.get(f"{name.lower()}.csv")
        return None if data is None else decoded(data)


UTF16_MARKS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def decoded(data: bytes) -> str:
    """A small file's text, in the encodings ``Bundle.encoding`` tells apart."""
    if data[:2] in UTF16_MARKS:
        return data.decode("utf-16")
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


# What a drop may inflate to: 20 times the largest real district's export (2 GB of CSV).
MAX_DROP_BYTES = 40_000_000_000
# Real exports compress CSV some ten times; a large member far beyond that is no export.
MAX_RATIO = 200
RATIO_FROM_BYTES = 10_000_000


def refuse_bombs(infos: list[zipfile.ZipInfo], source: str, max_bytes: int) -> None:
    """Refuses, before reading anything, a zip whose files would inflate beyond ``max_bytes``
    or whose large members compress as no real export does."""
    total = sum(i.file_size for i in infos)
    if total > max_bytes:
        raise BundleError(
            f"{source}: its files would inflate to {total / 1e9:.1f} GB, above the tenant's "
            f"max_drop_bytes ({max_bytes / 1e9:.1f} GB); not read, nothing stored for the night"
        )
    for i in infos:
        if i.file_size >= RATIO_FROM_BYTES and i.file_size > MAX_RATIO * max(i.compress_size, 1):
            raise BundleError(
                f"{source}: {i.filename} would inflate {i.file_size / max(i.compress_size, 1):.0f} "
                f"times ({i.compress_size / 1e6:.1f} MB to {i.file_size / 1e6:.0f} MB), which no "
                "real export does; not read, nothing stored for the night"
            )


class Members(Mapping[str, bytes]):
    """A zip's CSV files by file name, each inflated when it is read: a district's drop is
    held compressed (a tenth of its size), and only the file being read is held whole."""

    def __init__(self, source: str, archive: zipfile.ZipFile, members: dict[str, str]) -> None:
        self._source = source
        self._zip = archive  # over the drop's bytes in memory
        self._members = members

    def __getitem__(self, name: str) -> bytes:
        with self._damage_explained(name) as member:
            return self._zip.read(member)

    def open(self, name: str) -> BinaryIO:
        with self._damage_explained(name) as member:
            return self._zip.open(member)

    @contextmanager
    def _damage_explained(self, name: str) -> Iterator[str]:
        """The member's name in the zip; a damaged member becomes one line naming it."""
        member = self._members[name]
        try:
            yield member
        except (zipfile.BadZipFile, zlib.error) as exc:
            raise BundleError(f"{self._source}: {member} is damaged in the zip ({exc})") from None

    def __contains__(self, name: object) -> bool:
        return name in self._members  # (Mapping's own would inflate the file to answer)

    def __iter__(self) -> Iterator[str]:
        return iter(self._members)

    def __len__(self) -> int:
        return len(self._members)

    def lower(self) -> Members:
        """The same files by lower-case name."""
        lowered = {name.lower(): m for name, m in self._members.items()}
        return Members(self._source, self._zip, lowered)


def zip_members(path: Path | str, data: bytes | BinaryIO | None, max_bytes: int) -> Members:
    """The CSV members of a zip (its bytes, or our own copy of it) by file name, once it
    passed ``refuse_bombs``. The zip is read once: every file comes from the same drop, even
    if it is replaced while the night is read."""
    if data is None:
        data = Path(path).read_bytes()
    try:
        archive = zipfile.ZipFile(io.BytesIO(data) if isinstance(data, bytes) else data)
    except zipfile.BadZipFile:
        raise BundleError(f"{path}: not a zip file") from None
    infos = [
        i for i in archive.infolist() if i.filename.lower().endswith(".csv") and not i.is_dir()
    ]
    for i in infos:
        if stat.S_ISLNK(i.external_attr >> 16):
            raise BundleError(
                f"{path}: {i.filename} is a symbolic link, not a file; a drop's files are "
                "read only from the drop itself: refused, nothing stored for the night"
            )
    refuse_bombs(infos, str(path), max_bytes)
    names = one_file_per_name(((Path(i.filename).name, i.filename) for i in infos), str(path))
    return Members(str(path), archive, names)


class FolderFiles(Mapping[str, bytes]):
    """A folder's CSV files by file name, each read when it is asked for (and streamed by
    ``open``): a district's folder drop is gigabytes."""

    def __init__(self, paths: dict[str, Path]) -> None:
        self._paths = paths

    def __getitem__(self, name: str) -> bytes:
        with self.open(name) as fh:
            return fh.read()

    def open(self, name: str) -> BinaryIO:
        return open_in_drop(self._paths[name])

    def __contains__(self, name: object) -> bool:
        return name in self._paths

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)

    def lower(self) -> FolderFiles:
        return FolderFiles({name.lower(): p for name, p in self._paths.items()})


def one_file_per_name(members: Iterable[tuple[str, str]], source: str) -> dict[str, str]:
    """(file name, member) pairs by file name, refusing two members that are one file to a
    reader that does not tell case nor folders apart (``users.csv`` and ``sub/USERS.csv``):
    which one the district meant cannot be told, and taking either loses the other silently."""
    by_name: dict[str, str] = {}
    first: dict[str, str] = {}
    for name, member in members:
        lower = name.lower()
        if lower in first:
            raise BundleError(
                f"{source}: {first[lower]} and {member} are both {lower}; a drop holds each "
                "file once: refused, nothing stored for the night"
            )
        first[lower] = member
        by_name[name] = member
    return by_name


def drop_files(folder: Path | str) -> list[Path]:
    """The CSV files of a drop folder, in name order: regular files of the folder itself.
    A link (to another district's drop, to /etc/passwd) or a device is refused in one line,
    naming it: a district that writes its drop over SFTP can create links there."""
    found = []
    for p in sorted(Path(folder).iterdir()):
        if p.suffix.lower() != ".csv":
            continue
        mode = p.lstat().st_mode
        if not stat.S_ISREG(mode):
            what = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file"
            raise BundleError(
                f"{p}: {what}; a drop's files are read only from the drop itself: refused, "
                "nothing stored for the night"
            )
        found.append(p)
    return found


def open_in_drop(path: Path) -> BinaryIO:
    """A drop's file opened without following a link put in its place since it was listed."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise BundleError(
            f"{path}: cannot be read ({exc.strerror}); nothing stored for the night"
        ) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise BundleError(f"{path}: not a regular file; refused, nothing stored for the night")
    return os.fdopen(fd, "rb")


def folder_members(path: Path | str, max_bytes: int) -> FolderFiles:
    """The CSV files of a folder by file name, refused beyond ``max_bytes`` before reading."""
    found = drop_files(path)
    total = sum(p.stat().st_size for p in found)
    if total > max_bytes:
        raise BundleError(
            f"{path}: its files hold {total / 1e9:.1f} GB, above the tenant's max_drop_bytes "
            f"({max_bytes / 1e9:.1f} GB); not read, nothing stored for the night"
        )
    names = one_file_per_name(((p.name, p.name) for p in found), str(path))
    return FolderFiles({name: Path(path) / name for name in names})


def load_bundle(
    path: Path | str, data: bytes | BinaryIO | None = None, max_bytes: int = MAX_DROP_BYTES
) -> Bundle:
    """A zip file (or its bytes), or a folder holding the CSV files."""
    source = str(path)
    if data is not None or Path(path).is_file():
        files: Mapping[str, bytes] = zip_members(path, data, max_bytes).lower()
    elif Path(path).is_dir():
        files = folder_members(path, max_bytes).lower()
    else:
        raise BundleError(f"{source}: no such bundle")
    if "manifest.csv" not in files:
        raise BundleError(
            f"{source}: no manifest.csv; a OneRoster 1.1/1.2 CSV bundle starts with one (OneRoster 1.0 bundles have none and are not supported)"
        )
    manifest = {}
    for row in csv.reader(io.StringIO(decoded(files["manifest.csv"]))):
        if len(row) >= 2 and row[0].strip() and row[0].strip().lower() != "propertyname":
            manifest[row[0].strip().lower()] = row[1].strip()
    bundle = Bundle(source, files, manifest)
    if bundle.version not in ("1.1", "1.2"):
        raise BundleError(
            f"{source}: manifest says oneroster.version {bundle.version or '(none)'}; only 1.1 and 1.2 bundles are supported"
        )
    return bundle


class _Lines:
    """A file's lines, remembering the last one read (to keep a row the reader refused)."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self.last = ""

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        self.last = next(self._lines)
        return self.last


def _rows(bundle: Bundle, name: str) -> Iterator[tuple[int, dict[str, str] | None, list[str]]]:
    """(line, {header: cell}, extra cells) for each data row of a file, read as a stream
    (a district's enrollments file is a gigabyte of text). A row no CSV reader can take (a
    carriage return inside an unquoted field) comes as (line, None, [its text]): the caller
    keeps it with its reason, and the rows after it are read."""
    filename = f"{name.lower()}.csv"
    if filename not in bundle.files:
        return
    encoding = bundle.encoding(filename)
    with bundle.open(filename) as raw:
        lines = _Lines(io.TextIOWrapper(raw, encoding, newline="\n"))
        reader = csv.reader(lines)
        header = [h.strip() for h in next(reader, [])]
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error:
                yield reader.line_num, None, [lines.last]
                continue
            if not any(cell.strip() for cell in row):
                continue
            cells = {h: c for h, c in zip(header, row, strict=False) if h}
            extra = [c for c in row[len(header) :] if c.strip()]
            yield reader.line_num, cells, extra


def unreadable(rejects: Rejects, filename: str, line: int, text: list[str]) -> None:
    """A row the CSV reader refused, kept whole with where it is and why."""
    rejects.add(
        None,
        f"{filename} line {line}: a line break (carriage return) inside an unquoted field; "
        "quote the field in the export",
        {"__file__": filename, "__line__": line, "row": "".join(text)},
    )


def _columns(collection: Collection) -> dict[str, tuple[str, Kind]]:
    """Lower-case CSV header -> (REST name, kind), for the canonical fields of a collection."""
    return {name: (f.rest_name, f.kind) for name, f in fields_by_name(collection).items()}


def _safe(cells: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in cells.items() if k.lower() not in SECRET_COLUMNS}


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _record(
    collection: Collection, cells: dict[str, str], mode: str, line: int, filename: str
) -> dict:
    known = _columns(collection)
    record: dict = {"__line__": line, "__file__": filename}
    metadata: dict[str, str] = {}
    for header, value in _safe(cells).items():
        key = header.lower()
        value = value.strip()
        if key not in known:
            if value:
                metadata[header.removeprefix("metadata.")] = value  # vendor and metadata.* columns
            continue
        if value == "":
            continue
        name, kind = known[key]
        if kind is Kind.REF:
            record[name] = {"sourcedId": value}
        elif kind is Kind.REFS:
            record[name] = [{"sourcedId": v} for v in _split(value)]
        elif kind is Kind.STRINGS:
            record[name] = _split(value)
        elif kind is Kind.JSON and name == "userIds":
            record[name] = [
                {"type": t.strip(), "identifier": i.strip()} for t, i in USER_ID.findall(value)
            ] or value
        else:
            record[name] = value
    if metadata:
        record["metadata"] = metadata
    # Bulk rows may leave status blank: everything in a bulk file is active unless it says so.
    record.setdefault("status", "active" if mode == "bulk" else None)
    return record


def _attach_roles(
    bundle: Bundle, users: list[dict], rejects: Rejects
) -> tuple[dict[str, int], dict[str, int]]:
    """1.2: roles.csv and userProfiles.csv onto their users.

    Returns the data rows of each file present, and the rows attached per file.
    """
    by_id = {u.get("sourcedId"): u for u in users}
    seen = {f"{n}.csv": 0 for n in ("roles", "userProfiles") if bundle.text(n) is not None}
    attached = {"roles.csv": 0, "userProfiles.csv": 0}
    for line, cells, text in _rows(bundle, "roles"):
        seen["roles.csv"] += 1
        if cells is None:
            unreadable(rejects, "roles.csv", line, text)
            continue
        c = {k.lower(): v.strip() for k, v in cells.items()}
        user = by_id.get(c.get("usersourcedid"))
        if user is None:
            rejects.add(
                c.get("sourcedid"),
                f"roles.csv line {line}: userSourcedId {shown(c.get('usersourcedid'))} not in users.csv",
                c,
            )
            continue
        role = {
            "roleType": c.get("roletype"),
            "role": c.get("role"),
            "org": {"sourcedId": c.get("orgsourcedid")},
        }
        for key, name in (
            ("begindate", "beginDate"),
            ("enddate", "endDate"),
            ("userprofilesourcedid", "userProfile"),
        ):
            if c.get(key):
                role[name] = c[key]
        user.setdefault("roles", []).append(role)
        attached["roles.csv"] += 1
    for line, cells, text in _rows(bundle, "userProfiles"):
        seen["userProfiles.csv"] += 1
        if cells is None:
            unreadable(rejects, "userProfiles.csv", line, text)
            continue
        c = {k.lower(): v.strip() for k, v in _safe(cells).items()}
        user = by_id.get(c.get("usersourcedid"))
        if user is None or "profiletype" not in c:
            why = (
                "not a userProfiles file (no profileType column)"
                if "profiletype" not in c
                else f"userSourcedId {shown(c.get('usersourcedid'))} not in users.csv"
            )
            rejects.add(c.get("sourcedid"), f"userProfiles.csv line {line}: {why}", c)
            continue
        profile = {
            k: c.get(k.lower()) for k in ("profileType", "vendorId", "applicationId", "description")
        }
        profile["profileId"] = c.get("sourcedid")
        profile["credentials"] = [
            {"type": c.get("credentialtype"), "username": c.get("username")}
        ]  # no password, ever
        user.setdefault("userProfiles", []).append(profile)
        attached["userProfiles.csv"] += 1
    return seen, attached


@dataclass
class CsvRead(FetchResult):
    mode: str = "bulk"
    rows_in_files: dict[str, int] = field(default_factory=dict)  # file -> data rows
    rows_read: dict[str, int] = field(
        default_factory=dict
    )  # file -> rows taken in (as records or attached)

    def rejected_in(self, filename: str) -> int:
        return sum(1 for r in self.rejects.reasons if r.startswith(f"{filename} "))


# The prefix a bundle's reasons carry: ``<file>.csv line <n>: ``.
PLACED = r"^[^:]*\.csv line \d+: "


def read_collection(
    bundle: Bundle,
    collection: Collection,
    previous: pa.Table | None,
    hook: Callable[[dict], None] | None = None,
) -> CsvRead:
    """A collection from a bundle, in the canonical model; delta and absent files use ``previous``."""
    name = FILE_NAMES[collection.name]
    mode = bundle.mode(collection.name)
    stats = FetchStats(endpoint=f"{Path(bundle.source).name}:{name}.csv")
    empty = arrow_schema(collection).empty_table()
    if mode == "absent":
        table = previous if previous is not None else empty
        return CsvRead(table, Rejects(), stats, mode=mode)
    fast = _read_columnar(bundle, collection, mode, hook)
    if fast is not None:
        stats.records_received = fast.num_rows
        rows = {f"{name}.csv": fast.num_rows}
        return CsvRead(_apply_delta(fast, previous, mode), Rejects(), stats, mode, rows, dict(rows))
    rejects = Rejects()
    records: list[dict] = []
    rows = {f"{name}.csv": 0}
    for line, cells, extra in _rows(bundle, name):
        rows[f"{name}.csv"] += 1
        if rows[f"{name}.csv"] > MAX_ROW_PATH_ROWS:
            raise BundleError(
                f"{bundle.source}: {name}.csv: more than {MAX_ROW_PATH_ROWS:,} rows to read row by "
                "row (data minimisation or 1.2 roles need it); refused, nothing stored for the night"
            )
        if cells is None:
            unreadable(rejects, f"{name}.csv", line, extra)
            continue
        record = _record(collection, cells, mode, line, f"{name}.csv")
        if extra:
            if hook is not None:
                hook(record)
            reason = f"{name}.csv line {line}: {len(extra)} more cells than header columns"
            rejects.add(record.get("sourcedId"), reason, record)
            continue
        records.append(record)
    if collection.name == "users":
        seen, attached = _attach_roles(bundle, records, rejects)
        rows |= seen
    else:
        attached = {}
    tables = []
    for start in range(0, len(records), CHUNK):
        table, bad = normalise_page(collection, records[start : start + CHUNK], hook)
        for i, reason in enumerate(bad.reasons):
            raw = orjson.loads(bad.records[i])
            where = (
                f"{raw.get('__file__', name + '.csv')} line {raw.get('__line__', '?')}: "
                if isinstance(raw, dict)
                else ""
            )
            bad.reasons[i] = where + reason
        rejects.extend(bad)
        tables.append(table)
    table = pa.concat_tables(tables) if tables else empty
    stats.records_received = table.num_rows
    read = {f"{name}.csv": table.num_rows, **{f: n for f, n in attached.items() if f in rows}}
    table = _apply_delta(table, previous, mode)
    return CsvRead(table, rejects, stats, mode=mode, rows_in_files=rows, rows_read=read)


def _columnar_applies(
    bundle: Bundle, collection: Collection, hook: Callable[[dict], None] | None
) -> bool:
    """Whether the columnar reading applies: a data-minimisation hook sees every record, and
    1.2 users gather roles.csv and userProfiles.csv, row by row."""
    if hook is not None:
        return False
    return not (
        collection.name == "users"
        and any(f"{n}.csv" in bundle.files for n in ("roles", "userprofiles"))
    )


def _read_columnar(
    bundle: Bundle, collection: Collection, mode: str, hook: Callable[[dict], None] | None
) -> pa.Table | None:
    if not _columnar_applies(bundle, collection, hook):
        return None
    data = bundle.files.get(f"{FILE_NAMES[collection.name].lower()}.csv")
    return read_file(collection, data, mode) if data else None


def streamed_blocks(
    bundle: Bundle, collection: Collection, hook: Callable[[dict], None] | None
) -> Iterator[pa.Table] | None:
    """A bulk file read columnar a block at a time, straight from the zip (never inflated
    whole), where that applies; it raises ``RowPath`` on the first block it cannot take
    exactly, and the file is then read whole by :func:`read_collection`."""
    name = f"{FILE_NAMES[collection.name].lower()}.csv"
    if bundle.mode(collection.name) != "bulk" or name not in bundle.files:
        return None
    if not _columnar_applies(bundle, collection, hook):
        return None
    return file_batches(collection, lambda: bundle.open(name), "bulk")


def streamed_read(bundle: Bundle, collection: Collection, records: int) -> CsvRead:
    """How a streamed bulk file was read (its tables went to the snapshot's writer)."""
    name = FILE_NAMES[collection.name]
    stats = FetchStats(endpoint=f"{Path(bundle.source).name}:{name}.csv")
    stats.records_received = records
    rows = {f"{name}.csv": records}
    empty = arrow_schema(collection).empty_table()
    return CsvRead(empty, Rejects(), stats, "bulk", rows, dict(rows))


def _apply_delta(table: pa.Table, previous: pa.Table | None, mode: str) -> pa.Table:
    """Delta rows replace their sourcedId in the previous snapshot; the rest stays."""
    if mode != "delta" or previous is None:
        return table
    keep = pc.invert(pc.is_in(previous["sourcedId"], table["sourcedId"]))
    return pa.concat_tables([previous.filter(keep).cast(table.schema), table])


def line_of(bundle: Bundle, collection: str, wanted: set[str]) -> dict[str, int]:
    """sourcedId -> line in the collection's file of the ``wanted`` ones, to place later
    (validation) rejects; the file is read until they are all found."""
    out: dict[str, int] = {}
    for line, cells, _ in _rows(bundle, FILE_NAMES[collection]):
        if cells is None:
            continue
        sid = next((v for k, v in cells.items() if k.lower() == "sourcedid"), None)
        if sid and (sid := sid.strip()) in wanted:
            out.setdefault(sid, line)
            if len(out) == len(wanted):
                break
    return out
