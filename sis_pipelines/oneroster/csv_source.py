"""Where a tenant's nightly drop is: a local folder of drops, one zip, or an SFTP folder.
Picks the drop for the night and says which file it used. A OneRoster CSV bundle by default;
the CSV Gateway's Canvas-format drops through ``locate_drop`` with their own loader."""

from __future__ import annotations

import functools
import hashlib
import io
import os
import re
import stat
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from urllib.parse import unquote, urlsplit

from ..core.secrets import remember
from .csv_bundle import MAX_DROP_BYTES, BundleError, drop_files, load_bundle, open_in_drop


class DropConfig(Protocol):
    """Where a tenant's drops are (the tenants file's oneroster or canvas_csv section)."""

    path: str | None
    sftp_password_env: str | None
    sftp_key_env: str | None
    sftp_host_key: str | None
    max_drop_bytes: int


@dataclass(frozen=True)
class Located:
    name: str  # the file or folder used, as the operator sees it
    sha256: str
    bundle: Any  # a OneRoster Bundle, or what the drop's loader made of it


Loader = Callable[..., Any]  # (path, data=None) -> the drop read


def _bundle_folder(p: Path) -> bool:
    return (p / "manifest.csv").exists()


def _csv_folder(p: Path) -> bool:
    return p.is_dir() and any(f.suffix.lower() == ".csv" for f in p.iterdir())


def _night_patterns(night: date) -> tuple[str, str]:
    return night.isoformat(), night.strftime("%Y%m%d")


def pick(names: list[str], night: date, where: str) -> str:
    """The bundle whose name carries the night (YYYY-MM-DD or YYYYMMDD); the last of several."""
    long, short = _night_patterns(night)
    matches = sorted(n for n in names if long in n or re.search(rf"(?<!\d){short}(?!\d)", n))
    if not matches:
        raise BundleError(
            f"{where}: no bundle for night {night} (names must contain {long} or {short})"
        )
    return matches[-1]


SPOOL_BLOCK = 1 << 20


def spooled(fh: BinaryIO, name: str, max_bytes: int) -> tuple[str, BinaryIO]:
    """A zip drop copied, as it is hashed, to a temporary file of ours: what is hashed is what
    is read, even if the drop is replaced meanwhile, and its bytes wait on disk, not in memory
    (an xl district's zip is a quarter of a gigabyte). A zip larger than what its files may
    inflate to is refused before it fills the disk."""
    digest = hashlib.sha256()
    copy = tempfile.TemporaryFile(prefix="sis-drop-")  # noqa: SIM115 (the bundle closes it)
    size = 0
    while block := fh.read(SPOOL_BLOCK):
        size += len(block)
        if size > max_bytes:
            copy.close()
            raise BundleError(
                f"{name}: the zip alone is above the tenant's max_drop_bytes "
                f"({max_bytes / 1e9:.1f} GB); not read, nothing stored for the night"
            )
        digest.update(block)
        copy.write(block)
    copy.seek(0)
    return digest.hexdigest(), copy


def _folder_digest(folder: Path) -> str:
    """The folder's CSV files hashed in name order, a block at a time."""
    digest = hashlib.sha256()
    for f in drop_files(folder):
        with open_in_drop(f) as fh:
            while block := fh.read(SPOOL_BLOCK):
                digest.update(block)
    return digest.hexdigest()


def _located(chosen: Path, loader: Loader, max_bytes: int) -> Located:
    if chosen.is_symlink():
        raise BundleError(
            f"{chosen}: a symbolic link; a night's drop is read only where the district put it: "
            "refused, nothing stored for the night"
        )
    if chosen.is_file():
        with open_in_drop(chosen) as fh:
            sha256, copy = spooled(fh, str(chosen), max_bytes)
        return Located(str(chosen), sha256, loader(chosen, data=copy))
    return Located(str(chosen), _folder_digest(chosen), loader(chosen))


def locate_local(
    path: str,
    night: date,
    loader: Loader = load_bundle,
    is_drop: Callable[[Path], bool] = _bundle_folder,
    max_bytes: int = MAX_DROP_BYTES,
) -> Located:
    p = Path(path)
    if p.is_file() or is_drop(p):
        # One bundle for every night: a single drop that is replaced in place (the tenants
        # file's own path: the operator's, so a link there is followed).
        return _located(p.resolve(), loader, max_bytes)
    if not p.is_dir():
        raise BundleError(f"{path}: no such file or folder")
    entries = [e.name for e in p.iterdir() if e.suffix.lower() == ".zip" or is_drop(e)]
    return _located(p / pick(entries, night, path), loader, max_bytes)


def locate_sftp(
    cfg: DropConfig,
    night: date,
    env: Mapping[str, str] = os.environ,
    tenant: str = "",
    loader: Loader = load_bundle,
) -> Located:
    import paramiko

    url = urlsplit(cfg.path or "")
    if not url.hostname or not url.username:
        raise BundleError(f"tenant {tenant!r}: sftp path must read sftp://user@host[:port]/dir")
    password = env.get(cfg.sftp_password_env or "") or None
    key_text = env.get(cfg.sftp_key_env or "") or None
    remember(password)
    remember(key_text)
    if password is None and key_text is None:
        raise BundleError(
            f"tenant {tenant!r}: environment variable {cfg.sftp_key_env or cfg.sftp_password_env} is not set"
        )
    pkey = None
    if key_text is not None:
        for kind in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
            try:
                pkey = kind.from_private_key(io.StringIO(key_text))
                break
            except (paramiko.SSHException, ValueError):
                continue
        if pkey is None:
            raise BundleError(
                f"tenant {tenant!r}: {cfg.sftp_key_env} does not hold a usable private key"
            )
    client = paramiko.SSHClient()
    # Credentials go only to the configured server: its key must match, unknown keys are refused.
    kind, _, blob = (cfg.sftp_host_key or "").strip().partition(" ")
    port = url.port or 22
    host_id = url.hostname if port == 22 else f"[{url.hostname}]:{port}"
    client.get_host_keys().add(
        host_id,
        kind,
        paramiko.PKey.from_type_string(kind, __import__("base64").b64decode(blob.split()[0])),
    )
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(
            url.hostname,
            port=port,
            username=url.username,
            password=password,
            pkey=pkey,
            allow_agent=False,
            look_for_keys=False,
            timeout=30,
        )
        sftp = client.open_sftp()
        folder = unquote(url.path) or "."
        entries = {a.filename: a for a in sftp.listdir_attr(folder)}
        names = [n for n in entries if n.lower().endswith(".zip")]
        chosen = pick(names, night, f"sftp://{url.username}@{url.hostname}{folder}")
        if not stat.S_ISREG(entries[chosen].st_mode or 0):
            raise BundleError(
                f"tenant {tenant!r}: sftp://{url.username}@{url.hostname}{folder.rstrip('/')}/"
                f"{chosen}: a symbolic link or not a file; a night's drop is read only where the "
                "district put it: refused, nothing stored for the night"
            )
        with sftp.open(f"{folder.rstrip('/')}/{chosen}", "rb") as fh:
            fh.prefetch()
            sha256, data = spooled(fh, chosen, cfg.max_drop_bytes)
    except (paramiko.SSHException, OSError) as exc:
        raise BundleError(
            f"tenant {tenant!r}: SFTP {url.hostname}:{port}: {type(exc).__name__}: {exc}"
        ) from None
    finally:
        client.close()
    return Located(
        f"sftp://{url.username}@{url.hostname}{folder.rstrip('/')}/{chosen}",
        sha256,
        loader(chosen, data=data),
    )


def locate(
    tenant: str, cfg: DropConfig, night: date, env: Mapping[str, str] = os.environ
) -> Located:
    """The night's OneRoster CSV bundle."""
    return locate_drop(tenant, cfg, night, load_bundle, env, _bundle_folder)


def locate_drop(
    tenant: str,
    cfg: DropConfig,
    night: date,
    loader: Loader,
    env: Mapping[str, str] = os.environ,
    is_drop: Callable[[Path], bool] = _csv_folder,
) -> Located:
    """The night's drop of CSV files (a folder of them, or a zip), read by ``loader`` within
    the tenant's ``max_drop_bytes``."""
    bounded = functools.partial(loader, max_bytes=cfg.max_drop_bytes)
    if (cfg.path or "").startswith("sftp://"):
        return locate_sftp(cfg, night, env, tenant, bounded)
    return locate_local(cfg.path or "", night, bounded, is_drop, cfg.max_drop_bytes)
