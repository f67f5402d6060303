"""Canvas provisioning, night by night: the full Canvas state a snapshot implies, the guarded
delta against the last night Canvas applied, and the upload of its SIS Import zip.

Each step reads and writes through the lake; the Dagster assets call them one each.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

import pandas as pd
from upath import UPath

from ..core.errors import SourceError, StoredStateError
from ..core.figures import Check, Figures, Markdown, guard_check
from ..core.lake import Lake, NightLog
from ..core.storage import (
    WriteBehind,
    as_stored,
    atomic_write_bytes,
    frame_table,
    read_ahead,
    read_batches,
    read_frame,
    write_frame,
    write_tables,
)
from ..core.tenant_night import TenantNight
from ..core.tenants import Canvas
from . import fingerprint
from .admins import admins, extra_logins
from .api import FAILED, CanvasClient, import_messages
from .compare import columns_of, distinct
from .conversion import renamed_files, renamed_ids, renames
from .crosslist import crosslists
from .delta import (
    GuardFinding,
    changes_markdown,
    compute_delta,
    deletion_guard,
    guard_markdown,
    harm_summary,
    key_and_values,
    with_retained,
    with_whole,
)
from .enrollments import CanvasEnrollments
from .files import ORDER, WHOLE
from .fingerprint import fingerprinted
from .lifecycle import RETAINED
from .mapping import (
    INTERNAL,
    MAPPED_AS_DICTIONARY,
    MAPPED_COLUMNS,
    canvas_files_of,
    canvas_terms,
    mapped_columns,
    term_signature,
)
from .package import CanvasCsvError, build_zip
from .scope import Scoping, canvas_ids

if TYPE_CHECKING:
    from ..services.connect import Services

ACTIONS = ("add", "update", "delete", "suspend", "complete", "conclude", "keep")


class SisImportFailed(SourceError):
    """Canvas took the zip and ended the import in a failed state: retrying sends the same."""


# Enrollments mapped at a time: read as dictionaries (codes into the batch's distinct
# classes and users), a million are about a hundred megabytes; the next is read while one
# is mapped.
ENROLLMENT_BATCH_ROWS = 1 << 20


class StoredSnapshot:
    """The night's OneRoster collections the mapping reads, each read (its columns only)
    when the mapping takes it: a district's two million users are not held while its classes
    are mapped, and its enrollments come in batches (a row group at a time)."""

    def __init__(self, lake: Lake, tenant_id: str, night: date, cfg: Canvas) -> None:
        self._paths: dict[str, UPath] = {}
        for name in MAPPED_COLUMNS:
            path = lake.snapshot(name, night, tenant_id)
            if not path.exists():
                raise StoredStateError(
                    f"tenant {tenant_id!r}, night {night}: no oneroster/{name} snapshot stored; "
                    f"materialize it first: sis-pipelines run --tenant {tenant_id} --night {night} "
                    "--select group:oneroster"
                )
            self._paths[name] = path
        self._cfg = cfg

    def pop(self, name: str) -> pd.DataFrame | Iterator[pd.DataFrame]:
        path = self._paths.pop(name)
        columns = mapped_columns(name, self._cfg)
        dictionary = MAPPED_AS_DICTIONARY.get(name)
        if name == "enrollments":
            return read_ahead(read_batches(path, columns, dictionary, ENROLLMENT_BATCH_ROWS))
        return read_frame(path, columns, dictionary)


def write_canvas_file(name: str, file: pd.DataFrame | CanvasEnrollments, path: UPath) -> None:
    """One Canvas file with each row's fingerprints: tomorrow's delta reads them instead of
    hashing the text again."""
    if isinstance(file, CanvasEnrollments):
        # Each slice made (text, fingerprints) on a thread of its own while the one before
        # is encoded: the write no longer waits for the next slice.
        key, values = key_and_values(name, file.columns)
        slices = read_ahead(as_stored(fingerprinted(file.tables(), key, values)))
    else:
        table = frame_table(file)
        key, values = key_and_values(name, table.column_names)
        slices = fingerprinted([table], key, values)
    write_tables(slices, path, fingerprint.COLUMNS)


def map_night(lake: Lake, tn: TenantNight) -> Figures:
    """Stores the Canvas files (accounts, terms, …) the night's snapshot implies; their sizes."""
    tenant_id, cfg, night = tn.id, tn.tenant.canvas, tn.night
    assert cfg is not None
    rows: dict[str, int] = {}
    without_login = 0
    # A file is written while the next is made, and let go once written: the next is made
    # from what the snapshot still holds.
    writes = WriteBehind("canvas-files")
    scoping = Scoping(cfg.scope)
    try:
        snapshot = StoredSnapshot(lake, tenant_id, night, cfg)
        for name, file in canvas_files_of(snapshot, cfg, night, scoping):
            path = lake.canvas_file(name, night, tenant_id)
            writes.submit(write_canvas_file, name, file, path)
            rows[name] = len(file)
            if name == "users":
                without_login = file.attrs.get("without_login", 0)
            del file
    finally:
        writes.close()
    # What the tenant opts into beyond the roster, made from the files just written.
    for name, make in (("xlists", crosslists), ("admins", admins), ("logins", extra_logins)):
        made, path = make(lake, tn), lake.canvas_file(name, night, tenant_id)
        if made is not None:
            write_canvas_file(name, made, path)
            rows[name] = len(made)
        elif path.exists():  # asked for no more: the delta decides what becomes of them
            path.unlink()
    figures: Figures = {f"{name}_rows": rows[name] for name in ORDER if name in rows}
    figures["users_without_login_id"] = without_login
    write_frame(scoping.listing(), lake.out_of_scope(night, tenant_id))
    figures["out_of_scope"] = sum(scoping.counts.values())
    if scoping.counts:
        figures["out_of_scope_by_reason"] = Markdown(
            "\n".join(f"- {reason}: {n}" for reason, n in sorted(scoping.counts.items()))
        )
        # Each reason a figure of its own, so the tenant's page plots it night after night.
        figures |= {f"out_of_scope: {reason}": n for reason, n in sorted(scoping.counts.items())}
    return figures


def canvas_files(lake: Lake, tenant_id: str, night: date | str) -> dict[str, UPath] | None:
    """The stored Canvas files of a night: the delta reads them itself, column by column."""
    files = {}
    for name in ORDER:
        path = lake.canvas_file(name, night, tenant_id)
        if path.exists():
            files[name] = path
    return files or None


def retained_files(lake: Lake, tenant_id: str, night: date | str) -> dict[str, pd.DataFrame]:
    """The rows a night kept in Canvas after they left the SIS (``lifecycle.py``)."""
    out = {}
    for name in RETAINED:
        path = lake.canvas_retained(name, night, tenant_id)
        if path.exists():
            frame = read_frame(path)
            if len(frame):
                out[name] = frame.astype(object).where(frame.notna(), None)
    return out


def enrolled_before(
    lake: Lake, tenant_id: str, previous: dict[str, UPath] | None
) -> dict[str, set[str]]:
    """The courses and sections that ever had an enrollment, up to the last applied night:
    the stored record and that night's enrollments, stored again (it only grows, so a night
    run twice stores the same)."""
    path = lake.canvas_enrolled(tenant_id)
    known = read_frame(path) if path.exists() else pd.DataFrame({"file": [], "sis_id": []})
    sets = {
        name: set(known.loc[known["file"] == name, "sis_id"].astype(str))
        for name in ("courses", "sections")
    }
    enrollments = (previous or {}).get("enrollments")
    if enrollments is not None:
        grown = False
        for name, column in (("courses", "course_id"), ("sections", "section_id")):
            ids = set(distinct(enrollments, column))
            grown |= not ids <= sets[name]
            sets[name] |= ids
        if grown:
            store_enrolled(lake, tenant_id, sets)
    return sets


def store_enrolled(lake: Lake, tenant_id: str, sets: dict[str, set[str]]) -> None:
    """The record of the courses and sections ever enrolled, stored whole."""
    write_frame(
        pd.DataFrame(
            [(name, i) for name, ids in sets.items() for i in sorted(ids)],
            columns=["file", "sis_id"],
        ),
        lake.canvas_enrolled(tenant_id),
    )


GUARD_CHECK = "deletion_guard"


@dataclass
class GuardVerdict:
    """The deletion guard on a night's delta: passed, or let through on purpose, or blocked."""

    passed: bool
    overridden: bool
    findings: list[GuardFinding]
    table: Markdown  # what would be removed, file by file
    summary: str = ""  # the harmful changes, grouped, in a line

    @property
    def lets_through(self) -> bool:
        return self.passed or self.overridden

    def shares(self) -> Figures:
        return {f"{f.file}_removal_share": round(f.removal_share, 6) for f in self.findings}

    def check(self, evaluation: UPath | None = None) -> Check:
        """The deletion guard's check; ``evaluation``: the tenant's evaluation of the night
        (sis-pipelines evaluate), when there is one."""
        return guard_check(
            GUARD_CHECK,
            passed=self.passed,
            overridden=self.overridden,
            refused=f" ({self.summary}): nothing will be uploaded. Check the changes",
            table=self.table,
            figures={**self.shares(), **({"evaluation": evaluation} if evaluation else {})},
        )


def delta_night(
    lake: Lake, tn: TenantNight, allow_mass_removal: bool
) -> tuple[Figures, GuardVerdict]:
    """Tonight's delta against the last night applied to Canvas, every row explained in the
    changes file, and packaged as the night's zip when the deletion guard lets it through
    (never a stale zip where a blocked one would be)."""
    tenant_id, cfg, night = tn.id, tn.tenant.canvas, tn.night
    assert cfg is not None
    current = canvas_files(lake, tenant_id, night)
    if current is None:
        raise StoredStateError(
            f"tenant {tenant_id!r}, night {night}: no Canvas mapping; materialize canvas/mapping first"
        )
    applied = lake.canvas_applied(tenant_id).before(night)
    base_night = applied[-1] if applied else None
    previous = canvas_files(lake, tenant_id, base_night) if base_night else None
    kept = retained_files(lake, tenant_id, base_night) if base_night else {}
    enrolled = enrolled_before(lake, tenant_id, previous)
    # What the night holds that Canvas takes whole: a conversion's renames apply first.
    whole = {
        name: read_frame(path, columns_of(path))
        for name in WHOLE
        if (path := lake.canvas_file(name, night, tenant_id)).exists()
    }
    if by_type := renames(whole.get("change_sis_id")):
        previous = renamed_files(previous or {}, by_type) or None
        kept = {
            n: f for n, f in renamed_files(kept, by_type).items() if isinstance(f, pd.DataFrame)
        }
        enrolled = {
            "courses": renamed_ids(enrolled["courses"], by_type.get("course", {})),
            "sections": renamed_ids(enrolled["sections"], by_type.get("section", {})),
        }
        store_enrolled(lake, tenant_id, enrolled)  # renamed courses keep their history
    scoped = lake.out_of_scope(night, tenant_id)
    out_of_scope = canvas_ids(read_frame(scoped), cfg.sis_id_prefix) if scoped.exists() else None
    delta = compute_delta(
        previous,
        current,
        cfg,
        night,
        retained=kept,
        enrolled=enrolled,
        out_of_scope=out_of_scope,
    )
    delta = with_whole(delta, whole)  # sent as they came, never compared nor carried
    passed, findings = deletion_guard(previous, current, delta, cfg.max_removal_share)
    verdict = GuardVerdict(
        passed,
        not passed and allow_mass_removal,
        findings,
        Markdown(guard_markdown(findings, cfg.max_removal_share, delta)),
        harm_summary(delta),
    )
    write_frame(delta.changes, lake.changes(night, tenant_id))
    for name in RETAINED:
        rows = delta.retained.get(name)
        write_frame(
            rows if rows is not None else pd.DataFrame(),
            lake.canvas_retained(name, night, tenant_id),
        )
    zip_path = lake.sis_import_zip(night, tenant_id)
    data = None
    if verdict.lets_through:
        sent = (
            with_retained(
                {n: read_frame(p, columns_of(p)) for n, p in current.items()},  # not fingerprints
                delta.retained,
            )
            | {n: delta.files[n] for n in WHOLE if n in delta.files}
            if cfg.import_mode == "diffing"
            else delta.files
        )
        package = {n: f.drop(columns=[INTERNAL], errors="ignore") for n, f in sent.items()}
        try:
            data = build_zip(package) if any(len(f) for f in package.values()) else None
        except CanvasCsvError as exc:
            raise CanvasCsvError(f"tenant {tenant_id!r}, night {night}: {exc}") from None
    if data is not None:
        atomic_write_bytes(data, zip_path)
    elif zip_path.exists():
        zip_path.unlink()
    figures: Figures = {
        "changes": Markdown(changes_markdown(delta)),
        "rows": len(delta.changes),
        "applied_base_night": base_night or "none (first import)",
        "import_mode": cfg.import_mode,
    }
    for action in ACTIONS:
        figures[f"{action}_rows"] = int((delta.changes["action"] == action).sum())
    return figures, verdict


def import_night(lake: Lake, services: Services, tn: TenantNight, force: bool) -> Figures:
    """Posts the night's zip to Canvas and follows it to a terminal state, once per night:
    never again for an imported night, never for a night older than one applied (unless
    ``force``), never in a dry run. The applied-nights log records the outcome."""
    tenant_id, tenant, night = tn.id, tn.tenant, tn.night
    cfg = tenant.canvas
    assert cfg is not None
    log = lake.canvas_applied(tenant_id)
    applied = log.read()
    night_s = str(night)
    zip_path = lake.sis_import_zip(night, tenant_id)
    if night_s in applied and not force:
        return {"outcome": "already imported", "import_id": str(applied[night_s].get("import_id"))}
    later = sorted(n for n in applied if n > night_s)
    if later and not force:
        return {"outcome": f"not uploaded: a later night ({later[-1]}) is already applied"}
    if cfg.dry_run:
        return {"outcome": "dry run: the zip was built, not uploaded", "zip": zip_path}
    if not zip_path.exists():
        log.record(night, {"import_id": None, "workflow_state": "nothing to send"})
        return {"outcome": "nothing to send"}
    with zip_path.open("rb") as fh:
        data = fh.read()
    digest = hashlib.sha256(data).hexdigest()
    uploads = lake.canvas_uploads(tenant_id)
    with services.canvas(tenant_id, tenant) as canvas:
        import_id = None if force else _begun(canvas, uploads, tenant_id, night, digest)
        resumed = import_id is not None
        if import_id is None:
            intent = {"zip_sha256": digest, "started_at": _now()}
            uploads.record(night, intent)  # before the zip leaves: a crash now is seen later
            created = canvas.post_sis_import(data, _import_params(tenant_id, cfg))
            import_id = created["id"]
            uploads.record(night, {**intent, "import_id": import_id})
        state = canvas.wait(import_id)
        requests, throttled = canvas.requests, canvas.throttled
    messages = import_messages(state)
    workflow_state = state.get("workflow_state")
    if workflow_state in FAILED:
        # Canvas ended it: the next attempt sends the zip again (it may be Canvas's own crash).
        uploads.record(night, {**uploads.read()[str(night)], "workflow_state": workflow_state})
        raise SisImportFailed(
            f"tenant {tenant_id!r}, night {night}: Canvas SIS import {import_id} {workflow_state}: "
            + "; ".join(messages[:10])
        )
    log.record(night, {"import_id": import_id, "workflow_state": workflow_state})
    counts = (state.get("data") or {}).get("counts") or {}
    return {
        "outcome": "imported (an upload begun earlier, followed)" if resumed else "imported",
        "import_id": str(import_id),
        "workflow_state": workflow_state,
        "messages": Markdown("\n".join(f"- {m}" for m in messages) or "none"),
        "requests": requests,
        "throttled": throttled,
        **{f"{k}_imported": int(v) for k, v in counts.items()},
    }


class UploadUnsettled(StoredStateError):
    """An upload began and Canvas's answer was never recorded, and Canvas holds imports made
    since: whether one of them is the night cannot be told, so nothing is sent again."""


def _begun(
    canvas: CanvasClient, uploads: NightLog, tenant_id: str, night: date, digest: str
) -> int | str | None:
    """The import of this very zip an earlier attempt began (a crash, a run retried), or None
    when the zip may be sent. An attempt that crashed before Canvas named its import is
    settled by asking Canvas for the imports made since it began: none, and the zip never
    arrived; some, and the operator decides (``--force-upload``)."""
    begun = uploads.read().get(str(night))
    if not begun or begun.get("zip_sha256") != digest or begun.get("workflow_state") in FAILED:
        return None  # nothing begun, another zip of the night (rebuilt on purpose), or refused
    if begun.get("import_id") is not None:
        return begun["import_id"]
    since = canvas.sis_imports_since(begun["started_at"])
    if not since:
        return None
    ids = ", ".join(str(i.get("id")) for i in since[:5])
    raise UploadUnsettled(
        f"tenant {tenant_id!r}, night {night}: an upload begun at {begun['started_at']} was cut "
        f"off before Canvas answered, and Canvas holds SIS imports made since ({ids}); check "
        "them in Canvas (Admin > SIS Import), then re-run with --force-upload to send the "
        "night again if none is it"
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _import_params(tenant_id: str, cfg: Canvas) -> dict[str, object]:
    params: dict[str, object] = {}
    if cfg.override_sis_stickiness:
        params["override_sis_stickiness"] = "true"
    if cfg.import_mode == "diffing":
        params |= {
            "diffing_data_set_identifier": f"sis_pipelines:{tenant_id}:rostering",
            "change_threshold": cfg.change_threshold,
            "diffing_user_remove_status": cfg.user_remove_status,
            "diffing_drop_status": "completed",  # a dropped enrollment keeps its work
        }
    return params


@dataclass
class TermChange:
    """The nights to re-derive after a change of a tenant's Canvas terms, and whether the
    change is the school year's rollover (none of the night before's terms remain)."""

    nights: list[date]
    rollover: bool = False

    @property
    def kind(self) -> str:
        return "rollover" if self.rollover else "term-change"


def term_change(lake: Lake, tenant_id: str, night: date, cfg: Canvas) -> TermChange:
    """Nights to re-derive when ``night``'s academic sessions change the Canvas terms (a new
    term, changed dates, a rollover): it and every later stored night; none otherwise."""
    nights = [date.fromisoformat(n) for n in lake.snapshot_nights("academic_sessions", tenant_id)]
    earlier = [n for n in nights if n < night]
    if not earlier or night not in nights:
        return TermChange([])

    def sessions(n: date) -> pd.DataFrame:
        return read_frame(lake.snapshot("academic_sessions", n, tenant_id))

    before, now = sessions(earlier[-1]), sessions(night)
    if term_signature(before, cfg) == term_signature(now, cfg):
        return TermChange([])
    old = set(canvas_terms(before, cfg)[0]["term_id"])
    new = set(canvas_terms(now, cfg)[0]["term_id"])
    return TermChange([n for n in nights if n >= night], bool(old and new and not old & new))


def term_change_nights(lake: Lake, tenant_id: str, night: date, cfg: Canvas) -> list[date]:
    return term_change(lake, tenant_id, night, cfg).nights
