"""Who a user is in Canvas beyond users.csv, as the tenant opts in: account admins from
OneRoster roles (``canvas.admins``: each user of a listed role who is a Canvas user of the
night becomes an admin of its school's account, or the root account, with the Canvas role
named; Canvas lets an import remove only the admins SIS imports made), and further logins
from other OneRoster fields (``canvas.logins``)."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq

from ..core.lake import Lake
from ..core.storage import read_frame
from ..core.tenant_night import TenantNight
from .files import FILES

COLUMNS = list(FILES["admins"].columns)


def admins(lake: Lake, tn: TenantNight) -> pd.DataFrame | None:
    """The night's admins rows (None: the tenant names no admins)."""
    cfg = tn.tenant.canvas
    assert cfg is not None
    if not cfg.admins:
        return None
    files, prefix = tn.files(lake), cfg.sis_id_prefix
    path = files.snapshot("users")
    columns = ["sourcedId", "role", "orgSourcedIds"]
    if "primaryOrgSourcedId" in pq.read_schema(str(path)).names:
        columns.append("primaryOrgSourcedId")
    users = read_frame(path, columns)
    # Admins are few: the roles are chosen first, in columns, before anything per user.
    wanted = {role for rule in cfg.admins for role in rule.roles}
    users = users[users["role"].astype(str).isin(wanted)].reset_index(drop=True)
    mapped = set(read_frame(files.canvas_file("users"), ["user_id"])["user_id"].astype(str))
    accounts = set(
        read_frame(files.canvas_file("accounts"), ["account_id"])["account_id"].astype(str)
    )
    school = _school(users)
    rows = []
    for rule in cfg.admins:
        chosen = users["role"].astype(str).isin(rule.roles)
        frame = pd.DataFrame(
            {
                "user_id": prefix + users.loc[chosen, "sourcedId"].astype(str),
                "account_id": prefix + school[chosen].astype(str)
                if rule.account == "school"
                else "",
                "role": rule.role,
                "status": "active",
            }
        )
        # A Canvas user of tonight, at an account of tonight (the root is always there).
        rows.append(
            frame[
                frame["user_id"].isin(mapped)
                & (frame["account_id"].eq("") | frame["account_id"].isin(accounts))
            ]
        )
    out = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=COLUMNS)
    out = out.reindex(columns=COLUMNS, fill_value="")  # role_id, root_account: empty
    return out.drop_duplicates(["user_id", "account_id", "role"]).reset_index(drop=True)


def _school(users: pd.DataFrame) -> pd.Series:
    """Each (chosen) user's school: its primary org where the snapshot has one, else its first."""
    first = users["orgSourcedIds"].map(
        lambda orgs: orgs[0] if orgs is not None and len(orgs) else None
    )
    if "primaryOrgSourcedId" not in users.columns:
        return first
    primary = users["primaryOrgSourcedId"]
    return primary.where(primary.notna() & (primary.astype(str) != ""), first)


def extra_logins(lake: Lake, tn: TenantNight) -> pd.DataFrame | None:
    """The night's logins rows (None: the tenant asks for no further login). Each login has
    its own SIS id (the user's, with the field's name) and names its user."""
    cfg = tn.tenant.canvas
    assert cfg is not None
    if not cfg.logins:
        return None
    files, prefix = tn.files(lake), cfg.sis_id_prefix
    fields = sorted({rule.login_id_field for rule in cfg.logins})
    users = read_frame(files.snapshot("users"), ["sourcedId", *fields])
    mapped = read_frame(files.canvas_file("users"), ["user_id"])["user_id"].astype(str)
    user_ids = prefix + users["sourcedId"].astype(str)
    rows = []
    for rule in cfg.logins:
        value = (
            users[rule.login_id_field].astype(object).where(users[rule.login_id_field].notna(), "")
        )
        value = value.astype(str).str.strip()
        chosen = user_ids.isin(set(mapped)) & (value != "")
        rows.append(
            pd.DataFrame(
                {
                    "user_id": user_ids[chosen] + "-" + rule.login_id_field,
                    "login_id": value[chosen],
                    "authentication_provider_id": rule.authentication_provider_id or "",
                    "existing_user_id": user_ids[chosen],
                }
            )
        )
    out = pd.concat(rows, ignore_index=True).reindex(
        columns=list(FILES["logins"].columns), fill_value=""
    )
    return out.drop_duplicates(["user_id", "login_id"]).reset_index(drop=True)
