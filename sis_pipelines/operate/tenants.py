"""The tenants file and the tenant partitions: sync, list, retire."""

from __future__ import annotations

from ..core.errors import UsageError
from ..core.nights import partition_budget
from ..core.tenants import load_tenants, tenants_path


def sync_tenants(instance, out=print) -> tuple[list[str], list[str]]:
    """Register enabled tenants as `tenant` partitions; disabled ones keep theirs (and data).


    Warns when tenants x nights passes the partitions Dagster recommends per asset."""
    from ..defs.partitions import register_tenants

    tenants_file = load_tenants()
    tenants = tenants_file.tenants
    new = register_tenants(instance, tenants_file)
    disabled = [t for t, cfg in sorted(tenants.items()) if not cfg.enabled]
    for t in sorted(tenants):
        state = (
            "added"
            if t in new
            else "disabled (not scheduled, data kept)"
            if t in disabled
            else "registered"
        )
        out(f"  {t:<32} {tenants[t].vendor:<16} {state}")
    budget = partition_budget(len(tenants))
    if not budget.within_limit:
        out(f"warning: {budget.advice()}")
    return new, disabled


def in_tenants_file(tenant_id: str) -> dict:
    """The tenants of the tenants file, which has ``tenant_id`` (else one line saying so)."""
    tenants = load_tenants().tenants
    if tenant_id not in tenants:
        raise UsageError(
            f"tenant {tenant_id!r} is not in the tenants file {tenants_path()} "
            f"(it has {', '.join(sorted(tenants)) or 'none'})"
        )
    return tenants


def known_tenant(instance, tenant: str) -> dict:
    """The tenants of the tenants file, which has ``tenant``, now with its partition."""
    from ..defs.partitions import add_tenants, registered

    tenants = in_tenants_file(tenant)
    if tenant not in registered(instance):
        # A disabled tenant can still be run by hand: it gets its partition for this run.
        add_tenants(instance, [tenant])
    return tenants


def list_tenants(instance, out=print) -> None:
    """Each tenant of the tenants file (and each partition no longer in it): vendor, source,
    whether it is enabled and registered, and the last night stored."""
    from ..core.lake import CANVAS_MAPPING, Lake
    from ..defs.partitions import registered

    tenants = load_tenants().tenants
    known = set(registered(instance))
    lake = Lake.at()
    out(
        f"  {'tenant':<32} {'vendor':<16} {'source':<10} {'enabled':<8} {'registered':<11} last night stored"
    )
    for t in sorted(set(tenants) | known):
        cfg = tenants.get(t)
        # A CSV Gateway tenant's nights are its mapped drops.
        nights = (
            lake.stored_nights(CANVAS_MAPPING, "users", t)
            if cfg is not None and cfg.gateway
            else lake.snapshot_nights("orgs", t)
        )
        out(
            f"  {t:<32} {cfg.vendor if cfg else '-':<16} {_source(cfg) if cfg else '-':<10} "
            f"{('yes' if cfg.enabled else 'no') if cfg else 'removed':<8} "
            f"{'yes' if t in known else 'no':<11} {nights[-1] if nights else '-'}"
        )


def _source(tenant) -> str:
    return "canvas_csv" if tenant.gateway else tenant.oneroster.source


def retire_tenant(instance, tenant: str) -> None:
    """Removes a tenant's partition (its runs stop appearing in the partition space); its data
    and run history stay. Refused while the tenants file still has it enabled."""
    from ..defs.partitions import TENANT_DIMENSION, registered

    cfg = load_tenants().tenants.get(tenant)
    if cfg is not None and cfg.enabled:
        raise UsageError(
            f"tenant {tenant!r} is enabled in {tenants_path()}: set enabled: false (or remove it) "
            "first, or the onboarding sensor registers it again"
        )
    if tenant not in registered(instance):
        raise UsageError(f"tenant {tenant!r} has no partition to retire")
    instance.delete_dynamic_partition(TENANT_DIMENSION, tenant)
