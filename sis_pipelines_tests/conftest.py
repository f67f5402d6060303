from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date

import pytest

from sis_pipelines.oneroster.auth import ClientCredentials, OAuth1HmacSha256, default_scope
from sis_pipelines.oneroster.client import OneRosterClient, RetryPolicy
from sis_pipelines.simulator.district import District
from sis_pipelines.simulator.server import SimulatorServer
from sis_pipelines.simulator.vendors import VENDORS, VendorProfile

NIGHT = date(2026, 11, 21)
FAST_RETRY = RetryPolicy(
    max_attempts=5,
    max_elapsed_s=30,
    backoff_base_s=0.001,
    backoff_cap_s=0.01,
    max_retry_after_s=0.05,
)


@pytest.fixture(scope="session")
def small_district() -> District:
    return District(students=300, seed=5)


@pytest.fixture
def simulator(small_district: District) -> Iterator[Callable[..., SimulatorServer]]:
    servers: list[SimulatorServer] = []

    def start(vendor: str | VendorProfile = "genesis", **kwargs: object) -> SimulatorServer:
        kwargs.setdefault("district", small_district)
        kwargs.setdefault("night", NIGHT)
        server = SimulatorServer(vendor, **kwargs).start()  # type: ignore[arg-type]
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def auth_for(sim: SimulatorServer, tenant: str = "t1", secret: str | None = None):
    secret = secret or sim.client_secret
    if sim.profile.auth == "oauth1":
        return OAuth1HmacSha256(sim.client_id, secret)
    return ClientCredentials(
        tenant, sim.token_url, sim.client_id, secret, default_scope(sim.profile.version)
    )


def client_for(sim: SimulatorServer, page_size: int = 100, **kwargs: object) -> OneRosterClient:
    kwargs.setdefault("retry", FAST_RETRY)
    auth = kwargs.pop("auth", None) or auth_for(sim)
    return OneRosterClient("t1", sim.base_url, auth, page_size=page_size, **kwargs)  # type: ignore[arg-type]


__all__ = ["FAST_RETRY", "NIGHT", "VENDORS", "auth_for", "client_for"]


def canonical(snapshot: dict) -> dict:
    """A simulator snapshot as the stored, validated snapshot frames look (Arrow-backed)."""
    import pandas as pd
    import pyarrow as pa

    from sis_pipelines.oneroster.collections import COLLECTIONS
    from sis_pipelines.oneroster.normalise import arrow_schema

    out = {}
    for name, frame in snapshot.items():
        schema = arrow_schema(COLLECTIONS[name])
        plain = pd.DataFrame({c: frame[c] for c in COLLECTIONS[name].columns})
        out[name] = pa.Table.from_pandas(plain, schema=schema, preserve_index=False).to_pandas(
            types_mapper=pd.ArrowDtype
        )
    return out
