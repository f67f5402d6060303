"""One writer at a time for each step of a tenant-night, whichever run or process it is in.

Two runs of one tenant-night at once (an operator's CLI run beside the schedule's, a run
retried while the first still polls Canvas) would both write the night's files and both
upload. Each step holds a lock on (tenant, night, step) while it works; a second holder is
refused at once, in one line naming the run that holds it. The lock goes with its holder's
process, so a killed run never leaves one behind:

- in production (``DAGSTER_PG_HOST`` set, the instance on PostgreSQL): a PostgreSQL advisory
  lock on a connection of the step's own, named after the run in ``application_name``;
- otherwise: ``flock`` on a file under the lake's ``locks/`` folder (or this machine's
  temporary folder for a lake on an object store), the holder written in it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from upath import UPath

from .errors import SisPipelinesError


class HeldElsewhere(SisPipelinesError):
    """The tenant-night's step is being done by another run right now."""


def _refused(tenant: str, night: date | str, step: str, holder: str) -> HeldElsewhere:
    return HeldElsewhere(
        f"tenant {tenant!r}, night {night}: {step} is being done by {holder or 'another run'}; "
        "nothing done twice: wait for that run to end (or cancel it), then run again"
    )


@contextmanager
def step_lock(
    lake_root: UPath, tenant: str, night: date | str, step: str, holder: str
) -> Iterator[None]:
    """Held while the block runs; ``holder`` says who holds it (a run's id)."""
    if os.environ.get("DAGSTER_PG_HOST"):
        with _advisory(tenant, night, step, holder):
            yield
    else:
        with _flock(_lock_folder(lake_root), tenant, night, step, holder):
            yield


def _key(tenant: str, night: date | str, step: str) -> int:
    digest = hashlib.sha256(f"sis_pipelines|{tenant}|{night}|{step}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _lock_folder(lake_root: UPath) -> Path:
    if lake_root.protocol in ("", "file", "local"):
        return Path(lake_root.path) / "locks"
    return Path(tempfile.gettempdir()) / "sis-pipelines-locks"


@contextmanager
def _flock(folder: Path, tenant: str, night: date | str, step: str, holder: str) -> Iterator[None]:
    path = folder / tenant / str(night) / f"{step.replace('/', '__')}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _refused(
                tenant, night, step, os.pread(fd, 512, 0).decode(errors="replace").strip()
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{holder} (pid {os.getpid()} on {socket.gethostname()})".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def _advisory(tenant: str, night: date | str, step: str, holder: str) -> Iterator[None]:
    import psycopg2  # dagster-postgres's driver

    key = _key(tenant, night, step)
    connection = psycopg2.connect(
        host=os.environ["DAGSTER_PG_HOST"],
        port=os.environ.get("DAGSTER_PG_PORT", "5432"),
        user=os.environ.get("DAGSTER_PG_USER"),
        password=os.environ.get("DAGSTER_PG_PASSWORD"),
        dbname=os.environ.get("DAGSTER_PG_DB"),
        application_name=f"sis_pipelines {holder}"[:63],
        connect_timeout=30,
    )
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", (key,))
            if not cursor.fetchone()[0]:
                cursor.execute(
                    """SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a
                       ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted
                       AND l.classid = %s::bigint::oid AND l.objid = %s::bigint::oid
                       AND l.objsubid = 1""",
                    ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF),
                )
                found = cursor.fetchone()
                who = found[0].removeprefix("sis_pipelines ") if found else ""
                raise _refused(tenant, night, step, who)
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", (key,))
    finally:
        connection.close()
