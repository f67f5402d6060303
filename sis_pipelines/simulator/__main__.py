"""``python -m sis_pipelines.simulator serve|export``."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from datetime import date
from pathlib import Path

from .district import District
from .export import export_bundle
from .server import SimulatorServer
from .sis_gradebook import SisGradebook
from .vendors import VENDORS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sis_pipelines.simulator")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("serve", "export"):
        p = sub.add_parser(name)
        p.add_argument("--vendor", choices=sorted(VENDORS), default="genesis")
        p.add_argument("--students", type=int, default=2000)
        p.add_argument("--seed", type=int, default=1)
        p.add_argument("--night", type=date.fromisoformat, default=date.today())
    serve, export = sub.choices["serve"], sub.choices["export"]
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument("--client-id", default="demo")
    serve.add_argument("--client-secret", default="demo-secret")
    serve.add_argument(
        "--gradebook-state", type=Path, help="keep the SIS gradebook in this JSON file across runs"
    )
    serve.add_argument(
        "--vendor-authorization",
        help="require this x-vendor-authorization value on gradebook calls (Infinite Campus)",
    )
    export.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    district = District(args.students, args.seed)
    if args.command == "export":
        print(export_bundle(district, args.night, args.out))
        return 0
    sim = SimulatorServer(
        args.vendor,
        night=args.night,
        client_id=args.client_id,
        client_secret=args.client_secret,
        port=args.port,
        district=district,
        gradebook=SisGradebook(
            VENDORS[args.vendor].version, args.gradebook_state, args.vendor_authorization
        ),
    )
    sim.start()
    _ = sim.frames  # build the night before announcing the server, so no request waits for it
    profile = sim.profile
    print(
        f"OneRoster {profile.version} simulator ({profile.name}, {profile.auth}) for night {args.night}"
    )
    print(f"  base URL:  {sim.base_url}")
    print(f"  gradebook: {sim.gradebook_url}")
    if profile.auth == "oauth2":
        print(f"  token URL: {sim.token_url}")
    print(f"  client id: {args.client_id}   (Ctrl-C stops)", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
