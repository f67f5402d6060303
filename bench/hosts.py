"""Hosts of their own for Celery workers on one machine: network namespaces on a bridge.

Each worker host sees the machine only through the bridge's address, where PostgreSQL, the
broker and the results store (which listen on the machine's loopback) are forwarded to it; it
shares nothing else with the other hosts but the data lake's path, as workers on other
machines would share a mounted or object-store lake.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# Each service as the worker hosts reach it at the gateway: port -> (host, port) it forwards to.
SERVICES = {5432: ("127.0.0.1", 5432), 5672: ("127.0.0.1", 5672), 6379: ("127.0.0.1", 6379)}


@dataclass(frozen=True)
class WorkerHosts:
    gateway: str  # the machine's address as the worker hosts see it
    namespaces: list[str]

    def command(self, host: int, argv: Sequence[str]) -> list[str]:
        """``argv`` run on worker host ``host``."""
        return ["ip", "netns", "exec", self.namespaces[host], *argv]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@contextmanager
def worker_hosts(
    count: int, services: Mapping[int, tuple[str, int]] = SERVICES
) -> Iterator[WorkerHosts]:
    tag = uuid.uuid4().hex[:6]
    subnet = f"10.{random.randint(100, 250)}.{random.randint(0, 255)}"
    bridge, gateway = f"sisbr{tag}", f"{subnet}.1"
    namespaces = [f"sisw{tag}{i}" for i in range(count)]
    forwarder = None
    try:
        _ip("link", "add", bridge, "type", "bridge")
        _ip("addr", "add", f"{gateway}/24", "dev", bridge)
        _ip("link", "set", bridge, "up")
        for i, ns in enumerate(namespaces):
            host_end, host_side = f"sv{tag}{i}", f"sp{tag}{i}"
            _ip("netns", "add", ns)
            _ip("link", "add", host_end, "type", "veth", "peer", "name", host_side)
            _ip("link", "set", host_side, "netns", ns)
            _ip("link", "set", host_end, "master", bridge, "up")
            _ip("-n", ns, "addr", "add", f"{subnet}.{10 + i}/24", "dev", host_side)
            _ip("-n", ns, "link", "set", host_side, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        forwarder = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.hosts",
                gateway,
                *(f"{port}={host}:{to}" for port, (host, to) in services.items()),
            ],
            cwd=Path(__file__).parents[1],
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        assert forwarder.stdout is not None
        forwarder.stdout.readline()  # "listening" once every port is bound
        yield WorkerHosts(gateway, namespaces)
    finally:
        if forwarder is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(forwarder.pid, signal.SIGKILL)
            forwarder.wait()
        for ns in namespaces:
            kill_host(ns)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)


def kill_host(namespace: str) -> None:
    """Every process on a worker host, killed at once, as when a machine dies."""
    pids = subprocess.run(
        ["ip", "netns", "pids", namespace], capture_output=True, text=True
    ).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _forward(address: str, targets: dict[int, tuple[str, int]]) -> None:
    async def serve(port: int, host: str, to: int):
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                up_reader, up_writer = await asyncio.open_connection(host, to)
            except OSError:
                writer.close()
                return
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

        return await asyncio.start_server(handle, address, port)

    servers = [await serve(port, host, to) for port, (host, to) in targets.items()]
    print("listening", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    # python -m bench.hosts <address> <port>=<host>:<port>...: each service at <address>.
    pairs = (arg.partition("=") for arg in sys.argv[2:])
    targets = {int(p): (t.rpartition(":")[0], int(t.rpartition(":")[2])) for p, _, t in pairs}
    asyncio.run(_forward(sys.argv[1], targets))
