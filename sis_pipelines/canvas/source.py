"""Open a tenant's Canvas: the real one (token from the environment) or the bundled simulator."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime, time
from pathlib import Path

from ..tenants import Tenant
from .api import CanvasClient, Polling

_SIMULATORS: dict[str, object] = {}
_LOCK = threading.Lock()


def simulator_for(tenant_id: str, state_dir: Path):
    """One Canvas simulator per tenant and process; its state persists in ``state_dir``."""
    from ..simulator.canvas import CanvasSimulator

    with _LOCK:
        sim = _SIMULATORS.get(tenant_id)
        state_file = state_dir / f"{tenant_id}.json"
        if sim is None or sim.state_file != state_file:  # type: ignore[attr-defined]
            sim = CanvasSimulator(state_file=state_file).start()
            _SIMULATORS[tenant_id] = sim
        return sim


@contextmanager
def open_canvas(
    tenant_id: str,
    tenant: Tenant,
    data_root: str,
    env: Mapping[str, str] = os.environ,
    polling: Polling | None = None,
    night: date | None = None,
) -> Iterator[CanvasClient]:
    """The tenant's Canvas; for the simulator, its gradebooks stand as at the end of ``night``."""
    cfg = tenant.canvas
    assert cfg is not None
    if cfg.source == "simulator":
        local = Path(data_root.removeprefix("file://")) / "simulator" / "canvas"
        sim = simulator_for(tenant_id, local)
        sim.gradebook_share = cfg.gradebook_share  # type: ignore[attr-defined]
        if night is not None:
            sim.clock = datetime.combine(night, time(23, 59, 59), UTC)  # type: ignore[attr-defined]
        with CanvasClient(
            tenant_id,
            sim.base_url,
            sim.token,
            cfg.account_id,
            polling or Polling(first_wait_s=0.05, max_wait_s=0.2),
        ) as client:  # type: ignore[attr-defined]
            yield client
        return
    token = env.get(cfg.token_env or "")
    if not token:
        raise RuntimeError(
            f"tenant {tenant_id!r}: environment variable {cfg.token_env} (canvas.token_env) is not set"
        )
    with CanvasClient(tenant_id, cfg.base_url, token, cfg.account_id, polling) as client:
        yield client
